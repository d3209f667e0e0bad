"""Convolution benchmark: minieye vs PyTorch CPU, forward + backward, same thread count.

    .venv/bin/python benchmarks/bench_kernels.py                  # 2 threads, float32
    .venv/bin/python benchmarks/bench_kernels.py --threads 1 --repeat 30
    .venv/bin/python benchmarks/bench_kernels.py --pool           # then the pooling table
    .venv/bin/python benchmarks/bench_kernels.py --no-compile     # skip the compile-time rows
    .venv/bin/python benchmarks/bench_kernels.py --threads 1 --clock cpu   # CPU time: robust to other load
    .venv/bin/python benchmarks/bench_kernels.py --nd --no-compile   # the 1-D / 3-D table instead

Each row times one training step through the layer (Conv2D / ConvTranspose2D forward,
or Conv1D / Conv3D / ConvTranspose3D with ``--nd``,
then backward with a fixed dy: input, weight and bias gradients), validation and
allocation included. PyTorch runs the same step with autograd. The two are timed
alternately in one process, so machine noise hits both alike; the figure is the
minimum of ``--repeat`` runs after a warm-up (the least disturbed run), taken in three
alternating blocks per side, each after a 50 ms pause (``bench_clock.settle``: PyTorch's
OpenMP threads spin for milliseconds after an op, on the cores the other side's block needs). GFLOP/s
counts ``6 * multiply-adds of the forward`` (forward, input and weight gradients).

Compile rows: ``kernels.warm.warm_up()`` (every convolution, pooling, upsampling and regularizer kernel, both dtypes)
in a fresh subprocess with NUMBA_CACHE_DIR pointing to an empty temporary directory
(cold: compile everything) and then again with the same directory (warm: load).
"""
from __future__ import annotations

import argparse
import os
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
from threadpoolctl import threadpool_limits

import minieye as me
from minieye import layers

from bench_clock import add_clock_option, chosen_clock, settle

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # the table still prints minieye's times
    torch = None

# (label, input shape (N, C, H, W), out channels, kernel, stride, padding, transposed)
CASES = [
    ("deblur 1x1x512x512 k5", (1, 1, 512, 512), 1, 5, 1, 2, False),
    ("32x16x32x32 ->32 k3", (32, 16, 32, 32), 32, 3, 1, 1, False),
    ("8x64x64x64 ->64 k3", (8, 64, 64, 64), 64, 3, 1, 1, False),
    ("digits 256x1x8x8 ->16 k3", (256, 1, 8, 8), 16, 3, 1, 1, False),
    ("convT 32x32x16x16 ->16 k4 s2", (32, 32, 16, 16), 16, 4, 2, 1, True),
]

# --nd: the same rows for signals (N, C, L) and volumes (N, C, D, H, W)
CASES_ND = [
    ("1D audio 4x1x16384 k9", (4, 1, 16384), 1, 9, 1, 4, False),
    ("1D 32x32x256 ->32 k5", (32, 32, 256), 32, 5, 1, 2, False),
    ("3D deblur 1x1x32x64x64 k5", (1, 1, 32, 64, 64), 1, 5, 1, 2, False),
    ("3D 4x16x16x32x32 ->16 k3", (4, 16, 16, 32, 32), 16, 3, 1, 1, False),
    ("3D convT 4x16x8x16x16 ->8 k4 s2", (4, 16, 8, 16, 16), 8, 4, 2, 1, True),
]


def multiply_adds(shape, c_out, k, y_shape, transposed) -> int:
    n, c_in = shape[:2]
    taps = k ** (len(shape) - 2)
    if transposed:  # the convolution it is the adjoint of maps y (c_out) to x (c_in)
        return n * c_in * c_out * taps * int(np.prod(shape[2:]))
    return n * c_out * c_in * taps * int(np.prod(y_shape[2:]))


CLOCK = time.perf_counter


