"""Where a Winograd F(4x4, 3x3) layer's training step goes: each kernel of its passes timed alone, one thread.

    PYTHONPATH=$PWD python benchmarks/bench_winograd_phases.py                      # bench_kernels' 32x16x32x32 -> 32
    PYTHONPATH=$PWD python benchmarks/bench_winograd_phases.py --shape 8x64x64x64 --c-out 64 --repeat 10

For a "same" 3x3 layer (padding 1) on float32 data: the forward (``conv2d_forward``, with the bias) and the
backward as a layer runs it (``conv2d_backward`` with the bias gradient), then, over all chunks of images of
the plan (``conv_winograd_run.parts``) on one thread's scratch, each kernel those passes run: the input split
and transform, the three kinds of products, the output transform and its adjoint, the adjoint input transform
and the split's adjoint; and the serial pieces around them (the weight transform, kept or not, ``parts``, the
separate bias-gradient sum over dy). Each figure: the best and the median of ``--repeat`` timings of the whole
pass (``--clock``: CPU time by default, so that other processes' load counts less), after one untimed call.
The kernels' sum is not the pass's time: inside a pass each kernel's input comes from the one before, with
other cache contents.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def timings(clock, repeat: int, call) -> tuple[float, float]:
    """(best, median) ms of ``repeat`` calls after one untimed call."""
    call()
    times = []
    for _ in range(repeat):
        start = clock()
        call()
        times.append(clock() - start)
    return min(times) * 1e3, float(np.median(times)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="32x16x32x32", help="the input, NxCxHxW")
    parser.add_argument("--c-out", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--clock", default="cpu", choices=["cpu", "wall"], help="cpu: this process's CPU time")
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    import numba
    numba.set_num_threads(1)
    from minieye.kernels import conv as kconv, conv_winograd as cw, conv_winograd4 as c4, conv_winograd4_grad as g4
    from minieye.kernels import conv_winograd_run as run
    from minieye.kernels.conv_geometry import Geometry
    from minieye.kernels.conv_plan import Algorithm

    n, c_in, h, w = map(int, args.shape.split("x"))
    c_out = args.c_out
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c_in, h, w)).astype(np.float32)
    weight = rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(c_out).astype(np.float32)
    dy = rng.standard_normal((n, c_out, h, w)).astype(np.float32)
    geometry = Geometry((1, 1), (1, 1), (1, 1), 1)
    plan = kconv.make_plan(x.shape, weight.shape, geometry)
    if plan.algorithm is not Algorithm.WINOGRAD4:
        parser.error(f"the plan of this shape is {plan.algorithm.name}, not WINOGRAD4")
    chunk, _, buffers = run.parts(n, c_in, c_out, (h, w), plan, np.float32)
    xs, v_buf, m_buf, t_buf, ints, scalars = buffers[0]
    tw = xs.shape[5]
    plane = (xs.shape[4] - 1) * tw
    starts = range(0, n, chunk)
    views = {n0: cw.chunk_views(v_buf, m_buf, 36, c_in, c_out, min(chunk, n - n0) * plane) for n0 in starts}
    u = cw.transform_weight(weight, c4.G)
    y, dx = np.empty((n, c_out, h, w), np.float32), np.empty_like(x)
    du = np.zeros((36, c_out, c_in), np.float32)

    def over_chunks(body):
        return lambda: [body(n0, min(chunk, n - n0), *views[n0]) for n0 in starts]

    def fresh_transform():
        cw._transforms.clear()
        cw.transform_weight(weight, c4.G)

    rows = [
        ("forward (conv2d_forward, with the bias)", lambda: kconv.conv2d_forward(x, weight, geometry, plan, bias)),
        ("backward (conv2d_backward, dx dw db)",
         lambda: kconv.conv2d_backward(x, dy, weight, geometry, plan, need_db=True)),
        ("backward without db", lambda: kconv.conv2d_backward(x, dy, weight, geometry, plan, need_db=False)),
        ("  split x", over_chunks(lambda n0, k, v, m: cw.split_samples(x, xs, 1, 1, n0, n0 + k))),
        ("  input transform", over_chunks(lambda n0, k, v, m: c4.input_transform(xs, v, 0, k, t_buf))),
        ("  products U V", over_chunks(lambda n0, k, v, m: cw.element_products(u, v, m, ints, scalars))),
        ("  output transform (+ bias, into y)",
         over_chunks(lambda n0, k, v, m: c4._output_transform(m, y, n0, k, tw, bias, t_buf))),
        ("  A dY A^T (output_grad_transform)",
         over_chunks(lambda n0, k, v, m: c4.output_grad_transform(dy, m, n0, k, tw, t_buf))),
        ("  products dM V^T", over_chunks(lambda n0, k, v, m: cw.element_grad_products(m, v, du, ints, scalars))),
        ("  products U^T dM", over_chunks(lambda n0, k, v, m: g4.element_transposed_products(u, m, v, ints, scalars))),
        ("  adjoint input transform", over_chunks(lambda n0, k, v, m: g4._input_adjoint(v, xs, k, t_buf))),
        ("  adjoint split", over_chunks(lambda n0, k, v, m: g4.unsplit_samples(xs, dx, 1, 1, n0, n0 + k))),
        ("  weight transform, computed", fresh_transform),
        ("  weight transform, kept", lambda: cw.transform_weight(weight, c4.G)),
        ("  parts() (scratch look-ups)", lambda: run.parts(n, c_in, c_out, (h, w), plan, np.float32)),
        ("  bias gradient apart (grad_bias)", lambda: kconv.grad_bias(dy)),
    ]
    print(f"{args.shape} -> {c_out} k3: WINOGRAD4, {chunk} images per chunk, one thread, {args.clock} clock, "
          f"best / median of {args.repeat} (ms)")
    for name, call in rows:
        best, median = timings(clock, args.repeat, call)
        print(f"{name:40s} {best:8.3f} {median:8.3f}")
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
