"""restore.deconvolve on small images: better than the blurred input, shapes, dtypes, colour, errors."""
from functools import partial

import numpy as np
import pytest

from minieye import losses, restore
from minieye.restore import metrics, psf, wiener

# These tests are about the hand-made prior, so they pin prior='nonlocal'; the default, prior='auto'
# (the learned prior blended in by held-out prediction), is tested in test_restore_learned_prior.py.
deconvolve = partial(restore.deconvolve, prior="nonlocal")

data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def truth():
    return data.camera()[200:264, 220:284] / 255.0  # 64x64: the cameraman's head and camera


def test_recovers_better_than_blurred_and_wiener(truth):
    k = psf.box(5)
    blurred = psf.blur(truth, k) + 0.01 * np.random.default_rng(0).standard_normal(truth.shape)
    restored, info = deconvolve(blurred, k, full=True)
    assert restored.shape == truth.shape and restored.dtype == blurred.dtype
    gain = metrics.psnr(truth, restored) - metrics.psnr(truth, blurred)
    assert gain > 3.0, gain
    best_wiener = max(metrics.psnr(truth, np.clip(wiener(blurred, k, b), 0, 1)) for b in (1e-3, 1e-2, 1e-1))
    assert metrics.psnr(truth, restored) > best_wiener
    assert 0.0 <= restored.min() and restored.max() <= 1.0  # the default [0, 1] box
    assert info.sigma == pytest.approx(0.01, rel=0.3)
    assert info.result.iterations > 0 and len(info.result.history) == info.result.iterations


def test_noise_free_box_blur_is_nearly_inverted(truth):
    k = psf.box(5)
    blurred = psf.blur(truth, k)  # reflect edges: the 'valid' model fits them exactly
    restored = deconvolve(blurred, k, iterations=300)
    assert metrics.psnr(truth, restored) > metrics.psnr(truth, blurred) + 10


def test_no_ringing_at_reflect_borders(truth):
    k = psf.motion(7, 30)
    blurred = psf.blur(truth, k, mode="reflect")
    restored = deconvolve(blurred, k, noise_sigma=0.002)
    border = np.ones(truth.shape, bool)
    border[6:-6, 6:-6] = False
    err = np.abs(restored - truth)
    assert err[border].mean() < 2 * err[~border].mean() + 0.01


def test_colour_uint8_and_float64(truth):
    rgb = np.stack([truth, truth[::-1], truth.T], axis=-1)[:40, :48]
    k = psf.gaussian(1.0)
    blurred = psf.blur(rgb, k)
    restored = deconvolve(blurred, k, iterations=60)
    assert restored.shape == rgb.shape and restored.dtype == np.float64
    assert metrics.psnr(rgb, restored) > metrics.psnr(rgb, blurred)
    as_uint8 = np.round(blurred * 255).astype(np.uint8)
    out8 = deconvolve(as_uint8, k, iterations=60)
    assert out8.dtype == np.uint8 and out8.shape == rgb.shape
    out32 = deconvolve(blurred[..., 0].astype(np.float32), k, iterations=20)
    assert out32.dtype == np.float32


def test_options_regularizers_and_box(truth):
    k = psf.box(3)
    blurred = psf.blur(truth[:32, :32], k)
    mindseye = [(1e-3, losses.Entropy()), (1.0, losses.NonNegativity())]
    out, info = deconvolve(blurred, k, regularizers=mindseye, box=None, iterations=30, full=True)
    assert [label for _, label in info.weights] == ["Entropy", "NonNegativity"]
    assert out.shape == (32, 32)
    unbounded = deconvolve(blurred - 0.5, k, iterations=10)  # negative values: no box by default
    assert unbounded.min() < 0
    clipped = deconvolve(blurred, k, box=(0.2, 0.8), iterations=10)
    assert clipped.min() >= 0.2 - 1e-6 and clipped.max() <= 0.8 + 1e-6


def test_clear_errors():
    img = np.random.default_rng(1).random((6, 6))
    with pytest.raises(ValueError, match="kernel no larger than the image"):
        deconvolve(img, psf.box(9))
    with pytest.raises(ValueError, match=r"blurred.*\(H, W\) grayscale or \(H, W, C\) colour"):
        deconvolve(img[None, None], psf.box(3))
    with pytest.raises(ValueError, match="NaN"):
        bad = img.copy()
        bad[2, 2] = np.nan
        deconvolve(bad, psf.box(3))
    with pytest.raises(ValueError, match="regularizers"):
        deconvolve(img, psf.box(3), regularizers=[losses.TotalVariation()])
    with pytest.raises(ValueError, match="positive sum"):
        deconvolve(img, np.zeros((3, 3)))


