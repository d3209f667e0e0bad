"""Estimating the standard deviation of additive white Gaussian noise from one image.

``estimate_noise(image, method='mad')``: Donoho's robust estimator on the finest
diagonal Haar wavelet band: HH = (a - b - c + d) / 2 over each 2x2 block (an
orthonormal transform, so white noise of sd sigma gives HH of sd sigma), and

    sigma = median(|HH|) / 0.6745   (0.6745 = the normal distribution's MAD)

Natural images are sparse in HH, so the median mostly sees noise. Blur makes HH even
sparser, which is why this works well on the blurred photos that deconvolve() gets.

``method='immerkaer'``: Immerkaer (1996): filter with the mask
M = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] (which cancels planes and ramps) and take
sigma = sqrt(pi / 2) / (6 (H - 2)(W - 2)) * sum |I * M|. Faster to reason about, but
the mean (not the median) lets strong edges raise the estimate.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_ndim, fail

__all__ = ["estimate_noise"]


def _mad_haar(x: np.ndarray) -> float:
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    hh = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2.0
    return float(np.median(np.abs(hh)) / 0.6744897501960817)


def _immerkaer(x: np.ndarray) -> float:
    m = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    h, w = x.shape
    acc = np.zeros((h - 2, w - 2))
    for a in range(3):
        for b in range(3):
            acc += m[a, b] * x[a:a + h - 2, b:b + w - 2]
    return float(np.sqrt(np.pi / 2.0) * np.abs(acc).sum() / (6.0 * (h - 2) * (w - 2)))


def estimate_noise(image: Any, method: str = "mad") -> float:
    """Standard deviation of the additive Gaussian noise in ``image``, in its units.

    Shapes: (H, W) or (H, W, C) with H, W >= 4; colour images average the channels.
    """
    where = f"estimate_noise(method={method!r})"
    x = as_float_array(image, where, "image", dtype=np.float64)
    check_ndim(x, (2, 3), where, "image", "(H, W) or (H, W, C)")
    if min(x.shape[:2]) < 4:
        raise fail(where, "an image at least 4 pixels on each side", f"image.shape == {x.shape}")
    if not np.isfinite(x).all():
        raise fail(where, "finite pixel values", "NaN or Inf in image")
    fn = {"mad": _mad_haar, "immerkaer": _immerkaer}.get(method)
    if fn is None:
        raise fail("estimate_noise", "method 'mad' or 'immerkaer'", f"method={method!r}")
    if x.ndim == 3:
        return float(np.mean([fn(x[..., c]) for c in range(x.shape[2])]))
    return fn(x)
