"""A layer's training step (forward + backward) under two settings, alternated step by step in one process.

    PYTHONPATH=$PWD python benchmarks/bench_plan_ab.py convT --pairs 300                  # per tap (A) / per shift (B)
    PYTHONPATH=$PWD python benchmarks/bench_plan_ab.py convT --pairs 300 --threads 2 --clock wall
    PYTHONPATH=$PWD python benchmarks/bench_plan_ab.py unet --pairs 40                   # the U-Net's samplers
    PYTHONPATH=$PWD python benchmarks/bench_plan_ab.py phases --base main --pairs 100     # up-samplers by phases
    PYTHONPATH=$PWD python benchmarks/bench_plan_ab.py phases --a conv_transpose_algorithm=adjoint \
        --b conv_transpose_algorithm=phases --pairs 40
    PYTHONPATH=$PWD python benchmarks/bench_plan_ab.py taps --pairs 60 --base main       # main's tree (A) / this one (B)
    PYTHONPATH=$PWD python benchmarks/bench_plan_ab.py k32 --a conv_algorithm=gemm --b conv_algorithm=winograd4
    PYTHONPATH=$PWD python benchmarks/bench_plan_ab.py rows --a threads=1 --b threads=2 --threads 2 --total-cpu

Side A runs under ``--a KNOB=VALUE`` and side B under ``--b KNOB=VALUE`` (knobs of ``minieye.options``,
repeatable); without either, A forces ``conv_algorithm="taps"`` (one product per kernel tap) and B
keeps "auto" (which runs a stride that divides the kernel per shift of the phase planes: the plan
``Plan.shifts``), both with ``conv_transpose_algorithm="adjoint"``, so B / A is what products per shift
are worth. ``--base REV_OR_PATH``: side A is
another tree of minieye instead (a git revision of this repository, or a folder holding a
``minieye/`` package), copied into a temporary package ``minieye_base`` and imported beside this one;
both sides then default to "auto". Each side has its own layer (same seed) on the same input.

Every pair runs one step of each side, the order swapped every pair, so that both see the same
caches and the same load; each step's forward and backward are timed apart (``--clock cpu``: this
process's CPU time, with ``--threads 1``; ``--total-cpu``: CPU time at any thread count, so that
``--a threads=1 --b threads=2 --threads 2 --total-cpu`` measures the CPU a layer's split into two
threads costs). ``--gap-ms``: an untimed pause before each step, so that a side
whose worker threads poll for a while after a step (to save the wake of the next hand-off) does not
take the cores the other side's step begins on. Printed per case: each side's median forward / backward
/ step in ms and the medians of the pair ratios B / A (the figure to go by on a noisy machine).
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_clock import add_clock_option, chosen_clock

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # name: (layer class, positional arguments, keyword arguments, input shape)
    "convT": ("ConvTranspose2D", (32, 16, 4), dict(stride=2, padding=1), (32, 32, 16, 16)),  # bench_kernels' row
    # up-samplers whose taps fit a 3x3 window of phases (conv_transpose_algorithm "phases" / "adjoint")
    "convT3": ("ConvTranspose2D", (32, 16, 3), dict(stride=2, padding=1, output_padding=1), (32, 32, 16, 16)),
    "convT5": ("ConvTranspose2D", (32, 16, 5), dict(stride=2, padding=2, output_padding=1), (32, 32, 16, 16)),
    "convTwide": ("ConvTranspose2D", (64, 32, 4), dict(stride=2, padding=1), (8, 64, 32, 32)),
    "convTfew": ("ConvTranspose2D", (16, 8, 4), dict(stride=2, padding=1), (32, 16, 16, 16)),
    "convTimage": ("ConvTranspose2D", (32, 16, 4), dict(stride=2, padding=1), (1, 32, 128, 128)),
    # the learned prior's U-Net samplers (2x2, stride 2) on a training batch and on a 512x512 image
    "down24": ("Conv2D", (24, 48, 2), dict(stride=2), (16, 24, 32, 32)),
    "up48": ("ConvTranspose2D", (48, 24, 2), dict(stride=2), (16, 48, 16, 16)),
    "down48": ("Conv2D", (48, 96, 2), dict(stride=2), (16, 48, 16, 16)),
    "up96": ("ConvTranspose2D", (96, 48, 2), dict(stride=2), (16, 96, 8, 8)),
    "down24big": ("Conv2D", (24, 48, 2), dict(stride=2), (1, 24, 512, 512)),
    "up48big": ("ConvTranspose2D", (48, 24, 2), dict(stride=2), (1, 48, 256, 256)),
    "k4s2": ("Conv2D", (32, 64, 4), dict(stride=2, padding=1), (32, 32, 32, 32)),
    # per-tap layers (stride 1, or a stride that does not divide the kernel)
    "taps8": ("Conv2D", (32, 32, 3), dict(padding=1), (128, 32, 8, 8)),
    "k32s2": ("Conv2D", (16, 32, 3), dict(stride=2, padding=1), (32, 16, 32, 32)),
    "den5": ("Conv2D", (24, 24, 5), dict(padding=2), (16, 24, 32, 32)),
    "k32": ("Conv2D", (16, 32, 3), dict(padding=1), (32, 16, 32, 32)),  # bench_kernels' 32x16x32x32 -> 32 row
    # bench_kernels' other rows, and first layers of bench_training's networks
    "k64": ("Conv2D", (64, 64, 3), dict(padding=1), (8, 64, 64, 64)),
    "digits": ("Conv2D", (1, 16, 3), dict(padding=1), (256, 1, 8, 8)),
    "vgg1": ("Conv2D", (3, 32, 3), dict(padding=1), (32, 3, 32, 32)),
    "lenet1": ("Conv2D", (1, 6, 5), dict(padding=2), (64, 1, 28, 28)),
    # the restoration denoisers' first layer (image and noise map in, 3x3): a training batch and an image tile
    "den2": ("Conv2D", (2, 24, 3), dict(padding=1), (16, 2, 32, 32)),
    "den2big": ("Conv2D", (2, 16, 3), dict(padding=1), (1, 2, 256, 256)),
    "den2tile": ("Conv2D", (2, 16, 3), dict(padding=1), (1, 2, 416, 416)),
    # Winograd F(4x4) layers: bench_training's VGG block after its first layer, and fewer outputs than inputs
    "vgg2": ("Conv2D", (32, 32, 3), dict(padding=1), (32, 32, 32, 32)),
    "vgg3": ("Conv2D", (32, 64, 3), dict(padding=1), (32, 32, 16, 16)),
    "vgg4": ("Conv2D", (64, 64, 3), dict(padding=1), (32, 64, 16, 16)),
    "w64to32": ("Conv2D", (64, 32, 3), dict(padding=1), (16, 64, 16, 16)),
    "w64to16": ("Conv2D", (64, 16, 3), dict(padding=1), (16, 64, 16, 16)),
    "den24": ("Conv2D", (24, 24, 3), dict(padding=1), (16, 24, 32, 32)),  # the restoration denoisers' middle layers
}
GROUPS = {"unet": ["down24", "up48", "down48", "up96", "down24big", "up48big", "k4s2"],
          "taps": ["taps8", "k32s2", "den5"], "rows": ["digits", "k32", "convT", "k64"],
          "small": ["digits", "lenet1", "vgg1", "den2", "den2big", "den2tile"],
          "phases": ["convT", "convT3", "convT5", "convTwide", "convTfew", "convTimage"],
          "wino": ["k32", "k64", "vgg2", "vgg3", "vgg4", "w64to32", "w64to16", "den24"]}


def knob_value(text: str):
    """A knob's value from the command line: an int, None, or the string itself."""
    if text == "None":
        return None
    try:
        return int(text)
    except ValueError:
        return text


