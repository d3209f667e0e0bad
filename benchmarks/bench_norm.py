"""Normalisation, dropout and activation layers: minieye vs PyTorch CPU, one training step each.

    .venv/bin/python benchmarks/bench_norm.py                  # float32, 2 threads, 7 repeats
    .venv/bin/python benchmarks/bench_norm.py --repeat 15 --shape 64 32 28 28
    .venv/bin/python benchmarks/bench_norm.py --threads 1 --clock cpu --only GELU ReLU   # CPU time: robust to load

Each row times forward then backward (fixed dy) in training mode, through minieye's
layers and through ``torch.nn`` with autograd, alternating the two in one process so
that machine noise hits both alike; times are medians, the ratio is minieye / PyTorch
(lower is better). ``--threads`` sets both libraries' thread counts (PyTorch's and
minieye's kernels'). These layers are vectorised NumPy except ReLU and GELU (fused Numba kernels).
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np
from bench_clock import add_clock_option, chosen_clock

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
            ("ReLU", L.ReLU(), lambda: torch.nn.ReLU()),
            ("GELU", L.GELU(), lambda: torch.nn.GELU()),
            ("SiLU", L.SiLU(), lambda: torch.nn.SiLU()),
            ("ELU", L.ELU(), lambda: torch.nn.ELU()),
            ("Softplus", L.Softplus(), lambda: torch.nn.Softplus())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=4, default=[128, 16, 28, 28], metavar=("N", "C", "H", "W"))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="+", metavar="LAYER", help="rows whose label starts with one of these")
    add_clock_option(parser)
    args = parser.parse_args()
    clock = chosen_clock(parser, args)
    me.options.set(threads=args.threads)
    shape = tuple(args.shape)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(f"x {shape} float32, {args.repeat} repeats, {args.threads} threads, clock={args.clock}; medians in ms")
    print(f"{'layer':<20} {'minieye':>9} {'PyTorch':>9} {'ratio':>6}")
    for label, ours, make_theirs in _pairs(shape):
        if args.only and not label.startswith(tuple(args.only)):
            continue
        theirs = make_theirs() if torch is not None else None
        ours_times, theirs_times = [], []
        for _ in range(args.repeat + 1):  # the first round warms up
            start = clock()
            y, backward = ours.forward(x)
            backward(dy, me.DeltaSet())
            ours_times.append(clock() - start)
            if theirs is not None:
                start = clock()
                xt = torch.from_numpy(x).requires_grad_(True)
                theirs(xt).backward(torch.from_numpy(dy))
                theirs_times.append(clock() - start)
        a = statistics.median(ours_times[1:]) * 1e3
        if theirs is None:
            print(f"{label:<20} {a:9.2f}")
            continue
        b = statistics.median(theirs_times[1:]) * 1e3
        print(f"{label:<20} {a:9.2f} {b:9.2f} {a / b:6.2f}")


if __name__ == "__main__":
    main()
