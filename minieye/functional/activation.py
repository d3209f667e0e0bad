"""Fused activation passes (``minieye.kernels.activation``), for the layers of ``layers.activation``.

    from minieye.functional.activation import relu, relu_grad
    y = relu(x)                 # max(x, 0), one pass
    dx = relu_grad(dy, x)       # dy * [x > 0], one pass (y in place of x gives the same)

The layers hand these arrays they have already checked (C-contiguous float32 or float64,
``dy`` of the shape and dtype of ``x``), once per forward and backward call, so nothing is
checked again here. Shapes: any -> the same; the result has the input's dtype.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..checks import check_out
from ..kernels import activation as K
from ..kernels._threads import run_blocks, thread_count
from ..options import get

__all__ = ["relu", "relu_grad", "gelu", "gelu_grad"]


def _map(body: Callable, *arrays: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``body(*flat arrays, out)`` into ``out`` (None: a new array of the first one's shape and dtype;
    it may be one of the arrays: the kernels are element by element); from the
    ``elementwise_parallel_min_size`` knob on, one contiguous slice of them per thread."""
    out = np.empty_like(arrays[0]) if out is None else out
    flat = [a.reshape(-1) for a in arrays] + [out.reshape(-1)]
    if out.size >= max(get("elementwise_parallel_min_size"), 2) and thread_count() > 1:
        run_blocks(lambda lo, hi: body(*(a[lo:hi] for a in flat)), out.size)
    else:
        body(*flat)
    return out


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``max(x, 0)`` (NaN stays NaN), into ``out`` where given (C-contiguous, x's shape and dtype, no overlap
    with x; x itself computes in place)."""
    if out is not None:
        check_out(out, x.shape, x.dtype, "relu", in_place=x)
    return _map(K.relu_forward, x, out=out)


def relu_grad(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """ReLU's input gradient ``dy * [x > 0]`` from its input ``x`` (or its output: the same mask)."""
    return _map(K.relu_backward, dy, x)


def gelu(x: np.ndarray) -> np.ndarray:
    """``x Phi(x)``, Phi the standard normal CDF (float64 to libm's accuracy, float32 to ~3e-7)."""
    return _map(K.gelu_forward32 if x.dtype == np.float32 else K.gelu_forward64, x)


def gelu_grad(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """GELU's input gradient ``dy (Phi(x) + x phi(x))``."""
    return _map(K.gelu_backward32 if x.dtype == np.float32 else K.gelu_backward64, dy, x)
