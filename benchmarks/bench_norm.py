"""Normalisation, dropout and activation layers: minieye vs PyTorch CPU, one training step each.

    .venv/bin/python benchmarks/bench_norm.py                  # float32, 2 threads, 7 repeats
    .venv/bin/python benchmarks/bench_norm.py --repeat 15 --shape 64 32 28 28

Each row times forward then backward (fixed dy) in training mode, through minieye's
layers and through ``torch.nn`` with autograd, alternating the two in one process so
that machine noise hits both alike; times are medians, the ratio is minieye / PyTorch
(lower is better). These layers are vectorised NumPy, no Numba.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import minieye as me
from minieye import layers as L

try:
    import torch
except ImportError:  # the table still prints minieye's times
    torch = None


def _pairs(shape: tuple[int, ...]):
    """(label, minieye layer, a function making PyTorch's twin) for inputs of ``shape``."""
    c = shape[1]
    return [("BatchNorm2D", L.BatchNorm2D(c), lambda: torch.nn.BatchNorm2d(c)),
            ("GroupNorm(4)", L.GroupNorm(4, c), lambda: torch.nn.GroupNorm(4, c)),
            ("LayerNorm(C, H, W)", L.LayerNorm(shape[1:]), lambda: torch.nn.LayerNorm(shape[1:])),
            ("Dropout(0.5)", L.Dropout(0.5, seed=0), lambda: torch.nn.Dropout(0.5)),
            ("GELU", L.GELU(), lambda: torch.nn.GELU()),
            ("SiLU", L.SiLU(), lambda: torch.nn.SiLU()),
            ("ELU", L.ELU(), lambda: torch.nn.ELU()),
            ("Softplus", L.Softplus(), lambda: torch.nn.Softplus())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=4, default=[128, 16, 28, 28], metavar=("N", "C", "H", "W"))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    shape = tuple(args.shape)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(f"x {shape} float32, {args.repeat} repeats, {args.threads} torch threads; medians in ms")
    print(f"{'layer':<20} {'minieye':>9} {'PyTorch':>9} {'ratio':>6}")
    for label, ours, make_theirs in _pairs(shape):
        theirs = make_theirs() if torch is not None else None
        ours_times, theirs_times = [], []
        for _ in range(args.repeat + 1):  # the first round warms up
            start = time.perf_counter()
            y, backward = ours.forward(x)
            backward(dy, me.DeltaSet())
            ours_times.append(time.perf_counter() - start)
            if theirs is not None:
                start = time.perf_counter()
                xt = torch.from_numpy(x).requires_grad_(True)
                theirs(xt).backward(torch.from_numpy(dy))
                theirs_times.append(time.perf_counter() - start)
        a = statistics.median(ours_times[1:]) * 1e3
        if theirs is None:
            print(f"{label:<20} {a:9.2f}")
            continue
        b = statistics.median(theirs_times[1:]) * 1e3
        print(f"{label:<20} {a:9.2f} {b:9.2f} {a / b:6.2f}")


if __name__ == "__main__":
    main()
