"""conv_small under thread stress: many repetitions on 1 to 3 threads and several Python threads calling at
once give bitwise the one-thread result (the chunks, their sums and their order do not depend on who runs
them; each caller has its own scratch and counter)."""
from __future__ import annotations

import threading

import numpy as np

import minieye as me
from minieye.kernels import conv as kconv, conv_nd as knd
from minieye.kernels.conv_geometry import Geometry
from minieye.kernels.conv_plan import Algorithm

GEOMETRY = Geometry((1, 1), (1, 1), (1, 1), 1)


def _passes(x, w, dy, threads):
    with me.options(threads=threads, conv_gemm_parallel_min_work=0, conv_algorithm="small"):
        plan = kconv.make_plan(x.shape, w.shape, GEOMETRY)
        assert plan.algorithm is Algorithm.SMALL and plan.threads == threads
        return (kconv.conv2d_forward(x, w, GEOMETRY, plan), *knd.backward(x, dy, w, GEOMETRY, plan, need_db=True))


def _problems():
    rng = np.random.default_rng(5)
    shapes = [((40, 2, 9, 7), 5), ((1, 1, 23, 11), 4), ((3, 3, 6, 6), 10)]  # samples, one image's rows, few samples
    return [(rng.standard_normal(xs).astype(np.float32), rng.standard_normal((c_out, xs[1], 3, 3)).astype(np.float32),
             rng.standard_normal((xs[0], c_out, *xs[2:])).astype(np.float32)) for xs, c_out in shapes]


def _assert_same(results, reference):
    for a, b in zip(results, reference):
        np.testing.assert_array_equal(a, b)


def test_repeated_calls_on_one_to_three_threads_are_bitwise_the_same():
    for x, w, dy in _problems():
        reference = _passes(x, w, dy, 1)
        for repeat in range(40):
            _assert_same(_passes(x, w, dy, 1 + repeat % 3), reference)


def test_callers_on_several_python_threads_get_their_own_results():
    """Three Python threads each run the problems 60 times in all on 2 threads (the kernels' workers shared
    among them): every result is bitwise its one-thread reference."""
    problems = _problems()
    references = [_passes(*p, 1) for p in problems]
    failures = []

    def caller(c):
        try:
            for repeat in range(60):
                k = (c + repeat) % len(problems)
                _assert_same(_passes(*problems[k], 2), references[k])
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    callers = [threading.Thread(target=caller, args=(c,)) for c in range(3)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(60)
    assert not any(t.is_alive() for t in callers)
    assert not failures, failures[0]
