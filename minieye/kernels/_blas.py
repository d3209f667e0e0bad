"""Hold BLAS to one thread while a Numba kernel calls it from its own threads.

Numba's ``np.dot`` calls SciPy's BLAS; inside ``prange`` each Numba thread must get a
single-threaded BLAS, or the two thread pools oversubscribe the cores (and OpenBLAS
prints 'Detect OpenMP Loop' warnings under an OpenMP threading layer). Switching
the thread count through a cached threadpoolctl controller costs a few microseconds
per call, unlike ``threadpool_limits`` (about a millisecond: it rescans the libraries).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

_controllers: list | None = None


def _blas_controllers() -> list:
    global _controllers
    if _controllers is None:
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS Numba will call)
            from threadpoolctl import ThreadpoolController
            _controllers = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _controllers = []
    return _controllers


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Every loaded BLAS at one thread inside the block, restored afterwards."""
    saved = []
    for controller in _blas_controllers():
        count = controller.get_num_threads()
        if count != 1:
            controller.set_num_threads(1)
            saved.append((controller, count))
    try:
        yield
    finally:
        for controller, count in saved:
            controller.set_num_threads(count)