def best_time(step, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = CLOCK()
        step()
        times.append(CLOCK() - start)
    return min(times)


def run_case(case, repeat: int, dtype) -> tuple[float, float | None, float]:
    label, shape, c_out, k, stride, padding, transposed = case
    rng = np.random.default_rng(0)
    nd = len(shape) - 2
    cls = getattr(layers, f"ConvTranspose{nd}D" if transposed else f"Conv{nd}D")
    layer = cls(shape[1], c_out, k, stride=stride, padding=padding, dtype=dtype, rng=rng)
    x = rng.standard_normal(shape).astype(dtype)
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(dtype)

    def ours():
        _, backward = layer.forward(x)
        return backward(dy, me.DeltaSet())

    theirs = None
    if torch is not None:
        xt = torch.tensor(x, requires_grad=True)
        wt = torch.tensor(layer.weight.value, requires_grad=True)
        bt = torch.tensor(layer.bias.value, requires_grad=True)
        dyt = torch.tensor(dy)
        fn = getattr(TF, f"conv_transpose{nd}d" if transposed else f"conv{nd}d")

        def theirs():
            xt.grad = wt.grad = bt.grad = None
            fn(xt, wt, bt, stride=stride, padding=padding).backward(dyt)

    for _ in range(2):  # warm-up: compile / load kernels, fill caches and pools
        ours()
        if theirs:
            theirs()
    t_ours, t_theirs = float("inf"), float("inf")
    # Alternate blocks (not single runs): both see the same machine load; each block starts after a
    # pause, so that neither pays for the other's threads still spinning (PyTorch's OpenMP threads
    # spin for milliseconds after an op: longer than a whole block of the small rows)
    rounds = 3
    for _ in range(rounds):
        settle()
        t_ours = min(t_ours, best_time(ours, -(-repeat // rounds)))
        if theirs:
            settle()
            t_theirs = min(t_theirs, best_time(theirs, -(-repeat // rounds)))
    flops = 6 * multiply_adds(shape, c_out, k, y.shape, transposed)
    return t_ours, (t_theirs if theirs else None), flops / t_ours / 1e9


_COMPILE_SNIPPET = (
    "import time; t = time.perf_counter(); c = time.process_time()\n"
    "from minieye.kernels.warm import warm_up; warm_up()\n"
    "print(time.perf_counter() - t, time.process_time() - c)\n"
)


def compile_times() -> tuple[tuple[float, float], tuple[float, float]]:
    """((wall, cpu) on a cold cache, (wall, cpu) on a warm one), in seconds."""
    results = []
    with tempfile.TemporaryDirectory(prefix="minieye-numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env, check=True,
                                 capture_output=True, text=True).stdout.split()
            results.append((float(out[-2]), float(out[-1])))
    return results[0], results[1]


def blas_kernels() -> str:
    """The BLAS libraries the GEMM path can call and the CPU kernels they run (OpenBLAS picks
    them at load time; ``OPENBLAS_CORETYPE`` overrides it, e.g. Haswell = AVX2 only)."""
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot calls)
    from threadpoolctl import threadpool_info
    return ",".join(sorted({f"{i['internal_api']}:{i.get('architecture')}" for i in threadpool_info()
                            if i["user_api"] == "blas"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--no-compile", action="store_true", help="skip the cold/warm compile rows")
    parser.add_argument("--nd", action="store_true", help="the 1-D / 3-D table instead of the 2-D one")
    parser.add_argument("--pool", action="store_true", help="run benchmarks/bench_pool.py afterwards")
    add_clock_option(parser)
    args = parser.parse_args()
    global CLOCK
    CLOCK = chosen_clock(parser, args)
    numba.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    dtype = np.dtype(args.dtype)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"threads={args.threads} dtype={dtype} repeat={args.repeat} (min) clock={args.clock} "
          f"torch={torch.__version__ if torch else 'not installed'} cores={os.cpu_count()} load={load:.1f} "
          f"blas={blas_kernels()}")
    header = f"{'case':<33} {'minieye':>10} {'PyTorch':>10} {'ratio':>7} {'GFLOP/s':>8}"
    print(header)
    print("-" * len(header))
    ratios = []
    with threadpool_limits(args.threads):
        for case in (CASES_ND if args.nd else CASES):
            ours, theirs, gflops = run_case(case, args.repeat, dtype)
            ratio = ours / theirs if theirs else float("nan")
            if theirs:
                ratios.append(ratio)
            theirs_text = f"{theirs * 1e3:8.2f}ms" if theirs else f"{'-':>10}"
            print(f"{case[0]:<33} {ours * 1e3:8.2f}ms {theirs_text} {ratio:7.2f} {gflops:8.1f}")
    if hasattr(os, "getloadavg"):
        note = ("CPU time: other processes matter little" if args.clock == "cpu" else
                "wall-clock: other processes on these cores slow both sides, PyTorch's spinning threads more")
        print(f"load average after the table: {os.getloadavg()[0]:.1f} ({note})")
    if ratios:
        print(f"geometric mean of minieye/PyTorch: {float(np.exp(np.mean(np.log(ratios)))):.2f}"
              f"  (worst {max(ratios):.2f})")
    if not args.no_compile:
        (cold_wall, cold_cpu), (warm_wall, warm_cpu) = compile_times()
        print(f"all kernels (convolution, pooling, upsampling, regularizers), both dtypes: cold compile {cold_wall:.1f} s wall ({cold_cpu:.1f} s CPU), "
              f"warm cache load {warm_wall:.2f} s wall ({warm_cpu:.2f} s CPU)")
    if args.pool:  # the pooling helper's table, same thread count
        pool_script = Path(__file__).with_name("bench_pool.py")
        if pool_script.exists():
            print()
            sys.argv = [str(pool_script), "--threads", str(args.threads)]
            runpy.run_path(str(pool_script), run_name="__main__")
        else:
            print("benchmarks/bench_pool.py not found")


if __name__ == "__main__":
    main()