def knobs(settings: list[str]) -> dict:
    return {name: knob_value(value) for name, value in (item.split("=", 1) for item in settings)}


def base_package(source: str):
    """``source`` (a git revision of this repository, or a folder holding ``minieye/``) imported as
    ``minieye_base``; its package uses relative imports only, so the renamed copy is self-contained.
    The copy stays in the temporary folder so that Numba's cache of it survives between runs."""
    if Path(source, "minieye").is_dir():
        tag, folder = "dir", Path(source).resolve() / "minieye"
    else:
        tag = subprocess.run(["git", "rev-parse", "--short", source], cwd=ROOT, check=True, capture_output=True,
                             text=True).stdout.strip()
        folder = None
    home = Path(tempfile.gettempdir()) / f"plan_ab_{tag}_{os.getuid()}"
    target = home / "minieye_base"
    if folder is not None:  # a working folder may change: copy it afresh
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(folder, target, ignore=shutil.ignore_patterns("__pycache__"))
    elif not target.is_dir():
        home.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", source, "minieye"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(home)], input=archive.stdout, check=True)
        (home / "minieye").rename(target)
    sys.path.insert(0, str(home))
    return importlib.import_module("minieye_base")


def plan_text(package, layer, x: np.ndarray, y: np.ndarray) -> str:
    """The plan the layer's forward computes (a transposed layer: its phase convolution's, or the plan of the
    convolution it is the adjoint of)."""
    from_conv = package.functional.conv
    w = layer.weight.value
    choose = getattr(from_conv, "transpose_phases", None)  # trees before the phase convolution lack it
    phases = choose(x.shape, w.shape, layer.geometry, y.shape[2:], "plan_text") if layer.transposed and choose else None
    if phases is not None:
        return f"phases by {phases.plan.algorithm.name}, {phases.plan.threads} thread(s)"
    shape = x.shape if not layer.transposed else (x.shape[0], w.shape[1] * layer.groups) + y.shape[2:]
    p = from_conv.conv_plan(shape, w.shape, layer.geometry)
    return f"{p.algorithm.name}{' per shift' if getattr(p, 'shifts', False) else ''}, {p.threads} thread(s)"


