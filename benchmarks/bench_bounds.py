"""What bounds the rows of bench_kernels.py that minieye runs slower than PyTorch: their rates against SGEMM's.

    PYTHONPATH=$PWD python benchmarks/bench_bounds.py --threads 1 --clock cpu
    PYTHONPATH=$PWD python benchmarks/bench_bounds.py --threads 2
    PYTHONPATH=$PWD python benchmarks/bench_bounds.py convT --repeat 30

For each row (by default the three that were above 1.0: 32x16x32x32 -> 32, digits, convT) it prints:

- the layer's multiply-adds per training step (forward, input and weight gradient: 3x the forward's
  direct count) and the plan "auto" chooses for it;
- minieye's and PyTorch's step times, alternated in one process (``bench_kernels.run_case``: blocks of
  each side after a 50 ms pause, ``bench_clock.settle``; the minimum of ``--repeat``), their ratio and
  the rate each achieves (GFLOP/s of the direct convolution's multiply-adds, 2 flops each, whatever
  algorithm runs them);
- the BLAS products that plan runs in one step, shape by shape (Winograd F(4x4, 3x3): 36 per chunk of
  images and pass; TAPS per shift: one per shift, sample and pass; SMALL runs none), each shape's
  sequence timed alone through the kernels' own ``conv_blas.gemm`` (NumPy's OpenBLAS, contiguous
  operands, one BLAS thread per thread of ours, the plan's threads taking equal shares at once), its
  rate, and the time the step's products alone need at those rates;
- one square SGEMM (2048^3, ``np.matmul`` with BLAS at ``--threads`` threads) for reference, and the
  products' time at that rate.

``--clock cpu`` (one thread only) times everything in this process's CPU time, robust to other load;
at two threads the times are wall clock, so state the load average (printed).
"""
from __future__ import annotations

import argparse
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from threadpoolctl import threadpool_limits

import minieye as me
from minieye import layers
from minieye.kernels import conv as kconv, conv_blas, conv_winograd4, conv_winograd_run
from minieye.kernels.conv_plan import Algorithm

import bench_kernels
from bench_clock import add_clock_option, chosen_clock

ROWS = {"32x16": bench_kernels.CASES[1], "digits": bench_kernels.CASES[3], "convT": bench_kernels.CASES[4],
        "8x64": bench_kernels.CASES[2], "deblur": bench_kernels.CASES[0]}


def layer_and_plan(case, dtype):
    """The row's layer and the convolution it runs: (layer, input shape, weight shape, geometry, plan, how).
    A transposed layer runs its phase convolution (x into a channel per output phase, 3x3) where "auto"
    takes it, else the convolution it is the adjoint of."""
    _, shape, c_out, k, stride, padding, transposed = case
    layer = (layers.ConvTranspose2D if transposed else layers.Conv2D)(shape[1], c_out, k, stride=stride,
                                                                     padding=padding, dtype=dtype, seed=0)
    y = layer(np.zeros(shape, dtype=dtype))
    w_shape = layer.weight.shape
    phases = (me.functional.conv.transpose_phases(shape, w_shape, layer.geometry, y.shape[2:], "bench_bounds")
              if transposed else None)
    if phases is not None:
        phase_weight = (phases.phase_count * c_out, shape[1], 3, 3)
        return layer, shape, phase_weight, phases.geometry, phases.plan, "phases by "
    conv_input = (shape[0], c_out) + y.shape[2:] if transposed else shape
    plan = me.functional.conv.conv_plan(conv_input, w_shape, layer.geometry)
    return layer, conv_input, w_shape, layer.geometry, plan, ""


