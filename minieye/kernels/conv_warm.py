"""Compile (or load from cache) every convolution kernel, for both dtypes, in one call.

The first convolution of a process otherwise pays Numba's compilation (or cache load)
for each kernel it meets. ``warm_up()`` runs every code path "auto" can choose once on tiny
arrays: every algorithm, stride 1 and 2 (Winograd F(4x4), taps and small: stride 1), GEMM per sample
and over blocks of samples, products per shift (a 4x4 kernel at stride 2), small on one image. The paths that only
run when forced compile when first used: Winograd F(2x2) (about 6 s of CPU per dtype beyond what
it shares with F(4x4)) and TAPS over stacked samples. The threaded paths (``_threads.run_blocks``)
call the same serial kernels on sub-ranges, so one serial pass compiles them too (checked: forcing
the parallel thresholds to 0 afterwards adds no signature), and nothing here touches module
state: warming up is safe beside other threads.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..options import options
from . import conv as kconv, conv_transpose_phases
from .conv_geometry import Geometry
from .conv_plan import plan


def warm_up(dtypes: tuple = (np.float32, np.float64)) -> None:
    """Run every convolution kernel once per dtype (compiling or loading it)."""
    for dtype in dtypes:
        x = np.ones((2, 4, 5, 5), dtype=dtype)
        for algorithm, strides, blocks in (("direct", (1, 2), 1), ("gemm", (1, 2), 1), ("gemm", (1,), 2),
                                           ("winograd4", (1,), 1), ("taps", (1,), 1), ("small", (1,), 1)):
            for stride in strides:
                g = Geometry((stride, stride), (1, 1), (1, 1), 1)
                w = np.ones((4, 4, 3, 3), dtype=dtype)
                with options(conv_algorithm=algorithm, conv_sample_block=blocks):  # per sample, blocks of 2
                    p = plan(x.shape, w.shape, g)
                y = kconv.conv2d_forward(x, w, g, p)
                kconv.conv2d_grad_input(y, w, x.shape[2:], g, p)
                kconv.conv2d_grad_weight(x, y, (3, 3), g, p)
                kconv.conv2d_backward_transposed(x, w, y, g, p)  # forward and dw in one pass
                if algorithm == "winograd4":  # both gradients in one pass, and the input gradient as the
                    dy, w_wide = np.ones((2, 8, 5, 5), dtype), np.ones((8, 4, 3, 3), dtype)  # forward's adjoint:
                    kconv.conv2d_backward(x, dy, w_wide, g, p)  # both where there are more outputs than inputs
                    kconv.conv2d_grad_input(dy, w_wide, (5, 5), g, p)
        # SMALL cuts a batch of one image into blocks of rows: a second compiled form of its kernels
        g, w = Geometry((1, 1), (1, 1), (1, 1), 1), np.ones((4, 4, 3, 3), dtype=dtype)
        with options(conv_algorithm="small"):
            p = plan(x[:1].shape, w.shape, g)
        y = kconv.conv2d_forward(x[:1], w, g, p)
        kconv.conv2d_grad_input(y, w, x.shape[2:], g, p)
        # per shift (conv_shifts), which "auto" plans for TAPS layers whose stride divides the kernel
        g = Geometry((2, 2), (1, 1), (1, 1), 1)
        w = np.ones((4, 4, 4, 4), dtype=dtype)
        with options(conv_algorithm="taps"):
            p = replace(plan(x.shape, w.shape, g), shifts=True)
        y = kconv.conv2d_forward(x, w, g, p)
        kconv.conv2d_grad_input(y, w, x.shape[2:], g, p)
        kconv.conv2d_backward_transposed(x, w, y, g, p)  # the forward and the weight gradient's kernel
        # the same up-sampler as one 3x3 convolution into phase channels: its interleaving copies
        phases = conv_transpose_phases.fit(x.shape, w.shape, g, (10, 10))
        conv_transpose_phases.backward(conv_transpose_phases.forward(x, w, phases, (10, 10)), w, x, phases)