class Side:
    """One contender: a package, its knobs, and its own copy of the layer."""

    def __init__(self, package, settings: dict, case: str, x: np.ndarray):
        cls, args, kwargs, _ = CASES[case]
        self.package, self.settings, self.x = package, settings, x
        self.layer = getattr(package.layers, cls)(*args, **kwargs, seed=0)
        with package.options(**settings):
            self.y, _ = self.layer.forward(x)
            self.plan = plan_text(package, self.layer, x, self.y)
        self.dy = np.random.default_rng(1).standard_normal(self.y.shape).astype(x.dtype)

    def step(self, clock) -> tuple[float, float]:
        """One forward and backward: (forward, backward) seconds."""
        with self.package.options(**self.settings):
            start = clock()
            _, backward = self.layer.forward(self.x)
            middle = clock()
            backward(self.dy, self.package.DeltaSet())
            return middle - start, clock() - middle


def compare(case: str, packages: tuple, settings: tuple[dict, dict], pairs: int, clock, gap_s: float = 0.0) -> None:
    x = np.random.default_rng(0).standard_normal(CASES[case][3]).astype(np.float32)
    a, b = (Side(p, s, case, x) for p, s in zip(packages, settings))
    for side in (a, b, a, b):  # compile or load, fill the caches
        side.step(clock)
    times = {a: [], b: []}
    for k in range(pairs):
        for side in ((a, b) if k % 2 == 0 else (b, a)):
            if gap_s:
                time.sleep(gap_s)
            times[side].append(side.step(clock))
    ta, tb = np.array(times[a]) * 1e3, np.array(times[b]) * 1e3  # (pairs, 2): forward, backward
    ta, tb = np.column_stack([ta, ta.sum(1)]), np.column_stack([tb, tb.sum(1)])
    shape = "x".join(map(str, x.shape))
    print(f"{case} ({CASES[case][0]} {CASES[case][1]} {CASES[case][2]} on {shape}): A {a.plan}; B {b.plan}")
    print("   A ms fwd / bwd / step: " + " / ".join(f"{v:.3f}" for v in np.median(ta, 0))
          + "   B: " + " / ".join(f"{v:.3f}" for v in np.median(tb, 0))
          + "   B/A (median of pair ratios): " + " / ".join(f"{v:.3f}" for v in np.median(tb / ta, 0))
          + f"   load {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", default=["convT"], help=f"{sorted(CASES)} or a group {sorted(GROUPS)}")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    add_clock_option(parser)
    parser.add_argument("--a", action="append", default=[], metavar="KNOB=VALUE", help="side A's knobs")
    parser.add_argument("--b", action="append", default=[], metavar="KNOB=VALUE", help="side B's knobs")
    parser.add_argument("--base", metavar="REV_OR_PATH", help="side A runs this tree of minieye")
    parser.add_argument("--total-cpu", action="store_true",
                        help="CPU time summed over --threads threads: what splitting a layer costs, not its speed")
    parser.add_argument("--gap-ms", type=float, default=0.0,
                        help="an untimed pause before each step, longer than either side's worker threads poll "
                             "after a hand-off, so that they do not take the other side's cores")
    args = parser.parse_args()
    cases = [c for name in args.cases for c in GROUPS.get(name, [name])]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {sorted(CASES)} or {sorted(GROUPS)}")
    clock = time.process_time if args.total_cpu else chosen_clock(parser, args)
    if args.base is None and not (args.a or args.b):
        # both transposed layers as the adjoint convolution, so that B / A is what products per shift are worth
        args.a = ["conv_algorithm=taps", "conv_transpose_algorithm=adjoint"]
        args.b = ["conv_transpose_algorithm=adjoint"]
    import numba
    from threadpoolctl import threadpool_limits

    import minieye
    numba.set_num_threads(args.threads)
    packages = (base_package(args.base) if args.base else minieye, minieye)
    print(f"A: {args.base or 'this tree'} {args.a or ''}; B: this tree {args.b or ''}; threads {args.threads}, "
          f"clock {'total CPU' if args.total_cpu else args.clock}, {args.pairs} pairs, float32")
    with threadpool_limits(args.threads):
        for case in cases:
            compare(case, packages, (knobs(args.a), knobs(args.b)), args.pairs, clock, args.gap_ms / 1e3)


if __name__ == "__main__":
    main()
