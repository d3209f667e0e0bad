"""Learning a filter from an image and its filtered copy (seed 002's experiment, done exactly).

Given ``source`` and ``filtered = source (x) w`` (``(x)``: cross-correlation, the
convention of ``F.conv2d`` and of CNNs), ``learn_filter`` fits the weight of a
Conv2D layer by minimising mean((conv2d(source, w) - filtered)^2) with L-BFGS. This
is linear least squares, so on noise-free data it converges to the true filter up to
rounding (the seed's SGD estimates were off by a factor of about three).

``filtered`` may be 'valid' size (H - kh + 1, W - kw + 1) or the same size as the
source. For a same-size copy only its interior, where the filter saw no padding, is
fitted: the result does not depend on how the filter treated the borders.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_ndim, fail, pair
from ..layers import Conv2D
from .. import losses, train

__all__ = ["learn_filter"]


def _planes(x: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) -> (N, 1, H, W) with the channels as a batch."""
    return x[None, None] if x.ndim == 2 else np.moveaxis(x, -1, 0)[:, None]


def learn_filter(source: Any, filtered: Any, kernel_size: Any = 3, *, iterations: int = 200,
                 tolerance: float = 1e-14) -> np.ndarray:
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
    conv = Conv2D(1, 1, (kh, kw), bias=False, dtype="float64", name="filter")
    conv.weight.value[...] = 0.0
    problem = train.Problem(conv, losses.MSE(), _planes(x), _planes(y))
    train.Trainer(problem, train.LBFGS(), train.ArmijoWolfe()).run(max_iterations=iterations, target_loss=tolerance)
    return conv.weight.value[0, 0].copy()
