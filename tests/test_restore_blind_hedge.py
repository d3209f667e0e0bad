"""blind_deconvolve hedges an accepted restoration read from few edges (structure under STRUCTURE_HEDGE)."""
import numpy as np
import pytest

from minieye import restore
from minieye.restore import blind, blind_verdict, psf


def test_few_edges_above_the_noise_hedge_an_accepted_restoration(monkeypatch):
    data = pytest.importorskip("skimage.data")
    truth = data.camera()[100:196, 180:276] / 255.0
    k = np.pad(psf.motion(5, 0), ((2, 2), (0, 0)))
    blurred = restore.blur(truth, k, mode="reflect") + 0.01 * np.random.default_rng(0).standard_normal(truth.shape)
    plain = restore.blind_deconvolve(blurred, 5, initial_kernel=k, iterations=1, full=True)
    assert plain.accepted and plain.structure >= blind_verdict.STRUCTURE_HEDGE  # a photo's edges: not hedged
    assert plain.share == 1.0 and plain.ghosts < blind_verdict.GHOSTS_MAX
    # the same data measured as having few edges (between the refusal's and the hedge's thresholds):
    # half the restoration, half the denoised input
    few = (blind_verdict.STRUCTURE_MIN + blind_verdict.STRUCTURE_HEDGE) / 2
    monkeypatch.setattr(blind, "structure", lambda y, sigma: few)
    hedged = restore.blind_deconvolve(blurred, 5, initial_kernel=k, iterations=1, full=True)
    assert hedged.accepted and hedged.share == blind.HEDGE_SHARE and hedged.structure == few
    assert np.array_equal(hedged.kernel, plain.kernel)
    assert np.allclose(hedged.image, 0.5 * plain.image + 0.5 * restore.denoise(blurred))
    # a caller's smaller share is kept
    assert restore.blind_deconvolve(blurred, 5, initial_kernel=k, iterations=1, share=0.25, full=True).share == 0.25