def test_nonlocal_stage_beats_the_local_prior(truth):
    # measured on this crop: box +0.67/+0.74 dB, motion +0.26/+0.51 over prior='local' (seeds 0/1)
    k = psf.box(5)
    blurred = psf.blur(truth, k) + 0.01 * np.random.default_rng(0).standard_normal(truth.shape)
    local, local_info = deconvolve(blurred, k, prior="local", full=True)
    restored, info = deconvolve(blurred, k, full=True)
    assert metrics.psnr(truth, restored) > metrics.psnr(truth, local) + 0.3
    assert [name for name, _ in info.stages] == ["local", "nonlocal"] and info.result is info.stages[-1][1]
    assert info.iterations == sum(r.iterations for _, r in info.stages) > info.result.iterations
    assert info.stages[0][1].iterations <= 60 and info.result.iterations <= 80  # the default caps
    assert [label.split("(")[0] for _, label in info.weights] == ["NonLocalTV", "TotalVariation", "SecondOrderTV"]
    assert [name for name, _ in local_info.stages] == ["local"] and local_info.iterations == local_info.result.iterations
    assert 0.0 <= restored.min() and restored.max() <= 1.0


def test_nonlocal_stage_is_skipped_where_it_cannot_help(truth):
    k = psf.box(5)
    blurred = psf.blur(truth, k)
    # a given weight and sigma below 4e-3: the local prior alone (automatic weights: test_restore_regweight.py)
    _, noise_free = deconvolve(blurred, k, tv_weight=1e-6, full=True)
    _, custom = deconvolve(blurred, k, regularizers=[(1e-4, losses.TotalVariation())], noise_sigma=0.02,
                           iterations=5, full=True)
    _, timed_out = deconvolve(blurred, k, noise_sigma=0.02, timeout=1e-9, full=True)
    for info in (noise_free, custom, timed_out):
        assert [name for name, _ in info.stages] == ["local"]
    assert timed_out.result.stop_reason == "timeout"


def test_nonlocal_stage_options(truth):
    rgb = np.stack([truth, truth[::-1], truth.T], axis=-1)[:40, :48]
    k = psf.gaussian(1.0)
    blurred = psf.blur(rgb, k) + 0.01 * np.random.default_rng(1).standard_normal(rgb.shape)
    out, info = deconvolve(blurred, k, nonlocal_h=0.1, iterations=10, full=True)
    assert out.shape == rgb.shape and len(info.stages) == 2
    assert all(r.iterations <= 10 for _, r in info.stages)  # iterations caps each stage
    with pytest.raises(ValueError, match="prior 'nonlocal', 'local', 'learned' or 'auto'"):
        deconvolve(blurred, k, prior="patch")
    with pytest.raises(ValueError, match="nonlocal_h a finite number > 0"):
        deconvolve(blurred, k, nonlocal_h=0.0)


def test_stage_two_follows_only_a_normal_stop(truth, monkeypatch):
    from minieye import train
    k = psf.box(5)
    blurred = psf.blur(truth, k) + 0.01 * np.random.default_rng(0).standard_normal(truth.shape)
    real_run = train.Trainer.run

    def interrupted_first(self, *args, **kwargs):  # Ctrl-C during stage 1
        result = real_run(self, *args, **dict(kwargs, max_iterations=1))
        result.stop_reason = "interrupted"
        return result

    monkeypatch.setattr(train.Trainer, "run", interrupted_first)
    _, info = deconvolve(blurred, k, full=True)
    assert [(name, r.stop_reason) for name, r in info.stages] == [("local", "interrupted")]
    monkeypatch.undo()
    _, none = deconvolve(blurred, k, tv_weight=0.0, iterations=5, full=True)  # no regularizer: no graph either
    assert [name for name, _ in none.stages] == ["local"] and none.weights == []


@pytest.mark.parametrize("options, name", [
    (dict(tv_weight=-1e-3), "tv_weight"), (dict(noise_sigma=float("nan")), "noise_sigma"),
    (dict(nonlocal_h="abc"), "nonlocal_h"), (dict(nonlocal_h=np.inf), "nonlocal_h"), (dict(nonlocal_h=True), "nonlocal_h"),
    (dict(noise_sigma=[0.01]), "noise_sigma")])
def test_bad_numbers_name_the_argument(truth, options, name):
    with pytest.raises(ValueError, match=rf"deconvolve: expected {name} a finite number"):
        deconvolve(truth[:16, :16], psf.box(3), iterations=2, **options)
