"""Hold BLAS to one thread while a Numba kernel calls it from several of our own threads.

Numba's ``np.dot`` calls SciPy's BLAS; when the GEMM convolution runs its blocks on
several threads (``_threads.run_blocks``), each must get a single-threaded BLAS, or the
two kinds of threads oversubscribe the cores (and OpenBLAS prints 'Detect OpenMP Loop'
warnings under an OpenMP threading layer). Switching
the thread count through a cached threadpoolctl controller costs a few microseconds
per call, unlike ``threadpool_limits`` (about a millisecond: it rescans the libraries).
Only the GEMM convolution enters it, for the length of one call. On exit a count is put
back only where it is still the 1 set here, so a setting the user changed meanwhile stays.
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator

_controllers: list | None = None


def blas_controllers() -> list:
    """threadpoolctl's controllers of every loaded BLAS (SciPy's loaded first; cached)."""
    global _controllers
    if _controllers is None:
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS Numba will call)
            from threadpoolctl import ThreadpoolController
            _controllers = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _controllers = []
    return _controllers


# OpenBLAS core types whose SGEMM/DGEMM kernels use AVX-512 (``OPENBLAS_CORETYPE`` can pin an older one)
_AVX512_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})
_avx512: bool | None = None


def avx512_blas() -> bool:
    """Whether every loaded BLAS runs AVX-512 kernels (cached; loads SciPy's BLAS on first call).
    With them, products with few rows (6-16 output channels) run about twice as fast as AVX2's,
    which moves the best algorithm for single-input-channel convolutions (``conv_plan``)."""
    global _avx512
    if _avx512 is None:
        archs = [str(getattr(c, "architecture", "")).lower() for c in blas_controllers()]
        _avx512 = bool(archs) and all(a in _AVX512_CORES for a in archs)
    return _avx512


_lock = threading.Lock()
_depth = 0
_saved: list = []


def _reset_after_fork() -> None:
    global _lock, _depth, _saved
    _lock, _depth, _saved = threading.Lock(), 0, []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Every loaded BLAS at one thread inside the block, restored when the last block exits
    (reference-counted, so concurrent convolutions from several user threads restore once)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = []
            for controller in blas_controllers():
                count = controller.get_num_threads()
                if count != 1:
                    controller.set_num_threads(1)
                    _saved.append((controller, count))
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for controller, count in _saved:
                    if controller.get_num_threads() == 1:
                        controller.set_num_threads(count)
                _saved = []
