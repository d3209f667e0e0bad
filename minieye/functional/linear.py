"""How many BLAS threads a Dense layer's products get (``minieye.kernels._blas``).

    from minieye.functional.linear import blas_threads_for
    with blas_threads_for(x.size * out_features):     # multiply-adds of the product
        y = x @ w.T

A product below the ``dense_parallel_min_work`` knob (multiply-adds) runs with every loaded
BLAS held to one thread; a larger one gets BLAS's own threads. OpenBLAS threads a GEMM of a
few million multiply-adds (LeNet's 400->120 layer on a batch of 64), where handing work to
a second thread costs about what it saves on an idle machine, and on a busy one far more:
with 2 BLAS threads and other processes on both cores that layer measured 42 ms forward
instead of 0.1 ms (its threads wait for each other). Holding BLAS costs a few microseconds.
"""
from __future__ import annotations

import contextlib
from typing import ContextManager

from ..kernels._blas import single_threaded_blas
from ..options import get

__all__ = ["blas_threads_for"]


def blas_threads_for(work: int) -> ContextManager:
    """One BLAS thread inside the block when ``work`` (multiply-adds) is below the knob, else no change."""
    return single_threaded_blas() if work < get("dense_parallel_min_work") else contextlib.nullcontext()
