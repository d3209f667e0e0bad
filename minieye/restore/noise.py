"""Estimating the standard deviation of additive white Gaussian noise from one image.

``estimate_noise(image, method='mad')``: Donoho's robust estimator on the finest
diagonal Haar wavelet band: HH = (a - b - c + d) / 2 over each 2x2 block (an
orthonormal transform, so white noise of sd sigma gives HH of sd sigma), and

    sigma = median(|HH|) / 0.6745   (0.6745 = the normal distribution's MAD)

Natural images are sparse in HH, so the median mostly sees noise. It reads high where
the finest scale still holds signal: a texture (grass, gravel) under a directional blur
keeps detail across the blur's direction, and the Haar band sees it as noise (2-4x too
high at low noise).

``estimate_noise(image, kernel=k)``, the kernel-aware estimate ``deconvolve`` uses: the
noise power at the frequencies the blur has removed. With Y = K X + N (unitary DFT),
E|Y(f)|^2 = |K(f)|^2 |X(f)|^2 + sigma^2, and natural images have |X(f)|^2 falling like
1 / |f|^2, so the frequencies with the smallest |K(f)|^2 |f|^-2 hold the least signal.
Over the ``REMOVED_SHARE`` of frequencies ranked lowest by it, |Y(f)|^2 / sigma^2 is
(nearly) exponentially distributed, and a low quantile (``QUANTILE``) is the least
touched by the signal that is left:

    sigma^2 = quantile_q(|Y(f)|^2 over those f) / -ln(1 - q)

Y is the DFT of the image's periodic component (Moisan's periodic + smooth
decomposition), so the jump between opposite borders adds no cross of false power. The
result is the smaller of this and the Haar estimate (both err upwards, by signal taken
for noise). Where a blur removes little (a short motion streak at noise below 0.003)
both still read high; see docs/restoration.md for the measured ratios.

``method='pca'``: the smallest eigenvalue of the covariance of the weak-textured 7x7
patches (Liu, Tanaka and Okutomi 2013; noise_pca.py): on fine textures, where the Haar
band reads 2-3x high at low noise, it reads within about 10% (docs/learned_prior.md).
It is what ``restore.denoise`` uses; it needs at least 16 pixels on each side.

``method='immerkaer'``: Immerkaer (1996): filter with the mask
M = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] (which cancels planes and ramps) and take
sigma = sqrt(pi / 2) / (6 (H - 2)(W - 2)) * sum |I * M|. Faster to reason about, but
the mean (not the median) lets strong edges raise the estimate.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_ndim, fail
from .baselines import transfer_function
from .noise_pca import weak_texture_sigma
from .psf import normalize_kernel

__all__ = ["estimate_noise", "periodic_component"]

REMOVED_SHARE = 0.1  # the share of frequencies, ranked by |K(f)|^2 / |f|^2, taken as (nearly) noise only
QUANTILE = 0.25      # of |Y(f)|^2 over them; -ln(1 - q) is that quantile of a unit exponential
MIN_REMOVED = 256    # at least this many frequencies (small images)


def haar_diagonal(x: np.ndarray) -> np.ndarray:
    """|HH|, the finest diagonal Haar band of an (H, W) plane, (H // 2, W // 2); HH keeps white noise's sd."""
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    return np.abs(x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2.0


def _mad_haar(x: np.ndarray) -> float:
    return float(np.median(haar_diagonal(x)) / 0.6744897501960817)


def _immerkaer(x: np.ndarray) -> float:
    m = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    h, w = x.shape
    acc = np.zeros((h - 2, w - 2))
    for a in range(3):
        for b in range(3):
            acc += m[a, b] * x[a:a + h - 2, b:b + w - 2]
    return float(np.sqrt(np.pi / 2.0) * np.abs(acc).sum() / (6.0 * (h - 2) * (w - 2)))


def periodic_component(x: np.ndarray) -> np.ndarray:
    """Moisan's periodic component of an (H, W) plane: x minus the smooth image that carries its border jumps.

    Returns its rfft2 (H, W // 2 + 1): the spectrum of ``x`` without the cross that a
    non-periodic image's borders add.
    """
    h, w = x.shape
    jumps = np.zeros_like(x)
    jumps[0, :] += x[-1, :] - x[0, :]
    jumps[-1, :] += x[0, :] - x[-1, :]
    jumps[:, 0] += x[:, -1] - x[:, 0]
    jumps[:, -1] += x[:, 0] - x[:, -1]
    fy = np.cos(2 * np.pi * np.fft.fftfreq(h))[:, None]
    fx = np.cos(2 * np.pi * np.fft.rfftfreq(w))[None, :]
    denom = 4.0 - 2.0 * fy - 2.0 * fx
    denom[0, 0] = 1.0
    smooth = np.fft.rfft2(jumps) / denom
    smooth[0, 0] = 0.0
    return np.fft.rfft2(x) - smooth


def _kernel_aware(x: np.ndarray, k: np.ndarray) -> float:
    h, w = x.shape
    if k.shape[0] > h or k.shape[1] > w:
        return _mad_haar(x)
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    radius2 = fy * fy + fx * fx
    radius2[0, 0] = np.inf  # the mean is signal, never noise
    rank = np.abs(transfer_function(k, (h, w))) ** 2 / radius2
    count = min(rank.size, max(MIN_REMOVED, int(REMOVED_SHARE * rank.size)))
    quietest = np.argpartition(rank, count - 1, axis=None)[:count]
    power = np.abs(periodic_component(x).ravel()[quietest]) ** 2 / (h * w)
    spectral = float(np.sqrt(np.quantile(power, QUANTILE) / -np.log1p(-QUANTILE)))
    return min(spectral, _mad_haar(x))


def estimate_noise(image: Any, method: str = "mad", kernel: Any = None) -> float:
    """Standard deviation of the additive Gaussian noise in ``image``, in its units.

    ``kernel``: the blur the image went through (a (kh, kw) PSF); with method 'mad' it
    gives the kernel-aware estimate (see the module docstring).
    Shapes: (H, W) or (H, W, C) with H, W >= 4; colour images average the channels.
    """
    where = f"estimate_noise(method={method!r})"
    x = as_float_array(image, where, "image", dtype=np.float64)
    check_ndim(x, (2, 3), where, "image", "(H, W) or (H, W, C)")
    if min(x.shape[:2]) < 4:
        raise fail(where, "an image at least 4 pixels on each side", f"image.shape == {x.shape}")
    if not np.isfinite(x).all():
        raise fail(where, "finite pixel values", "NaN or Inf in image")
    fn = {"mad": _mad_haar, "immerkaer": _immerkaer, "pca": weak_texture_sigma}.get(method)
    if fn is None:
        raise fail("estimate_noise", "method 'mad', 'pca' or 'immerkaer'", f"method={method!r}")
    if method == "pca" and min(x.shape[:2]) < 16:
        raise fail(where, "an image at least 16 pixels on each side", f"image.shape == {x.shape}")
    if kernel is not None and method == "mad":
        k = normalize_kernel(kernel, where)

        def fn(p: np.ndarray) -> float:
            return _kernel_aware(p, k)
    if x.ndim == 3:
        return float(np.mean([fn(x[..., c]) for c in range(x.shape[2])]))
    return fn(x)
