"""Tiled deconvolution: agrees with the untiled result, reads/writes memmaps, refuses bad options."""
from __future__ import annotations

from functools import partial

import re

import numpy as np
import pytest
from scipy.ndimage import convolve

from minieye import restore
from minieye.restore import budget, psf, tile_source, tiled

# These tests are about the hand-made prior, so they pin prior='nonlocal'; the default, prior='auto'
# (the learned prior blended in by held-out prediction), is tested in test_restore_learned_prior.py.
deconvolve = partial(restore.deconvolve, prior="nonlocal")
deconvolve_tiled = partial(restore.deconvolve_tiled, prior="nonlocal")

KERNEL = psf.gaussian(1.0)  # 7x7


def scene(h: int = 72, w: int = 72, channels: int = 0, noise: float = 0.03, seed: int = 0) -> np.ndarray:
    """Blocks and a ramp (edges for TV to keep), blurred and noisy, in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    base = 0.2 + 0.5 * ((yy // 12 + xx // 16) % 2) + 0.2 * xx / w
    planes = [base] if not channels else [np.roll(base, 5 * c, axis=1) for c in range(channels)]
    out = [convolve(p, KERNEL, mode="reflect") + noise * rng.standard_normal((h, w)) for p in planes]
    return out[0] if not channels else np.stack(out, axis=-1)


# converged float64 runs (both stop when the line search can no longer improve), so the
# comparison measures the tiling and not two different points on the way to the optimum
CONVERGED = dict(iterations=1500, dtype=np.float64)
HALO = 12  # below default_halo (19 for this 7x7 at sigma 0.01), so windows do not cover these small images


def test_tiled_matches_untiled_within_1e_3():
    b = scene()
    whole = deconvolve(b, KERNEL, prior="local", **CONVERGED)
    parts, info = deconvolve_tiled(b, KERNEL, tile=24, halo=HALO, prior="local", **CONVERGED, full=True)
    assert len(info.result) == 9  # 3 x 3 tiles; the middle window is 48 x 48, not the whole image
    assert len(info.stages) == 9 and info.iterations == sum(r.iterations for r in info.result)  # one stage each
    assert tiled.plan_tiles(b.shape, KERNEL, tile=24, halo=HALO).window((24, 48, 24, 48)) == (12, 60, 12, 60)
    assert np.abs(parts - whole).max() < 1e-3


def test_tiled_nonlocal_prior_matches_untiled_with_the_default_halo():
    # the non-local stage's graph is built from each window's first-stage result, so it
    # reaches further than the local prior (1.2e-3 at the reduced HALO): the default halo
    # (19 here, windows still smaller than the image) keeps it below 1e-3 (7e-5 measured)
    b = scene()
    whole = deconvolve(b, KERNEL, **CONVERGED)
    parts = deconvolve_tiled(b, KERNEL, tile=24, **CONVERGED)
    assert tiled.default_halo(KERNEL, restore.estimate_noise(b))[0] + 24 < b.shape[0]
    assert np.abs(parts - whole).max() < 1e-3


def test_no_halo_shows_seams():
    # the test above could pass vacuously if windows covered the image: a zero halo must not
    b = scene()
    whole = deconvolve(b, KERNEL, **CONVERGED)
    parts = deconvolve_tiled(b, KERNEL, tile=24, halo=0, **CONVERGED)
    assert np.abs(parts - whole).max() > 1e-3


def test_colour_and_integers():
    # the reduced HALO keeps windows (32 x 32) inside the image; the non-local stage needs
    # the default halo (test above), which would cover this small image
    local = dict(CONVERGED, prior="local")
    b = scene(40, 40, channels=3)
    whole = deconvolve(b, KERNEL, **local)
    parts = deconvolve_tiled(b, KERNEL, tile=20, halo=HALO, **local)
    assert parts.shape == b.shape and np.abs(parts - whole).max() < 1e-3
    b8 = np.round(np.clip(b[..., 0], 0, 1) * 255).astype(np.uint8)
    u8 = deconvolve_tiled(b8, KERNEL, tile=20, halo=HALO, **local)
    assert u8.dtype == np.uint8 and np.abs(u8.astype(int) - deconvolve(b8, KERNEL, **local)).max() <= 1


def test_memmap_in_and_out(tmp_path):
    b = scene(40, 56).astype(np.float32)
    src = np.lib.format.open_memmap(tmp_path / "in.npy", mode="w+", dtype=np.float32, shape=b.shape)
    src[...] = b
    src.flush()
    src = np.load(tmp_path / "in.npy", mmap_mode="r")
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=b.shape)
    got = deconvolve_tiled(src, KERNEL, tile=20, halo=8, iterations=15, out=out)
    assert got is out
    out.flush()
    expected = deconvolve_tiled(b, KERNEL, tile=20, halo=8, iterations=15)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


def test_max_memory_chooses_tiles_or_none():
    plan = tiled.plan_tiles((4000, 3000), psf.gaussian(1.6), max_memory="64MB", prior="nonlocal")
    assert plan is not None and plan.peak_bytes <= 64e6 and plan.count > 1
    assert tiled.plan_tiles((64, 64), psf.gaussian(1.6), max_memory="1GiB") is None  # fits: untiled
    b = scene(32, 32)
    np.testing.assert_array_equal(deconvolve(b, KERNEL, max_memory=2**30, iterations=10),
                                  deconvolve(b, KERNEL, iterations=10))


def test_deconvolve_tiles_by_itself_past_its_memory_budget():
    b = scene(72, 72)
    small = "3MB"  # an untiled 72x72 run is estimated at 6.3 MB
    plan = tiled.plan_tiles(b.shape, KERNEL, max_memory=small, sigma=restore.estimate_noise(b), prior="nonlocal")
    auto, info = deconvolve(b, KERNEL, max_memory=small, iterations=5, full=True)
    assert plan.count > 1 and len(info.result) == plan.count and plan.peak_bytes <= 3e6
    np.testing.assert_array_equal(auto, deconvolve_tiled(b, KERNEL, max_memory=small, iterations=5))
    _, whole = deconvolve(b, KERNEL, iterations=5, full=True)  # the default budget, 1 GB: untiled
    assert budget.DEFAULT_MAX_MEMORY == 10**9 and len(whole.stages) <= 2 and not isinstance(whole.result, list)


def test_the_method_and_the_tiles_do_not_import_each_other():
    import ast
    import inspect
    from minieye.restore import deconvolve as method

    def imported(module) -> set:
        tree = ast.parse(inspect.getsource(module))
        return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}

    assert not imported(method) & {"tiled", "budget"} and "budget" not in imported(tiled)


def test_deconvolve_dispatches_to_tiles():
    b = scene(40, 40)
    np.testing.assert_array_equal(deconvolve(b, KERNEL, tile=20, iterations=5),
                                  deconvolve_tiled(b, KERNEL, tile=20, iterations=5))
    out = np.zeros(b.shape, np.float32)
    assert deconvolve(b, KERNEL, out=out, iterations=5) is out and out.any()


def test_default_halo_follows_the_kernel_and_the_noise():
    gauss, motion = tiled.default_halo(psf.gaussian(1.6), 0.01), tiled.default_halo(psf.motion(9, 30), 0.01)
    assert gauss == (25, 25)  # docs/tiled.md: measured seam error 7.6e-5 at halo 24 for this case
    assert min(motion) > max(gauss)  # a motion blur's spectral zeros reach further
    assert tiled.default_halo(psf.gaussian(1.6), 0.001)[0] > gauss[0]  # weaker regularisation, longer reach
    h, w = tiled.default_halo(psf.motion(15, 0), 0.01)  # horizontal blur: context needed along rows only
    assert h < 16 < w


def test_parse_memory():
    assert tiled.parse_memory("2GB") == 2 * 10**9
    assert tiled.parse_memory("512 MiB") == 512 * 2**20
    assert tiled.parse_memory(1000) == 1000 and tiled.parse_memory(2e9) == 2 * 10**9


def test_sampled_noise_estimate_is_close():
    rng = np.random.default_rng(1)
    img = 0.5 + 0.02 * rng.standard_normal((600, 600))
    sampled = tile_source.sample_noise(img, budget=16 * 64 * 64)  # 16 blocks of 64x64
    assert abs(sampled - restore.estimate_noise(img)) < 0.002
    thin = 0.5 + 0.02 * rng.standard_normal((30, 9000))  # blocks as tall as the image allows
    assert abs(tile_source.sample_noise(thin, budget=16 * 64 * 64) - 0.02) < 0.003
    for strip in ((1, 70000), (3, 70000), (70000, 2)):  # no 4x4 block to sample: a clear refusal
        with pytest.raises(ValueError, match=rf"at least 4 pixels on each side.*blurred.shape == \({strip[0]}, "):
            tile_source.sample_noise(np.zeros(strip), budget=1 << 16)


def test_progress_bar(capsys):
    deconvolve_tiled(scene(32, 32), KERNEL, tile=16, halo=4, iterations=3, progress=True)
    assert "4/4" in capsys.readouterr().err


@pytest.mark.parametrize("options, name", [
    (dict(tile=5), "tile"),                      # smaller than the 7x7 kernel
    (dict(tile=(16, 0)), "tile"),
    (dict(tile=16, halo=-1), "halo"),
    (dict(max_memory="1kB"), "max_memory"),       # not even a kernel-sized tile fits
    (dict(max_memory="lots"), "max_memory"),
    (dict(tile=16, max_memory="1MB"), "max_memory"),
    (dict(tile=16, out=np.zeros((3, 3))), "out"),
])
def test_bad_options_name_the_argument(options, name):
    with pytest.raises(ValueError, match=name):
        deconvolve_tiled(scene(32, 32), KERNEL, iterations=2, **options)


@pytest.mark.parametrize("options", [dict(max_memory="1kB"), dict(tile=16, max_memory="100kB")])
def test_too_little_memory_for_any_prior_is_one_short_error(options):
    """prior='auto' falls back to 'nonlocal' when max_memory cannot hold its learned part; where even that does
    not fit, the error is the fallback's need alone, not chained under the learned part's."""
    with pytest.raises(ValueError) as caught:
        restore.deconvolve_tiled(scene(32, 32), KERNEL, iterations=2, prior="auto", **options)
    message = str(caught.value)
    assert re.fullmatch(rf"deconvolve: expected max_memory >= \d+ bytes .*; got max_memory='{options['max_memory']}' "
                        r"\(\d+ bytes\)\. .*the least prior='auto' can run in: 'nonlocal' alone\)", message), message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "learned" not in message and "handmade" not in message and len(message) < 300, message


def test_refuses_volumes():
    with pytest.raises(ValueError, match="blurred"):
        deconvolve_tiled(np.zeros((16, 16, 3, 2)), KERNEL, tile=8)


# --- volumes: the same plan over (D, H, W) with a 3-D kernel -------------------------------------------

KERNEL3 = psf.gaussian3d((0.6, 0.8, 0.8), size=(3, 5, 5))
HALO3 = (7, 10, 10)  # docs/tiled.md: seam error 2.3e-4 here (1.2e-2 with (7, 6, 6)); default (12, 14, 14) covers D


def volume(d: int = 16, h: int = 40, w: int = 40, noise: float = 0.03, seed: int = 1) -> np.ndarray:
    """3-D blocks and a ramp, blurred by KERNEL3 and noisy, in [0, 1]."""
    zz, yy, xx = np.mgrid[:d, :h, :w]
    base = 0.2 + 0.5 * ((zz // 5 + yy // 12 + xx // 16) % 2) + 0.2 * xx / w
    return convolve(base, KERNEL3, mode="reflect") + noise * np.random.default_rng(seed).standard_normal((d, h, w))


@pytest.fixture(scope="module")
def volume_case():
    b = volume()
    return b, deconvolve(b, KERNEL3, **CONVERGED)


def test_volume_tiled_matches_untiled_within_1e_3(volume_case):
    b, whole = volume_case
    parts, info = deconvolve_tiled(b, KERNEL3, tile=(8, 20, 20), halo=HALO3, **CONVERGED, full=True)
    assert len(info.result) == 8  # 2 x 2 x 2 tiles, none of whose windows covers the volume
    plan = tiled.plan_tiles(b.shape, KERNEL3, tile=(8, 20, 20), halo=HALO3)
    assert plan.window((0, 8, 0, 20, 20, 40)) == (0, 15, 0, 30, 10, 40)
    assert info.sigma == pytest.approx(deconvolve(b, KERNEL3, iterations=1, full=True)[1].sigma)
    assert parts.shape == b.shape and np.abs(parts - whole).max() < 1e-3


def test_volume_without_halo_shows_seams(volume_case):
    b, whole = volume_case
    parts = deconvolve_tiled(b, KERNEL3, tile=(8, 20, 20), halo=0, **CONVERGED)
    assert np.abs(parts - whole).max() > 1e-3


def test_volume_memmap_in_and_out(tmp_path):
    b = volume(12, 24, 24).astype(np.float32)
    np.save(tmp_path / "in.npy", b)
    src = np.load(tmp_path / "in.npy", mmap_mode="r")
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=b.shape)
    assert deconvolve(src, KERNEL3, tile=(6, 12, 12), iterations=8, out=out) is out  # default halo
    out.flush()
    expected = deconvolve_tiled(b, KERNEL3, tile=(6, 12, 12), iterations=8)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


def test_volume_planning_and_default_halo():
    halo = tiled.default_halo(psf.gaussian3d(1.0), 0.01)
    assert len(halo) == 3 and all(7 - 1 + 8 <= m <= tiled.MAX_HALO_3D for m in halo)
    thin = tiled.default_halo(psf.gaussian3d((0.6, 2.0, 2.0)), 0.01)
    assert thin[0] < thin[1] == thin[2]  # a thinner kernel along D needs less context along D
    plan = tiled.plan_tiles((250, 500, 500), psf.gaussian3d(1.0), max_memory="2GB")  # the CT volume of issue 8
    assert plan is not None and plan.peak_bytes <= 2e9 and plan.count > 1 and len(plan.tile) == 3
    assert tiled.plan_tiles((16, 32, 32), KERNEL3, max_memory="1GB") is None  # fits: untiled


@pytest.mark.parametrize("options, name", [
    (dict(tile=(8, 20)), "tile"),            # an (h, w) tile for a (D, H, W) volume
    (dict(tile=(2, 20, 20)), "tile"),        # thinner than the kernel's 3 slices
    (dict(tile=8, halo=(1, 2)), "halo"),
    (dict(tile=8, out=np.zeros((16, 40))), "out"),
])
def test_volume_bad_options_name_the_argument(options, name):
    with pytest.raises(ValueError, match=name):
        deconvolve_tiled(volume(), KERNEL3, iterations=2, **options)


def test_volume_needs_a_volume():
    with pytest.raises(ValueError, match=r"blurred a \(D, H, W\) grayscale volume"):
        deconvolve_tiled(volume()[0], KERNEL3, tile=8)


def _interrupt_tile(monkeypatch, tile: int, in_trainer: bool) -> None:
    """Ctrl-C in the ``tile``-th tile (1-based): inside its trainer's loop, or raised by the tile's call itself."""
    from minieye.train.trainer import Trainer
    loop, calls, deconvolve_tile = Trainer._loop, [], tiled.deconvolve_in_memory

    def loop_or_interrupt(self, *args):
        if len(calls) >= tile:
            raise KeyboardInterrupt
        return loop(self, *args)

    def counted(*args, **kwargs):
        calls.append(1)
        if len(calls) == tile and not in_trainer:
            raise KeyboardInterrupt  # outside the trainer and the learned loop (e.g. in the noise estimate)
        return deconvolve_tile(*args, **kwargs)
    monkeypatch.setattr(Trainer, "_loop", loop_or_interrupt)
    monkeypatch.setattr(tiled, "deconvolve_in_memory", counted)


def test_ctrl_c_is_recorded_by_deconvolve(monkeypatch):
    from minieye.train.trainer import Trainer

    def interrupted(self, *args):
        raise KeyboardInterrupt
    monkeypatch.setattr(Trainer, "_loop", interrupted)
    _, info = deconvolve(scene(32, 32), KERNEL, prior="local", iterations=5, full=True)
    assert info.interrupted and info.result.stop_reason == "interrupted"


@pytest.mark.parametrize("in_trainer", [True, False])
def test_ctrl_c_stops_every_tile_not_one_and_keeps_the_work_done(monkeypatch, in_trainer):
    b = scene(48, 48)
    options = dict(tile=24, halo=HALO, prior="local", iterations=5, full=True)
    whole, _ = deconvolve_tiled(b, KERNEL, **options)
    _interrupt_tile(monkeypatch, 2, in_trainer)  # the second of four tiles
    rest = "the tiles after it" if in_trainer else "it and the tiles after it"
    with pytest.warns(RuntimeWarning, match=f"interrupted by the user in tile 2 of 4; {rest} hold the blurred input"):
        out, info = deconvolve_tiled(b, KERNEL, **options)
    assert info.interrupted and len(info.result) == (2 if in_trainer else 1)
    assert info.result[-1].stop_reason == ("interrupted" if in_trainer else "max_iterations")
    np.testing.assert_array_equal(out[:24, :24], whole[:24, :24])  # the first tile: finished
    np.testing.assert_array_equal(out[24:], b[24:].astype(out.dtype))  # the tiles not started: the input
    if not in_trainer:
        np.testing.assert_array_equal(out[:24, 24:], b[:24, 24:].astype(out.dtype))
    else:
        assert not np.array_equal(out[:24, 24:], b[:24, 24:].astype(out.dtype))  # its start (Wiener) is kept


@pytest.mark.parametrize("entry", ["deconvolve_tiled", "deconvolve"])
def test_ctrl_c_between_tiles_leaves_the_input_in_a_given_out_and_warns_at_the_call(monkeypatch, entry):
    b = scene(48, 48)
    options = dict(tile=24, halo=HALO, prior="local", iterations=5, full=True)
    whole, _ = deconvolve_tiled(b, KERNEL, **options)
    store, stored = tiled.store, []

    def interrupted_store(out, core, values):  # Ctrl-C while the second tile is being written
        stored.append(core)
        if len(stored) == 2:
            out[tiled.slices(core)][:12] = -1.0  # half of it written
            raise KeyboardInterrupt
        store(out, core, values)
    monkeypatch.setattr(tiled, "store", interrupted_store)
    out = np.full(b.shape, np.nan)  # as a fresh memmap: whatever the file held
    call = deconvolve_tiled if entry == "deconvolve_tiled" else deconvolve
    with pytest.warns(RuntimeWarning, match="in tile 2 of 4; it and the tiles after it hold the blurred") as caught:
        try:
            _, info = call(b, KERNEL, out=out, **options)
        except KeyboardInterrupt:
            pytest.fail("Ctrl-C while a tile was stored escaped the interruption handling")
    assert info.interrupted and len(info.result) == 1
    assert [w.filename for w in caught if "interrupted" in str(w.message)] == [__file__]  # the user's call
    np.testing.assert_array_equal(out[:24, :24], whole[:24, :24])
    np.testing.assert_array_equal(out[:24, 24:], b[:24, 24:])  # the tile stopped while stored: the input again
    np.testing.assert_array_equal(out[24:], b[24:])
