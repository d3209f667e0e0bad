"""The one place where Numba's compilation flags are set.

Every kernel is decorated with ``kernel``: serial, with ``nogil`` so that
``_threads.run_parts`` runs blocks of independent work on plain threads. No kernel uses
``prange`` (``parallel=True``): it compiled about 6x slower, and the kernel set's cold
compile must stay under a minute (CI starts cold). Flags, and why:

- cached on disk (``_cache.KernelCache``, Numba's ``cache=True`` with a wider stamp): a fresh
  process loads compiled code from ``__pycache__`` in under a second instead of recompiling (1-8 s
  per signature), and recompiles a kernel when any module it may call into has changed.
- ``fastmath={'reassoc', 'contract'}``: lets LLVM vectorise reductions and fuse
  multiply-adds, but keeps NaN/Inf semantics (full fastmath makes ``np.isnan`` false).
- ``error_model='numpy'``: division by zero gives inf/nan like NumPy, no exception
  checks in inner loops.
- ``nogil=True``: kernels can run beside other Python threads.

Nothing is compiled at import: Numba compiles a kernel on its first call, per dtype
signature. Set NUMBA_DISABLE_JIT=1 to run the kernels as plain Python (debugging,
coverage; slow): what only runs compiled (the BLAS calls of ``conv_blas``, the intrinsics of
``_atomic`` and ``activation``) has a plain-Python twin there (tests/test_kernels_nojit.py).
"""
from __future__ import annotations

from typing import Callable, TypeVar

import numba
from numba.core.dispatcher import Dispatcher

from ._cache import KernelCache

F = TypeVar("F", bound=Callable)

FASTMATH = frozenset({"reassoc", "contract"})

_OPTIONS = dict(fastmath=set(FASTMATH), error_model="numpy", nogil=True)


def kernel(fn: F) -> F:
    """A serial Numba kernel, cached on disk."""
    dispatcher = numba.njit(**_OPTIONS)(fn)
    if isinstance(dispatcher, Dispatcher):  # not under NUMBA_DISABLE_JIT=1, where njit returns fn itself
        dispatcher._cache = KernelCache(fn)  # what njit(cache=True) sets up, with the wider stamp
    return dispatcher
