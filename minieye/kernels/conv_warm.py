"""Compile (or load from cache) every convolution kernel, for both dtypes, in one call.

The first convolution of a process otherwise pays Numba's compilation (or cache load)
for each kernel it meets. ``warm_up()`` runs every code path once on tiny arrays:
both algorithms, stride 1 and 2, serial and parallel. The benchmark times it on a
cold cache (the whole kernel set's compile time) and on a warm one (the load time).
"""
from __future__ import annotations

import numpy as np

from . import conv as kconv
from . import conv_direct


def warm_up(dtypes: tuple = (np.float32, np.float64)) -> None:
    """Run every convolution kernel once per dtype (compiling or loading it)."""
    saved = conv_direct._PARALLEL_MIN_WORK, kconv._GEMM_PARALLEL_MIN_WORK
    try:
        for parallel in (False, True):
            # Thresholds decide serial vs parallel; force each side once.
            conv_direct._PARALLEL_MIN_WORK = 0 if parallel else 1 << 62
            kconv._GEMM_PARALLEL_MIN_WORK = 0 if parallel else 1 << 62
            for dtype in dtypes:
                x = np.ones((2, 4, 5, 5), dtype=dtype)
                for algorithm, c_out in (("direct", 4), ("gemm", 4)):
                    for stride in (1, 2):
                        g = kconv.Geometry(stride, stride, 1, 1, 1, 1, 1)
                        w = np.ones((c_out, 4, 3, 3), dtype=dtype)
                        y = kconv.conv2d_forward(x, w, g, algorithm)
                        kconv.conv2d_grad_input(y, w, x.shape[2:], g, algorithm)
                        kconv.conv2d_grad_weight(x, y, (3, 3), g, algorithm)
                        kconv.conv2d_backward_transposed(x, w, y, g)  # forward and dw in one pass
    finally:
        conv_direct._PARALLEL_MIN_WORK, kconv._GEMM_PARALLEL_MIN_WORK = saved
