"""Deconvolution with the trained denoiser as the prior: half-quadratic splitting (DPIR's recipe).

Splitting ``min_u |k (*) u - y|^2 / (2 sigma^2) + R(u)`` with an auxiliary z and a
penalty that tightens, each iteration i = 1..n alternates

    u = argmin |k (*) u - y|^2 + alpha_i |u - z|^2   (closed form by FFT)
    z = denoise(u, s_i)                              (the network, as the proximal map of R)

with noise levels s_i falling geometrically from START_SIGMA to max(sigma, FLOOR) and
``alpha_i = LAMBDA max(sigma, DATA_FLOOR)^2 / s_i^2`` (Zhang et al., "Plug-and-Play Image
Restoration with Deep Denoiser Prior", 2021). DATA_FLOOR keeps the first u-steps of a
nearly noise-free image from being a plain inverse filter whose amplified noise is far
beyond what the network was trained on (chosen on tuning-corpus crops, docs/learned_prior.md).

Boundaries: the FFT treats the image as periodic, so the observation is extended by PAD
pixels (more than the kernel's size) and, at every iteration, the estimate's border is
replaced by the mirror of its interior, and the observation's border by the blur of that
estimate (the observed pixels themselves stay). With a plain (zero or periodic) border,
issue 17's prototype lost 12 dB on box and motion blurs; a mirrored observation alone is wrong for
diagonal blurs (a mirror turns a 45 degree streak into a 135 degree one).
"""
from __future__ import annotations

import numpy as np

from ..checks import fail
from .baselines import transfer_function
from .denoiser import MAX_SIGMA, apply_denoiser, load_denoiser
from .intensity import clip_to_box

__all__ = ["deconvolve_learned", "deconvolve_learned_image", "ITERATIONS", "LAMBDA"]

ITERATIONS = 16       # HQS iterations, as in issue 17's prototype
START_SIGMA = 0.1     # the first denoising strength (working units): the network's training maximum
FLOOR = 2e-3          # the last strength is never below this, even for noise-free input
DATA_FLOOR = 1e-2     # sigma in the data weight alpha is never below this (see the module docstring)
LAMBDA = 0.23         # DPIR's trade-off between the data term and the prior
MIN_PAD = 16          # mirror margin beyond the kernel's size


def _mirror(interior: np.ndarray, pad: int) -> np.ndarray:
    return np.pad(interior, pad, mode="symmetric")


def deconvolve_learned(y: np.ndarray, kernel: np.ndarray, sigma: float, box: tuple | None = None,
                       iterations: int | None = None) -> np.ndarray:
    """Restore one grey plane ``y`` (working units, about [0, 1]) blurred by ``kernel`` with noise ``sigma``.

    Shapes: y (H, W), kernel (kh, kw) normalised PSF -> (H, W) float64.
    """
    net = load_denoiser()
    n = ITERATIONS if iterations is None else iterations
    pad = max(kernel.shape) + MIN_PAD
    h, w = y.shape
    observed = _mirror(y, pad)
    otf = transfer_function(kernel, observed.shape)
    power = np.abs(otf) ** 2
    end = max(sigma, FLOOR)
    strengths = np.geomspace(max(START_SIGMA, end), end, n)
    z = observed
    for s in strengths:
        alpha = LAMBDA * max(sigma, DATA_FLOOR) ** 2 / s ** 2
        data_spectrum = np.conj(otf) * np.fft.rfft2(observed)
        u = np.fft.irfft2((data_spectrum + alpha * np.fft.rfft2(z)) / (power + alpha), s=observed.shape)
        interior = apply_denoiser(net, u[pad:pad + h, pad:pad + w], min(float(s), MAX_SIGMA)).astype(np.float64)
        z = _mirror(clip_to_box(interior, box), pad)
        observed = np.fft.irfft2(otf * np.fft.rfft2(z), s=observed.shape)  # outside y: what z predicts
        observed[pad:pad + h, pad:pad + w] = y
    return z[pad:pad + h, pad:pad + w]


def deconvolve_learned_image(y: np.ndarray, kernel: np.ndarray, sigma: float, box: tuple | None,
                             iterations: int | None, where: str) -> np.ndarray:
    """deconvolve(prior='learned') in working units. Shapes: (H, W) or (H, W, C) -> the same, float64."""
    if kernel.ndim != 2:
        raise fail(where, "a 2-D kernel with prior='learned' (the denoiser is 2-D)", f"kernel.shape == {kernel.shape}",
                   "use prior='local' for volumes")
    if y.ndim == 2:
        return deconvolve_learned(y, kernel, sigma, box, iterations)
    return np.stack([deconvolve_learned(y[..., c], kernel, sigma, box, iterations) for c in range(y.shape[-1])],
                    axis=-1)
