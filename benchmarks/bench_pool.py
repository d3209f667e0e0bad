"""Pooling benchmark: minieye vs PyTorch CPU, forward + backward, same thread count.

    .venv/bin/python benchmarks/bench_pool.py                 # 2 threads, float32
    .venv/bin/python benchmarks/bench_pool.py --threads 1 --repeat 30

Each row times one training step of the operation through minieye's layers (forward,
then backward with a fixed dy): the validation and allocation a user pays are
included. PyTorch runs the same step with autograd (``torch.nn.functional``). Times
are medians of ``--repeat`` runs after a warm-up; the ratio is minieye / PyTorch
(lower is better), measured in one process so machine noise hits both sides alike.
The first-call column is Numba's compile (cold cache) or cache load (warm cache).
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numba
import numpy as np

import minieye as me
from minieye import layers

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # the table still prints minieye's times
    torch = None

# (label, shape, minieye network builder, torch step builder)
CASES: list[tuple[str, tuple[int, ...], str]] = [
    ("maxpool+unpool k2", (32, 32, 32, 32), "pair"),
    ("maxpool+unpool k2", (8, 64, 64, 64), "pair"),
    ("maxpool k3 s2 p1", (8, 64, 64, 64), "max3"),
    ("avgpool k3 s2 p1", (8, 64, 64, 64), "avg3"),
    ("upsample nearest x2", (8, 64, 32, 32), "nearest"),
    ("upsample bilinear x2", (8, 64, 32, 32), "bilinear"),
]


def minieye_net(kind: str) -> me.Layer:
    if kind == "pair":
        pool = layers.MaxPool2D(2)
        return me.Sequential(pool, layers.MaxUnpool2D(pool))
    return {
        "max3": lambda: layers.MaxPool2D(3, stride=2, padding=1),
        "avg3": lambda: layers.AvgPool2D(3, stride=2, padding=1),
        "nearest": lambda: layers.Upsample(2, "nearest"),
        "bilinear": lambda: layers.Upsample(2, "bilinear"),
    }[kind]()


def torch_fn(kind: str, shape: tuple[int, ...]) -> Callable:
    if kind == "pair":
        def pair(t):
            y, idx = TF.max_pool2d(t, 2, return_indices=True)
            return TF.max_unpool2d(y, idx, 2, output_size=shape[2:])
        return pair
    return {
        "max3": lambda t: TF.max_pool2d(t, 3, 2, 1),
        "avg3": lambda t: TF.avg_pool2d(t, 3, 2, 1),
        "nearest": lambda t: TF.interpolate(t, scale_factor=2, mode="nearest"),
        "bilinear": lambda t: TF.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False),
    }[kind]


def median_time(step: Callable[[], object], repeat: int) -> float:
    step()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    if torch is not None:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"threads={args.threads} dtype={args.dtype} numba layer={numba.config.THREADING_LAYER} "
          f"torch={'-' if torch is None else torch.__version__}")
    header = f"{'operation':<22} {'shape':<16} {'first call':>10} {'minieye':>10} {'pytorch':>10} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    ratios = []
    for label, shape, kind in CASES:
        x = rng.standard_normal(shape).astype(args.dtype)
        net = minieye_net(kind)
        y = net(x)
        dy = rng.standard_normal(y.shape).astype(args.dtype)

        def step():
            _, backward = net.forward(x)
            return backward(dy, me.DeltaSet())

        start = time.perf_counter()
        step()
        first = time.perf_counter() - start
        ours = median_time(step, args.repeat)
        theirs = ratio = float("nan")
        if torch is not None:
            fn, tx, tdy = torch_fn(kind, shape), torch.tensor(x, requires_grad=True), torch.tensor(dy)

            def torch_step():
                tx.grad = None
                fn(tx).backward(tdy)

            theirs = median_time(torch_step, args.repeat)
            ratio = ours / theirs
            ratios.append(ratio)
        print(f"{label:<22} {'x'.join(map(str, shape)):<16} {first * 1e3:>8.0f}ms {ours * 1e3:>8.2f}ms "
              f"{theirs * 1e3:>8.2f}ms {ratio:>6.2f}")
    if ratios:
        print(f"geometric mean of minieye/PyTorch: {float(np.exp(np.mean(np.log(ratios)))):.2f}")


if __name__ == "__main__":
    main()
