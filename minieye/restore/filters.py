"""Learning a filter from an image and its filtered copy (seed 002's experiment, done exactly).

Given ``source`` and ``filtered = source (x) w`` (``(x)``: cross-correlation, the
convention of ``F.conv2d`` and of CNNs), ``learn_filter`` finds the weight of a
Conv2D layer minimising mean((conv2d(source, w) - filtered)^2). This is linear least
squares with kh*kw unknowns, so it is solved as one, in float64: each output pixel is
one row (the kh x kw patch it saw) of a tall matrix, reduced by Householder QR in blocks
of rows (memory: one block, not the whole unfolding) and solved by ``lstsq`` on the
small triangular factor. On noise-free data that is exact to rounding whatever the
image's conditioning (an iterative solver stalls on smooth photographs, where the
patches are nearly collinear); on noisy data it is the least-squares fit, as before.

``filtered`` may be 'valid' size (H - kh + 1, W - kw + 1) or the same size as the
source. For a same-size copy only its interior, where the filter saw no padding, is
fitted: the result does not depend on how the filter treated the borders.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_ndim, fail, pair

__all__ = ["learn_filter"]


_BLOCK_ROWS = 1 << 14  # output pixels per QR block: 16384 x kh*kw float64


def _least_squares(x: np.ndarray, y: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """argmin_w |unfold(x) w - y| for x (H, W[, C]) and 'valid' y, by blockwise QR then lstsq.

    QR of the augmented rows [patch | target] gives R and Q^T y together (its last column),
    so Q is never formed; each block is stacked under the previous triangular factor.
    """
    patches = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(0, 1))  # (H', W'[, C], kh, kw), a view
    n = kh * kw
    step = max(1, _BLOCK_ROWS // (y[0].size or 1))  # output rows per block
    r = np.zeros((0, n + 1))
    for top in range(0, y.shape[0], step):
        block = np.hstack([patches[top:top + step].reshape(-1, n), y[top:top + step].reshape(-1, 1)])
        r = np.linalg.qr(np.vstack([r, block]), mode="r")
    return np.linalg.lstsq(r[:n, :n], r[:n, n], rcond=None)[0].reshape(kh, kw)


def learn_filter(source: Any, filtered: Any, kernel_size: Any = 3) -> np.ndarray:
    """The (kh, kw) kernel w with ``filtered ~ F.conv2d(source, w)`` (cross-correlation).

    To use it as a PSF (true convolution), flip it: ``w[::-1, ::-1]``.
    Shapes: source (H, W) or (H, W, C); filtered (H - kh + 1, W - kw + 1[, C]) or the
    source's shape -> (kh, kw) float64.
    """
    where = "learn_filter"
    kh, kw = pair(kernel_size, where, "kernel_size", minimum=1)
    x = as_float_array(source, where, "source", dtype=np.float64)
    y = as_float_array(filtered, where, "filtered", dtype=np.float64)
    check_ndim(x, (2, 3), where, "source", "(H, W) or (H, W, C)")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise fail(where, "finite source and filtered images", "NaN or Inf")
    h, w = x.shape[:2]
    if kh > h or kw > w:
        raise fail(where, "a kernel no larger than the source", f"kernel_size=({kh}, {kw}), source.shape == {x.shape}")
    valid = (h - kh + 1, w - kw + 1) + x.shape[2:]
    if y.shape == x.shape:
        top, left = (kh - 1) // 2, (kw - 1) // 2  # 'same' alignment (odd kernels: centred)
        y = y[top:top + valid[0], left:left + valid[1]]
    elif y.shape != valid:
        raise fail(where, f"filtered of the source's shape {x.shape} or 'valid' shape {valid}",
                   f"filtered.shape == {y.shape}")
    return _least_squares(x, y, kh, kw)