def products(conv_input, w_shape, geometry, plan, dtype) -> list[tuple[str, list[list[tuple]]]]:
    """The step's BLAS products as (pass, per-thread lists of (trans_a, trans_b, m, n, k, beta)), read off the
    plan the way ``kernels.conv`` runs it."""
    n, c_in, h, w = conv_input
    c_out, _, kh, kw = w_shape
    if plan.algorithm is Algorithm.SMALL or plan.algorithm is Algorithm.DIRECT:
        return []
    if plan.algorithm is Algorithm.WINOGRAD4 and plan.winograd_grad_weight:
        out_hw = (h + 2 * geometry.pad_h - 2, w + 2 * geometry.pad_w - 2)
        chunk, edges, _ = conv_winograd_run.parts(n, c_in, c_out, out_hw, plan, dtype)
        positions = conv_winograd4.positions(out_hw)

        def per_chunk(m_rows, k_terms, grad, trans_a=False):
            threads = []
            for first, last in zip(edges[:-1], edges[1:]):
                calls = []
                for n0 in range(first, last, chunk):
                    cols = min(chunk, last - n0) * positions
                    shape = (False, True, m_rows, k_terms, cols, 1.0) if grad else (trans_a, False, m_rows, cols,
                                                                                      k_terms, 0.0)
                    calls += [shape] * 36
                threads.append(calls)
            return threads
        # the layer's backward runs both gradients in one pass (kernels.conv.conv2d_backward): dV = U^T dM
        return [("forward", per_chunk(c_out, c_in, False)), ("input gradient", per_chunk(c_in, c_out, False, True)),
                ("weight gradient", per_chunk(c_out, c_in, True))]
    if plan.algorithm is Algorithm.TAPS and plan.shifts:
        sh, sw = geometry.stride_h, geometry.stride_w
        row = -(-(w + 2 * geometry.pad_w) // sw)
        h_out = (h + 2 * geometry.pad_h - kh) // sh + 1
        itemsize = np.dtype(dtype).itemsize
        tile_rows = int(max(1, min(h_out, plan.tile_bytes // ((c_in + c_out) * row * itemsize))))
        shifts, k = (kh // sh) * (kw // sw), c_in * sh * sw
        threads = max(1, min(plan.threads, n))
        spans = [(min(h_out, a0 + tile_rows) - a0) * row for a0 in range(0, h_out, tile_rows)]

        def per_sample(shape_of):
            return [[shape_of(span) for s in range(i, n, threads) for span in spans for _ in range(shifts)]
                    for i in range(threads)]
        return [("forward", per_sample(lambda span: (False, False, c_out, span, k, 1.0))),
                ("input gradient", per_sample(lambda span: (True, False, k, span, c_out, 1.0))),
                ("weight gradient", per_sample(lambda span: (False, True, c_out, k, span, 1.0)))]
    raise SystemExit(f"products of a {plan.algorithm.name} plan are not modelled here")


@numba.njit(nogil=True)
def _run(spec, a, b, c, ints, scalars, reps):
    """Each row (trans_a, trans_b, m, n, k, beta*1000) of spec as one conv_blas.gemm on contiguous operands, reps times."""
    for _ in range(reps):
        for p in range(spec.shape[0]):
            ta, tb, m, n, k, beta = spec[p, 0] != 0, spec[p, 1] != 0, spec[p, 2], spec[p, 3], spec[p, 4], spec[p, 5]
            conv_blas.gemm(ta, tb, a, m if ta else k, b, k if tb else n, c, n, m, n, k, beta / 1000.0, ints, scalars)


def time_products(per_thread: list[list[tuple]], dtype, clock, repeat: int) -> float:
    """Seconds one pass of these products takes, each thread's list on its own thread at once (best of repeat)."""
    specs = [np.array([(ta, tb, m, n, k, int(beta * 1000)) for ta, tb, m, n, k, beta in calls], dtype=np.int64)
             for calls in per_thread]
    largest = max(int(max(r[2] * r[4], r[4] * r[3], r[2] * r[3])) for s in specs for r in s)
    buffers = [(np.ones(largest, dtype), np.ones(largest, dtype), np.zeros(largest, dtype),
                np.zeros(8, conv_blas.int_dtype()), np.zeros(2, dtype)) for _ in specs]
    # BLAS held to one thread, as minieye's kernels hold it while they run (kernels._blas)
    with ThreadPoolExecutor(len(specs)) as pool, threadpool_limits(1, user_api="blas"):
        def once():
            list(pool.map(lambda i: _run(specs[i], *buffers[i], 1), range(len(specs))))
        once()
        best = math.inf
        for _ in range(repeat):
            start = clock()
            once()
            best = min(best, clock() - start)
    return best


def square_sgemm(threads: int, clock, size: int = 2048) -> float:
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    with threadpool_limits(threads, user_api="blas"):
        a @ a
        best = min(_timed(lambda: a @ a, clock) for _ in range(3))
    return 2 * size ** 3 / best / 1e9


def _timed(fn, clock) -> float:
    start = clock()
    fn()
    return clock() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="*", default=["32x16", "digits", "convT"], help=f"of {sorted(ROWS)}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=21, help="steps per side (min taken), product passes")
    add_clock_option(parser)
    args = parser.parse_args()
    clock = chosen_clock(parser, args)
    bench_kernels.CLOCK = clock
    numba.set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        raise SystemExit("bench_bounds compares against PyTorch: install torch")
    dtype = np.dtype(np.float32)
    print(f"threads={args.threads} clock={args.clock} repeat={args.repeat} load={os.getloadavg()[0]:.1f} "
          f"blas={bench_kernels.blas_kernels()} products through {conv_blas.library()}")
    with threadpool_limits(args.threads):
        square = square_sgemm(args.threads, clock)
    print(f"square SGEMM 2048^3, {args.threads} BLAS thread(s): {square:.0f} GFLOP/s")
    for name in args.rows:
        case = ROWS[name]
        layer, conv_input, w_shape, geometry, plan, how = layer_and_plan(case, dtype)
        with threadpool_limits(args.threads):
            ours, theirs, _ = bench_kernels.run_case(case, args.repeat, dtype)
        shape, c_out, k = case[1], case[2], case[3]
        y_shape = layer(np.zeros(shape, dtype=dtype)).shape
        macs = 3 * bench_kernels.multiply_adds(shape, c_out, k, y_shape, case[6])
        print(f"\n{case[0]}: plan {how}{plan.algorithm.name}{' per shift' if plan.shifts else ''}, {plan.threads} "
              f"thread(s); {macs / 1e6:.1f} M multiply-adds per step")
        print(f"  minieye {ours * 1e3:.3f} ms ({2 * macs / ours / 1e9:.0f} GFLOP/s)   PyTorch {theirs * 1e3:.3f} ms "
              f"({2 * macs / theirs / 1e9:.0f} GFLOP/s)   ratio {ours / theirs:.2f}")
        passes = products(conv_input, w_shape, geometry, plan, dtype)
        if not passes:
            print("  products: none (no BLAS in this plan); the step is its own bound")
            continue
        total_time, total_macs = 0.0, 0
        for label, per_thread in passes:
            shapes = sorted({c[:5] for calls in per_thread for c in calls})
            for shape_key in shapes:  # each shape's calls alone
                subset = [[c for c in calls if c[:5] == shape_key] for calls in per_thread]
                count = sum(len(s) for s in subset)
                m_, n_, k_ = shape_key[2:5]
                seconds = time_products([s for s in subset if s], dtype, clock, args.repeat)
                shape_macs = count * m_ * n_ * k_
                total_time += seconds
                total_macs += shape_macs
                op_a = f"{m_}x{k_}" + ("^T" if shape_key[0] else "")
                print(f"  {label:<16} {count:5d} x ({op_a} @ {k_}x{n_}{'^T' if shape_key[1] else ''}): "
                      f"{shape_macs / 1e6:6.1f} M multiply-adds, {2 * shape_macs / seconds / 1e9:5.0f} GFLOP/s, "
                      f"{seconds * 1e3:.3f} ms")
        print(f"  products alone: {total_macs / 1e6:.1f} M multiply-adds in {total_time * 1e3:.3f} ms "
              f"({2 * total_macs / total_time / 1e9:.0f} GFLOP/s) = {total_time / ours:.0%} of minieye's step, "
              f"{total_time / theirs:.0%} of PyTorch's; at the square SGEMM's rate {2 * total_macs / square / 1e6:.3f} ms")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
