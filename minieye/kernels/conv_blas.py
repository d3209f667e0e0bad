"""``gemm``: BLAS's xGEMM called from Numba kernels, on strided operands, accumulating.

Numba's ``np.dot`` needs contiguous operands, overwrites its output and calls SciPy's
BLAS. The per-tap convolution (``conv_taps``) multiplies *views*: the input a kernel tap
reads is a run of every channel's padded plane, a matrix whose rows are one plane apart,
and the taps' products add up in one output. ``gemm`` passes such views to xGEMM as they
are (leading dimensions) with ``beta`` = 1 to accumulate.

The kernels call the external symbols ``minieye_sgemm`` / ``minieye_dgemm``, which
``bind()`` points at a BLAS: NumPy's bundled OpenBLAS when it exports xGEMM (its
64-bit-integer build: ``scipy_sgemm_64_``), else SciPy's
``cython_blas`` (32-bit integers). NumPy's (OpenBLAS 0.3.31 here) ran the convolutions'
products 20-35 % faster than SciPy's 0.3.30 (docs/kernels.md). The integer width is
``int_dtype()``; kernels take a small ``ints`` scratch of that dtype, so one compiled
(and cached) kernel serves either library. The module binds at import (microseconds when NumPy's
library serves: it is loaded already), because a cached kernel run with its symbol unbound
would crash the process.
"""
from __future__ import annotations

import ctypes
import threading

import numba
import numpy as np
from numba import types

from ._jit import kernel

__all__ = ["bind", "int_dtype", "library", "gemm"]

_VOID = types.voidptr
_SGEMM = types.ExternalFunction("minieye_sgemm", types.void(*([_VOID] * 13)))
_DGEMM = types.ExternalFunction("minieye_dgemm", types.void(*([_VOID] * 13)))

_lock = threading.Lock()
_bound: tuple[str, type] | None = None


def _numpy_blas() -> tuple[int, int] | None:
    """Addresses of sgemm/dgemm in NumPy's own BLAS, if it is an OpenBLAS with 64-bit integers
    (looked up through NumPy's compiled core, which links it)."""
    core = getattr(getattr(np, "_core", None), "_multiarray_umath", None) or getattr(np.core, "_multiarray_umath")
    try:
        lib = ctypes.CDLL(core.__file__)
    except (OSError, AttributeError):
        return None
    for prefix in ("scipy_", ""):
        s, d = getattr(lib, f"{prefix}sgemm_64_", None), getattr(lib, f"{prefix}dgemm_64_", None)
        if s is not None and d is not None:
            return ctypes.cast(s, ctypes.c_void_p).value, ctypes.cast(d, ctypes.c_void_p).value
    return None


def bind() -> None:
    """Point the kernels' xGEMM symbols at a BLAS (once per process, at import; cheap afterwards)."""
    global _bound
    if _bound is not None:
        return
    with _lock:
        if _bound is not None:
            return
        import llvmlite.binding as llvm
        found = _numpy_blas()
        if found is not None:
            (s_address, d_address), name, integer = found, "NumPy's OpenBLAS", np.int64
        else:
            from numba.extending import get_cython_function_address
            s_address = get_cython_function_address("scipy.linalg.cython_blas", "sgemm")
            d_address = get_cython_function_address("scipy.linalg.cython_blas", "dgemm")
            name, integer = "SciPy's cython_blas", np.int32
        llvm.add_symbol("minieye_sgemm", s_address)
        llvm.add_symbol("minieye_dgemm", d_address)
        _bound = (name, integer)


def int_dtype() -> type:
    """The integer dtype of the bound BLAS's arguments (``ints`` scratch of the kernels)."""
    return _bound[1]


def library() -> str:
    """Which BLAS the kernels' products run on (for benchmarks' headers)."""
    return _bound[0]


@kernel
def gemm(trans_a, trans_b, a, lda, b, ldb, c, ldc, m, n, k, beta, ints, scalars):
    """Row-major ``c[m, n] = op(a) @ op(b) + beta * c``, op transposing when ``trans_*`` is set.

    ``a``, ``b``, ``c`` are 1-D views starting at each matrix's first element, with row strides
    (in elements) ``lda``, ``ldb``, ``ldc``: op(a) is (m, k), op(b) is (k, n). ``ints``: 8
    integers of ``int_dtype()``; ``scalars``: 2 of c's dtype (scratch for the by-reference
    arguments). Runs as the column-major ``c^T = op(b)^T @ op(a)^T``.
    """
    ints[0] = n
    ints[1] = m
    ints[2] = k
    ints[3] = ldb
    ints[4] = lda
    ints[5] = ldc
    ints[6] = 84 if trans_b else 78  # 'T' / 'N'
    ints[7] = 84 if trans_a else 78
    scalars[0] = 1.0
    scalars[1] = beta
    p = ints.ctypes.data
    step = ints.itemsize
    args = (p + 6 * step, p + 7 * step, p, p + step, p + 2 * step, scalars.ctypes.data, b.ctypes.data,
            p + 3 * step, a.ctypes.data, p + 4 * step, scalars.ctypes.data + scalars.itemsize, c.ctypes.data,
            p + 5 * step)
    if scalars.itemsize == 4:
        _SGEMM(*args)
    else:
        _DGEMM(*args)


def _strided(v: np.ndarray, rows: int, cols: int, ld: int) -> np.ndarray:
    """The (rows, cols) row-major matrix with row stride ``ld`` (elements) that starts at v[0]."""
    return np.lib.stride_tricks.as_strided(v, (rows, cols), (ld * v.itemsize, v.itemsize))


def _gemm_python(trans_a, trans_b, a, lda, b, ldb, c, ldc, m, n, k, beta, ints, scalars):
    """``gemm`` as plain Python, for NUMBA_DISABLE_JIT=1: the external xGEMM symbols exist only in
    compiled code (called from Python, they would silently do nothing)."""
    op_a = _strided(a, k, m, lda).T if trans_a else _strided(a, m, k, lda)
    op_b = _strided(b, n, k, ldb).T if trans_b else _strided(b, k, n, ldb)
    out = _strided(c, m, n, ldc)
    product = op_a @ op_b
    if beta == 0:  # as BLAS: c is not read (it may hold garbage)
        out[...] = product
    else:
        out[...] = product + beta * out


if numba.config.DISABLE_JIT:
    gemm = _gemm_python  # noqa: F811

bind()
