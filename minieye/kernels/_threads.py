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

import functools
import os
import threading
from typing import Callable

import numba

from ..options import get as option

_lock = threading.Lock()


class _Worker:
    """A thread that runs one part at a time, handed over through two plain locks: ``go`` released
    starts it, ``done`` released says it finished. A hand-off is one wake each way, without a
    ThreadPoolExecutor's queue and futures, which took longer (docs/kernels.md, "Ninth pass")."""

    def __init__(self) -> None:
        self.go, self.done = threading.Lock(), threading.Lock()
        self.go.acquire()
        self.done.acquire()
        self.part: Callable[[], None] | None = None
        self.error: BaseException | None = None
        threading.Thread(target=self._loop, name="minieye-kernel", daemon=True).start()

    def _loop(self) -> None:
        while True:
            self.go.acquire()
            if self.part is None:  # released without a part: retired (``_settle``)
                return
            try:
                self.part()
            except BaseException as error:  # handed to the caller, which re-raises it
                self.error = error
            finally:
                self.part = None
                self.done.release()

    def start(self, part: Callable[[], None]) -> None:
        self.part = part
        self.go.release()

    def wait(self) -> BaseException | None:
        """Wait for the part to finish; its exception, if it raised one."""
        self.done.acquire()
        error, self.error = self.error, None
        return error


_idle: list[_Worker] = []  # workers not running a part (guarded by _lock)


def _forget_workers_after_fork() -> None:
    """A forked child inherits the worker objects but not their threads: handing a part to one
    would wait forever. Start afresh (the parent's workers are untouched)."""
    global _idle, _lock
    _idle, _lock = [], threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers_after_fork)


def thread_count() -> int:
    """Threads minieye's kernels may use here: the ``threads`` knob, else Numba's count."""
    return option("threads") or max(1, numba.get_num_threads())


def run_parts(part: Callable[[int], None], count: int) -> None:
    """Call ``part(0) ... part(count - 1)`` concurrently and wait for all of them; an exception
    raised by any part reaches the caller after all have finished, and so does a KeyboardInterrupt (no part
    still writes into the caller's arrays once this returns or raises)."""
    if count <= 1:
        part(0)
        return
    workers = _take_workers(count - 1)
    try:
        for i, worker in enumerate(workers, 1):
            worker.start(functools.partial(part, i))
        part(0)
    except BaseException:
        _settle(workers)
        raise
    try:
        errors = [worker.wait() for worker in workers]
    except BaseException:
        _settle(workers)
        raise
    with _lock:
        _idle.extend(workers)
    for error in errors:
        if error is not None:
            raise error


def _take_workers(wanted: int) -> list[_Worker]:
    """``wanted`` workers that no other caller holds: idle ones, then new ones. Where a new one cannot be
    started (the process is out of threads or memory for their stacks), those already taken go back to the
    idle pool, none of them running a part, and the error says how many threads were asked for."""
    with _lock:  # several callers may run parts at once: each takes workers no other caller holds
        workers = [_idle.pop() for _ in range(min(wanted, len(_idle)))]
    try:
        while len(workers) < wanted:
            workers.append(_Worker())
    except BaseException as error:
        with _lock:
            _idle.extend(workers)
        if not isinstance(error, Exception):  # a KeyboardInterrupt stays what it is
            raise
        raise RuntimeError(f"minieye's kernels could not start a worker thread ({len(workers)} of the {wanted} "
                           f"needed for {wanted + 1} threads were ready): {type(error).__name__}: {error}; "
                           "use fewer threads (minieye.options(threads=...) or NUMBA_NUM_THREADS)") from error
    return workers


def _settle(workers: list[_Worker]) -> None:
    """After an exception in the caller (a KeyboardInterrupt while it waits, or its own part raising):
    wait, through further interrupts, until no worker still runs a part (the parts write into the caller's
    arrays and per-thread scratch, which its next call reuses), then retire the workers, whose locks may be
    in any state, instead of handing them out again."""
    for worker in workers:
        while True:
            try:
                while worker.part is not None:  # set just before ``go`` is released, cleared once the part ends
                    worker.done.acquire(timeout=0.01)
                break
            except BaseException:  # noqa: BLE001 -- a second Ctrl-C: the part still runs; keep waiting
                continue
        worker.go.release()  # with no part: the thread ends


def run_blocks(body: Callable[[int, int], None], count: int, threads: int | None = None) -> None:
    """``body(lo, hi)`` over ``[0, count)`` cut into one contiguous block per thread.

    ``threads``: at most this many blocks (None: ``thread_count()``; 1 runs one call on
    the caller's thread). Blocks differ in size by at most one unit.
    """
    parts = max(1, min(thread_count() if threads is None else threads, count))
    edges = [count * p // parts for p in range(parts + 1)]
    run_parts(lambda p: body(edges[p], edges[p + 1]), parts)
