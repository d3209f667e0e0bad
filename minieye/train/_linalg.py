"""Dot products and norms of flat float64 vectors, without BLAS.

``np.dot`` on a vector calls BLAS ``ddot``; with OpenBLAS threads on a busy machine a
16k-element ddot was measured at 25 ms instead of 20 us (threads spinning against each
other). ``einsum`` runs NumPy's own SIMD loop: as fast single-threaded, never that slow.
"""
from __future__ import annotations

import math

import numpy as np


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``sum(a * b)`` as a Python float (a, b: 1-d float64)."""
    return float(np.einsum("i,i->", a, b))


def norm(a: np.ndarray) -> float:
    """Euclidean norm (inf when the sum of squares overflows)."""
    return math.sqrt(dot(a, a))
