"""Pooling benchmark (1-, 2- and 3-D): minieye vs PyTorch CPU, forward + backward, same thread count.

    .venv/bin/python benchmarks/bench_pool.py                 # 2 threads, float32
    .venv/bin/python benchmarks/bench_pool.py --threads 1 --repeat 30
    .venv/bin/python benchmarks/bench_pool.py --dims 2            # only the 2-D rows

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

# (label, shape, kind): kind names the operation; its dimension is the shape's (ndim - 2)
CASES: list[tuple[str, tuple[int, ...], str]] = [
    ("maxpool+unpool k2", (32, 32, 32, 32), "pair"),
    ("maxpool+unpool k2", (8, 64, 64, 64), "pair"),
    ("maxpool k3 s2 p1", (8, 64, 64, 64), "max3"),
    ("avgpool k3 s2 p1", (8, 64, 64, 64), "avg3"),
    ("upsample nearest x2", (8, 64, 32, 32), "nearest"),
    ("upsample bilinear x2", (8, 64, 32, 32), "bilinear"),
    ("1d maxpool+unpool k2", (32, 64, 4096), "pair"),
    ("1d maxpool k3 s2 p1", (32, 64, 4096), "max3"),
    ("1d avgpool k3 s2 p1", (32, 64, 4096), "avg3"),
    ("3d maxpool+unpool k2", (4, 16, 32, 64, 64), "pair"),
    ("3d maxpool k3 s2 p1", (4, 16, 32, 64, 64), "max3"),
    ("3d avgpool k3 s2 p1", (4, 16, 32, 64, 64), "avg3"),
    ("3d maxpool+unpool k2", (1, 1, 64, 128, 128), "pair"),  # one volume: threads split its depth
]


def minieye_net(kind: str, nd: int) -> me.Layer:
    max_pool, avg_pool = getattr(layers, f"MaxPool{nd}D"), getattr(layers, f"AvgPool{nd}D")
    if kind == "pair":
        pool = max_pool(2)
        return me.Sequential(pool, getattr(layers, f"MaxUnpool{nd}D")(pool))
    return {
        "max3": lambda: max_pool(3, stride=2, padding=1),
        "avg3": lambda: avg_pool(3, stride=2, padding=1),
        "nearest": lambda: layers.Upsample(2, "nearest"),
        "bilinear": lambda: layers.Upsample(2, "bilinear"),
    }[kind]()


def torch_fn(kind: str, shape: tuple[int, ...]) -> Callable:
    nd = len(shape) - 2
    max_pool, avg_pool = getattr(TF, f"max_pool{nd}d"), getattr(TF, f"avg_pool{nd}d")
    if kind == "pair":
        unpool = getattr(TF, f"max_unpool{nd}d")

        def pair(t):
            y, idx = max_pool(t, 2, return_indices=True)
            return unpool(y, idx, 2, output_size=shape[2:])
        return pair
    return {
        "max3": lambda t: max_pool(t, 3, 2, 1),
        "avg3": lambda t: avg_pool(t, 3, 2, 1),
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
    parser.add_argument("--dims", default="1,2,3", help="which dimensions to run, e.g. 2 or 1,3")
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
    dims = {int(d) for d in args.dims.split(",")}
    ratios: dict[int, list[float]] = {}
    for label, shape, kind in CASES:
        nd = len(shape) - 2
        if nd not in dims:
            continue
        x = rng.standard_normal(shape).astype(args.dtype)
        net = minieye_net(kind, nd)
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
            ratios.setdefault(nd, []).append(ratio)
        print(f"{label:<22} {'x'.join(map(str, shape)):<16} {first * 1e3:>8.0f}ms {ours * 1e3:>8.2f}ms "
              f"{theirs * 1e3:>8.2f}ms {ratio:>6.2f}")
    for nd, found in sorted(ratios.items()):
        print(f"{nd}-D geometric mean of minieye/PyTorch: {float(np.exp(np.mean(np.log(found)))):.2f}")


if __name__ == "__main__":
    main()
