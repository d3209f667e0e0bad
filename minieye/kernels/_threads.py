"""Run a kernel's independent parts on a few Python threads.

The convolution kernels are serial Numba functions compiled with ``nogil=True``, so
plain threads run them truly in parallel. This replaces ``prange`` there for two
measured reasons: Numba's parallel compilation took about 6x longer (the kernel set's
cold compile went from ~30 s to ~120 s), and BLAS called inside ``prange`` under an
OpenMP threading layer printed 'Detect OpenMP Loop' warnings with PyTorch loaded.
The thread count is the ``threads`` knob of ``minieye.options`` where set, else
``numba.get_num_threads()`` (so ``numba.set_num_threads`` and ``NUMBA_NUM_THREADS`` still
control it); the caller's thread runs the first part.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numba

from ..options import get as option

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _forget_pool_after_fork() -> None:
    """A forked child inherits the pool object but not its threads: submitting to it
    would wait forever. Start afresh (the parent's pool is untouched)."""
    global _pool, _pool_size, _lock
    _pool, _pool_size, _lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def thread_count() -> int:
    """Threads minieye's kernels may use here: the ``threads`` knob, else Numba's count."""
    return option("threads") or max(1, numba.get_num_threads())


def run_parts(part: Callable[[int], None], count: int) -> None:
    """Call ``part(0) ... part(count - 1)`` concurrently and wait for all of them."""
    global _pool, _pool_size
    if count <= 1:
        part(0)
        return
    with _lock:
        if _pool is None or _pool_size < count - 1:
            # the old pool is not shut down: another thread may have fetched it and be about
            # to submit; its idle threads exit once it is garbage-collected
            _pool = ThreadPoolExecutor(count - 1, thread_name_prefix="minieye-kernel")
            _pool_size = count - 1
        pool = _pool
    futures = [pool.submit(part, i) for i in range(1, count)]
    try:
        part(0)
    finally:
        for future in futures:
            future.result()


def run_blocks(body: Callable[[int, int], None], count: int, threads: int | None = None) -> None:
    """``body(lo, hi)`` over ``[0, count)`` cut into one contiguous block per thread.

    ``threads``: at most this many blocks (None: ``thread_count()``; 1 runs one call on
    the caller's thread). Blocks differ in size by at most one unit.
    """
    parts = max(1, min(thread_count() if threads is None else threads, count))
    edges = [count * p // parts for p in range(parts + 1)]
    run_parts(lambda p: body(edges[p], edges[p + 1]), parts)
