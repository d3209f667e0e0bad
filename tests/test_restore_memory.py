"""deconvolve's memory budget per prior: tiled runs stay under max_memory, and the estimate is near the peak."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.ndimage import convolve

from minieye import restore
from minieye.functional.conv import release_scratch
from minieye.restore import learned_prior, memory, psf, tiled

KERNEL = psf.gaussian(1.0)  # 7x7
# the estimate is an upper bound: at most this many times the measured peak (docs/tiled.md "Memory per prior")
LEARNED_FACTOR = 1.5


def scene(size: int, noise: float = 0.03, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    base = 0.2 + 0.5 * ((yy // 12 + xx // 16) % 2) + 0.2 * xx / size
    return convolve(base, KERNEL, mode="reflect") + noise * rng.standard_normal((size, size))


def traced_peak(run, kept: list | None = None) -> tuple[object, int]:
    """``run()``'s result and its tracemalloc peak, from an empty convolution scratch; appends to ``kept``
    what is still allocated after the call, the result aside."""
    release_scratch()
    tracemalloc.start()
    try:
        result = run()
        if kept is not None:
            kept.append(tracemalloc.get_traced_memory()[0] - np.asarray(result).nbytes)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# prior 'auto' with a given weight and share: every tile runs the hand-made prior, then the learned one from it
# (the automatic choice on a 128x128 centre would add seconds; its peak is in the estimate), in 2 HQS iterations
# rather than 12 (memory is the same from the second on: the network's buffers are reused)
@pytest.mark.parametrize("prior, budget, options", [("learned", "50MB", dict(iterations=2)),
                                                    ("auto", "80MB", dict(iterations=4, tv_weight=0.01,
                                                                          learned_share=0.5))])
def test_tiled_run_stays_under_max_memory(prior, budget, options, monkeypatch):
    real_hqs = learned_prior.hqs
    monkeypatch.setattr(learned_prior, "hqs", lambda y, k, sigma, box, iterations=None, **kw:
                        real_hqs(y, k, sigma, box, 2, **kw))
    b = scene(160)
    restore.deconvolve(b[:40, :40], KERNEL, prior=prior, max_memory=None, **options)  # compile and load first
    plan = tiled.plan_tiles(b.shape, KERNEL, max_memory=budget, sigma=restore.estimate_noise(b), prior=prior)
    assert plan is not None and plan.count > 1  # the whole image would not fit: tiles
    (out, info), peak = traced_peak(lambda: restore.deconvolve(b, KERNEL, prior=prior, max_memory=budget,
                                                               full=True, **options))
    assert len(info.result) == plan.count and np.isfinite(out).all()
    assert prior == "learned" or info.learned_share == 0.5  # both parts ran in every tile
    assert peak <= plan.peak_bytes <= memory.parse_memory(budget), f"{prior}: peak {peak / 1e6:.1f} MB"
    # plan.peak_bytes is for a full tile with its halo on both sides; the largest window here is smaller
    windows = [plan.window(core) for core in plan.cores()]
    largest = max(((w[1] - w[0], w[3] - w[2]) for w in windows), key=lambda sides: sides[0] * sides[1])
    estimate = memory.peak_estimate(memory.memory_prior(prior, learned_share=options.get("learned_share")),
                                    largest, KERNEL.shape, whole=b.shape)
    assert peak <= estimate <= LEARNED_FACTOR * peak, \
        f"{prior}: estimate {estimate / 1e6:.1f} MB against the measured {peak / 1e6:.1f} MB"


def test_estimate_brackets_the_in_memory_peak_of_the_learned_prior():
    b = scene(96)
    restore.deconvolve(b[:40, :40], KERNEL, prior="learned", iterations=2, max_memory=None)
    kept = []
    _, peak = traced_peak(lambda: restore.deconvolve(b, KERNEL, prior="learned", iterations=2, max_memory=None), kept)
    estimate = memory.peak_estimate("learned", b.shape, KERNEL.shape)
    assert peak <= estimate <= LEARNED_FACTOR * peak, (peak, estimate)
    assert kept[0] < 0.05 * peak, f"{kept[0] / 1e6:.1f} MB kept after the call (the network's scratch?)"


def test_the_prior_that_runs_decides_the_model():
    assert memory.memory_prior("nonlocal") == memory.memory_prior("local") == "handmade"
    assert memory.memory_prior("auto", volume=True) == "handmade"  # volumes: no learned prior
    assert memory.memory_prior("auto", automatic=False) == "handmade"  # a given tv_weight: no blend ...
    assert memory.memory_prior("auto", automatic=False, learned_share=0.3) == "auto"  # ... unless a share is given
    shape, k = (2000, 2000), KERNEL.shape
    learned, handmade = (memory.peak_estimate(p, shape, k) for p in ("learned", "handmade"))
    assert memory.peak_estimate("auto", shape, k) >= max(learned, handmade)
    # the network's part is bounded by its tile: the learned prior's bytes per pixel fall with the size
    small = memory.peak_estimate("learned", (256, 256), k) / 256 ** 2
    assert learned / 2000 ** 2 < small / 2
    # a budget too small for the network names the way out
    with pytest.raises(ValueError, match="prior='nonlocal'"):
        tiled.plan_tiles((1000, 1000), KERNEL, max_memory="20MB", prior="learned")
    assert tiled.plan_tiles((1000, 1000), KERNEL, max_memory="20MB", prior="nonlocal").count > 1


def test_tiles_are_resized_for_the_prior_the_centre_chooses():
    # nearly noise-free: prior 'auto' runs no choice and no learned part, so after the first, cautious plan
    # (sized for the learned prior: tiles) the hand-made estimate fits the whole image: one tile, as untiled
    rng = np.random.default_rng(0)
    b = scene(200, noise=0.0) + 0.0005 * rng.standard_normal((200, 200))
    assert tiled.plan_tiles(b.shape, KERNEL, max_memory="100MB", prior="auto") is not None
    out, info = restore.deconvolve(b, KERNEL, max_memory="100MB", iterations=5, full=True)
    assert len(info.result) == 1 and info.learned_share == 0.0
    np.testing.assert_array_equal(out, restore.deconvolve(b, KERNEL, max_memory=None, iterations=5))


def test_a_budget_too_small_for_the_learned_part_runs_the_default_on_the_hand_made_prior():
    b = scene(96)  # the hand-made prior needs about 6 MB here, the learned part 40 MB or more
    with pytest.warns(RuntimeWarning, match="prior 'nonlocal' runs alone") as caught:
        out, info = restore.deconvolve(b, KERNEL, max_memory="10MB", iterations=5, full=True)
    assert caught[0].filename == __file__  # the warning points at the user's call
    assert info.learned_share == 0.0
    np.testing.assert_array_equal(out, restore.deconvolve(b, KERNEL, prior="nonlocal", max_memory=None, iterations=5))
    # a prior or a share the user chose is never swapped: the refusal names the way out
    for chosen in (dict(prior="learned"), dict(learned_share=0.5)):
        with pytest.raises(ValueError, match="prior='nonlocal'"):
            restore.deconvolve(b, KERNEL, max_memory="10MB", iterations=5, **chosen)
    with pytest.raises(ValueError, match="max_memory"):  # too small for any prior: the hand-made minimum
        restore.deconvolve(b, KERNEL, max_memory="100KB", iterations=5)
