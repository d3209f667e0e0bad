"""Image quality metrics: PSNR and SSIM (NumPy only).

PSNR = 10 log10(data_range^2 / MSE).

SSIM (Wang, Bovik, Sheikh & Simoncelli, 2004) compares local means, variances and
covariance in a sliding window w (Gaussian, sigma 1.5, 11 taps by default)::

    SSIM(x, y) = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))
    C1 = (K1 L)^2, C2 = (K2 L)^2, K1 = 0.01, K2 = 0.03, L = data_range

averaged over the pixels whose window lies inside the image (a border of
(win_size - 1) // 2 is left out, as scikit-image does). Colour images (H, W, C)
average the per-channel SSIM. ``structural_similarity(..., gaussian_weights=False,
win_size=7, use_sample_covariance=True)`` reproduces scikit-image's defaults.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_ndim, check_same_shape, fail

__all__ = ["psnr", "ssim", "mse"]


def _pair(reference: Any, image: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    a = as_float_array(reference, where, "reference", dtype=np.float64)
    b = as_float_array(image, where, "image", dtype=np.float64)
    check_same_shape(a, b, where, ("reference", "image"))
    return a, b


def _data_range(reference: Any, data_range: float | None) -> float:
    if data_range is not None:
        return float(data_range)
    dtype = np.asarray(reference).dtype
    if dtype.kind in "ui":  # integer images span their dtype's range
        info = np.iinfo(dtype)
        return float(info.max - info.min) if dtype.kind == "i" else float(info.max)
    return 1.0  # float images are taken to be in [0, 1]


def mse(reference: Any, image: Any) -> float:
    """Mean squared difference."""
    a, b = _pair(reference, image, "mse")
    return float(np.mean((a - b) ** 2))


def psnr(reference: Any, image: Any, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical images).

    ``data_range`` defaults to 1 for float images and the dtype's span for integers.
    Shapes: any, same for both.
    """
    a, b = _pair(reference, image, "psnr")
    err = float(np.mean((a - b) ** 2))
    rng = _data_range(reference, data_range)
    return float("inf") if err == 0 else float(10.0 * np.log10(rng * rng / err))


def _filter_axis(x: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """Correlate along ``axis`` with symmetric-padding ('reflect' in scipy.ndimage terms)."""
    r = len(taps) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    xp = np.pad(x, pad, mode="symmetric")
    n = x.shape[axis]
    out = np.zeros_like(x)
    for i, t in enumerate(taps):
        out += t * np.take(xp, np.arange(i, i + n), axis=axis)
    return out


def _window_mean(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    return _filter_axis(_filter_axis(x, taps, 0), taps, 1)


def ssim(reference: Any, image: Any, data_range: float | None = None, *, gaussian_weights: bool = True,
         sigma: float = 1.5, win_size: int | None = None, use_sample_covariance: bool = False,
         k1: float = 0.01, k2: float = 0.03, full: bool = False) -> Any:
    """Mean structural similarity of two (H, W) or (H, W, C) images.

    Defaults are the paper's (Gaussian window, sigma 1.5, population covariance).
    ``full=True`` also returns the SSIM map (border included, unlike the mean).
    Shapes: (H, W) or (H, W, C), same for both; H and W at least the window size.
    """
    where = "ssim"
    a, b = _pair(reference, image, where)
    check_ndim(a, (2, 3), where, "reference", "(H, W) or (H, W, C)")
    if a.ndim == 3:
        maps = [ssim(a[..., c], b[..., c], _data_range(reference, data_range), gaussian_weights=gaussian_weights,
                     sigma=sigma, win_size=win_size, use_sample_covariance=use_sample_covariance,
                     k1=k1, k2=k2, full=True) for c in range(a.shape[2])]
        mean = float(np.mean([m[0] for m in maps]))
        return (mean, np.stack([m[1] for m in maps], axis=-1)) if full else mean
    if gaussian_weights:
        radius = int(3.5 * sigma + 0.5)  # scipy.ndimage.gaussian_filter's truncate=3.5
        win_size = 2 * radius + 1 if win_size is None else win_size
        t = np.arange(-radius, radius + 1)
        taps = np.exp(-0.5 * (t / sigma) ** 2)
        taps /= taps.sum()
    else:
        win_size = 7 if win_size is None else win_size
        if win_size % 2 == 0 or win_size < 3:
            raise fail(where, "an odd win_size >= 3", f"win_size={win_size}")
        taps = np.full(win_size, 1.0 / win_size)
    if min(a.shape) < win_size:
        raise fail(where, f"images at least {win_size} pixels on each side", f"shape {a.shape}")
    n_pixels = win_size ** 2
    cov_norm = n_pixels / (n_pixels - 1) if use_sample_covariance else 1.0
    L = _data_range(reference, data_range)
    c1, c2 = (k1 * L) ** 2, (k2 * L) ** 2
    ux, uy = _window_mean(a, taps), _window_mean(b, taps)
    vx = cov_norm * (_window_mean(a * a, taps) - ux * ux)
    vy = cov_norm * (_window_mean(b * b, taps) - uy * uy)
    vxy = cov_norm * (_window_mean(a * b, taps) - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    mean = float(s[pad:s.shape[0] - pad, pad:s.shape[1] - pad].mean())
    return (mean, s) if full else mean
