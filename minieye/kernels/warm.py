"""Compile (or load from the cache) every Numba kernel once, for both dtypes.

Nothing compiles at import; a process that wants no first-call pauses later (a
benchmark, a Dask worker, a long-running service) calls ``warm_up()`` once. The
benchmark ``benchmarks/bench_kernels.py`` times it on a cold and a warm cache.
"""
from __future__ import annotations

import numpy as np

from . import conv_warm
from . import pool as kpool

__all__ = ["warm_up"]


def _warm_pooling(dtypes: tuple) -> None:
    # late import: functional validates and picks the kernels exactly as users' calls do
    from .. import functional as F

    saved = kpool.PARALLEL_MIN_WORK
    try:
        for threshold in (1 << 62, 0):  # serial bodies, then the parallel drivers
            kpool.PARALLEL_MIN_WORK = threshold
            for dtype in dtypes:
                x = np.ones((2, 3, 4, 4), dtype=dtype)
                y, switches = F.max_pool2d(x, 2)
                F.max_unpool2d_backward(F.max_unpool2d(y, switches, (4, 4)), switches)
                a = F.avg_pool2d(x, 3, stride=2, padding=1)
                F.avg_pool2d_backward(a, (4, 4), 3, stride=2, padding=1)
                for mode in ("nearest", "bilinear"):
                    F.upsample_backward(F.upsample(x, 2, mode=mode), 2, mode=mode)
                F.global_avg_pool2d(x)
    finally:
        kpool.PARALLEL_MIN_WORK = saved


def warm_up(dtypes: tuple = (np.float32, np.float64)) -> None:
    """Run every convolution, pooling and upsampling kernel once per dtype."""
    conv_warm.warm_up(dtypes)
    _warm_pooling(dtypes)
