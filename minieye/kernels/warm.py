"""Compile (or load from the cache) every Numba kernel once, for both dtypes.

Nothing compiles at import; a process that wants no first-call pauses later (a
benchmark, a Dask worker, a long-running service) calls ``warm_up()`` once. The
benchmark ``benchmarks/bench_kernels.py`` times it on a cold and a warm cache.
"""
from __future__ import annotations

import numpy as np

from . import activation as kact
from . import conv_warm
from . import nonlocal_tv as knl
from . import tv as ktv
from . import pool as kpool
from . import upsample as kup

__all__ = ["warm_up"]


def _warm_pooling(dtypes: tuple) -> None:
    # the threaded paths (_threads.run_parts) call these same serial kernels: one pass compiles both
    for dtype in dtypes:
        x = np.ones((2, 3, 4, 4), dtype=dtype)
        y, switches = kpool.max_pool_forward(x, (2, 2), (2, 2), (0, 0))
        kpool.gather_switches(kpool.scatter_switches(y, switches, (4, 4)), switches)
        a = kpool.avg_pool_forward(x, (3, 3), (2, 2), (1, 1), True)
        kpool.avg_pool_backward(a, (4, 4), (3, 3), (2, 2), (1, 1), False)
        kup.upsample_nearest_backward(kup.upsample_nearest_forward(x, 2, 2), 2, 2)
        kup.upsample_bilinear_backward(kup.upsample_bilinear_forward(x, 2, 2), 2, 2)


def _warm_activations(dtypes: tuple) -> None:
    for dtype in dtypes:  # the threaded path passes slices of the same contiguous vectors
        x, out = np.ones(4, dtype=dtype), np.empty(4, dtype=dtype)
        kact.relu_forward(x, out)
        kact.relu_backward(x, x, out)
        forward, backward = (kact.gelu_forward32, kact.gelu_backward32) if dtype == np.float32 else \
            (kact.gelu_forward64, kact.gelu_backward64)
        forward(x, out)
        backward(x, x, out)


def _warm_tv(dtypes: tuple) -> None:
    for dtype in dtypes:  # the multi-threaded path calls the same compiled row functions
        x = np.ones((2, 5, 6), dtype=dtype)
        _, f = ktv.tv_forward(x, 1e-2, 1.0)
        ktv.tv_backward(x, f, 1.0)
        _, m = ktv.tv2_forward(x, 1e-2)
        ktv.tv2_backward(x, m, 1.0)


def _warm_nonlocal_tv(dtypes: tuple) -> None:
    offsets, searchable = np.array([[0, 1], [1, 0], [1, 1]], np.int64), np.ones(3, np.bool_)
    index, weight64 = np.empty((16, 4), np.int32), np.empty((16, 4), np.float64)
    # graphs are always built in float64 (losses.nonlocal_graph)
    knl.nonlocal_graph_rows(np.zeros((1, 6, 6)), 4, 4, offsets, searchable, 1, 2, 1.0, index, weight64)
    index.setflags(write=False)  # NonLocalTV passes read-only graph arrays
    for dtype in dtypes:
        weight = weight64.astype(dtype)
        weight.setflags(write=False)
        knl.nonlocal_tv_value_grad(np.zeros(16, dtype), index, weight, dtype(0.01), np.empty(16, dtype))


def warm_up(dtypes: tuple = (np.float32, np.float64)) -> None:
    """Run every convolution, pooling, upsampling, activation and regularizer kernel once per dtype."""
    conv_warm.warm_up(dtypes)
    _warm_pooling(dtypes)
    _warm_activations(dtypes)
    _warm_tv(dtypes)
    _warm_nonlocal_tv(dtypes)
