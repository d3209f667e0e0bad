"""kernels._threads.run_blocks: contiguous blocks that cover the range once, one per thread."""
import threading
import time

import pytest

from minieye.kernels import _threads


@pytest.mark.parametrize("count, threads", [(0, None), (1, None), (7, 3), (10, 4), (3, 8), (5, 1)])
def test_blocks_cover_the_range_once(count, threads):
    seen, lock = [], threading.Lock()

    def body(lo, hi):
        with lock:
            seen.append((lo, hi))

    _threads.run_blocks(body, count, threads)
    blocks = sorted(seen)
    wanted = max(1, min(_threads.thread_count() if threads is None else threads, count))
    assert len(blocks) == wanted
    assert blocks[0][0] == 0 and blocks[-1][1] == count
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))  # contiguous, no overlap
    sizes = [hi - lo for lo, hi in blocks]
    assert max(sizes) - min(sizes) <= 1


def test_an_error_in_a_block_reaches_the_caller():
    def body(lo, hi):
        if lo > 0:
            raise RuntimeError("block failed")

    with pytest.raises(RuntimeError, match="block failed"):
        _threads.run_blocks(body, 10, 2)


def test_the_threads_knob_caps_the_blocks():
    import minieye as me
    seen = []
    with me.options(threads=1):
        assert _threads.thread_count() == 1
        _threads.run_blocks(lambda lo, hi: seen.append((lo, hi)), 10)
    assert seen == [(0, 10)]  # one block on the caller's thread
    with me.options(threads=3):
        seen.clear()
        _threads.run_blocks(lambda lo, hi: seen.append((lo, hi)), 9)
    assert sorted(seen) == [(0, 3), (3, 6), (6, 9)]


def test_callers_on_several_threads_get_workers_of_their_own():
    """Four Python threads run parts at once, each part waiting for all eight to have started: it finishes
    only if every caller's parts run concurrently on workers that no other caller holds."""
    started = threading.Barrier(8, timeout=10)
    seen, lock = [], threading.Lock()

    def caller(c):
        def part(i):
            started.wait()
            with lock:
                seen.append((c, i))
        _threads.run_parts(part, 2)

    callers = [threading.Thread(target=caller, args=(c,)) for c in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(20)
    assert sorted(seen) == [(c, i) for c in range(4) for i in range(2)]


def _kernel_threads() -> int:
    return sum(t.name == "minieye-kernel" and t.is_alive() for t in threading.enumerate())


def test_a_part_that_raises_leaves_the_workers_usable():
    """Parts raising on the workers and on the caller's thread, over and over: each error reaches the caller
    after every part has finished, and the next calls run every part once."""
    for round_ in range(60):
        ran, lock = [], threading.Lock()
        failing = round_ % 3  # 0: the caller's part raises, 1 or 2: a worker's

        def part(i):
            with lock:
                ran.append(i)
            if i == failing:
                raise ValueError(f"part {i}")

        with pytest.raises(ValueError, match=f"part {failing}"):
            _threads.run_parts(part, 3)
        assert sorted(ran) == [0, 1, 2]
        ran.clear()
        _threads.run_parts(lambda i: ran.append(i), 3)
        assert sorted(ran) == [0, 1, 2]


def test_an_interrupt_while_waiting_lets_the_parts_finish_first(monkeypatch):
    """A KeyboardInterrupt reaching the caller while it waits for a worker: run_parts raises it only once
    the worker's part has ended (the parts write into arrays and scratch that the caller's next call
    reuses), and the workers of that call are retired, not handed out again."""
    finished = []

    def part(i):
        if i:
            time.sleep(0.05)
            finished.append(i)

    def interrupted(self):
        raise KeyboardInterrupt

    before = _kernel_threads()
    for _ in range(5):
        finished.clear()
        with monkeypatch.context() as patch:
            patch.setattr(_threads._Worker, "wait", interrupted)
            with pytest.raises(KeyboardInterrupt):
                _threads.run_parts(part, 3)
        assert sorted(finished) == [1, 2]
    for _ in range(100):  # the retired workers' threads end
        if _kernel_threads() <= before:
            break
        time.sleep(0.01)
    assert _kernel_threads() <= before
    finished.clear()
    _threads.run_parts(part, 3)
    assert sorted(finished) == [1, 2]


def test_many_hand_offs_in_a_row_each_run_every_part_once():
    counts = [0] * 3
    for k in range(300):  # workers just back from the last call, and (after a pause) ones long idle
        if k % 50 == 0:
            time.sleep(0.002)
        _threads.run_parts(lambda i: counts.__setitem__(i, counts[i] + 1), 3)
    assert counts == [300, 300, 300]


def test_a_worker_that_cannot_start_leaves_the_pool_usable(monkeypatch):
    """Starting a worker's thread fails (the process is out of threads): run_parts raises a clear error
    before any part runs, the idle workers it had taken go back to the pool, and later calls use them."""
    _threads.run_parts(lambda i: None, 3)  # at least two idle workers
    idle_before = len(_threads._idle)
    start = threading.Thread.start

    def refuse_kernel_threads(thread):
        if thread.name == "minieye-kernel":
            raise RuntimeError("can't start new thread")
        start(thread)

    ran = []
    with monkeypatch.context() as patch:
        patch.setattr(threading.Thread, "start", refuse_kernel_threads)
        with pytest.raises(RuntimeError, match=rf"could not start a worker thread \({idle_before} of the "
                                               rf"{idle_before + 1} needed for {idle_before + 2} threads.*"
                                               r"can't start new thread.*options\(threads="):
            _threads.run_parts(ran.append, idle_before + 2)
        assert ran == [] and len(_threads._idle) == idle_before
        _threads.run_parts(ran.append, idle_before + 1)  # the idle workers suffice: no new thread needed
    assert sorted(ran) == list(range(idle_before + 1)) and len(_threads._idle) == idle_before


def test_first_calls_of_a_kernel_on_several_threads_compile_it_once():
    """run_parts' parts may all make a kernel's first, compiling call at once (a fresh process, or a kernel
    whose cache was stamped stale): Numba compiles under its global lock and looks for the overload again
    inside it, so every part gets the same, correct code (docs/kernels.md, "Reliability")."""
    import numba
    import numpy as np

    @numba.njit(nogil=True)
    def total(values):
        s = 0.0
        for v in values:
            s += v
        return s

    started = threading.Barrier(4, timeout=10)
    sums = [None] * 4

    def part(i):
        started.wait()  # all four make the first call together
        sums[i] = total(np.arange(10.0) * (i + 1))

    _threads.run_parts(part, 4)
    assert sums == [45.0 * (i + 1) for i in range(4)] and len(total.signatures) == 1
