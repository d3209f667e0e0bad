"""Where one L-BFGS iteration of a 512x512 deconvolution spends its time.

    python benchmarks/bench_deconvolve_speed.py                  # profile + reference-vs-kernel ratio
    python benchmarks/bench_deconvolve_speed.py --cases          # also the six noise-free 512x512 cases
    python benchmarks/bench_deconvolve_speed.py --iterations 50 --repeats 3

The call is the one issue 5 times: ``restore.deconvolve(restore.blur(truth, k, 'reflect'),
k, full=True)`` with a fixed iteration count (``iterations=N``, so both variants do the
same number of steps whatever their rounding). Three parts:

1. profile: each component's *exclusive* time (nested components subtracted, like
   cProfile's tottime) in ms per iteration, measured by wrapping the methods that do the
   work: the blur (Conv2D forward, and its backward), MSE, the two regularizers, the
   L-BFGS two-loop recursion and update, the Box projection, the projected slope, the
   gradient reduction, the vector <-> parameter copies; "rest" is everything else (line
   search and path arithmetic, Graph and Problem overhead, allocations).
2. ratio: the same run with the ``regularizer_kernels`` knob False (the NumPy reference
   regularizers) and True (minieye/kernels/tv.py), alternating in one process, best of
   ``--repeats``: the machine is shared, so only ratios within one run mean much.
3. ``--cases``: wall time, iterations and PSNR of the six noise-free cases (camera and
   astronaut, box5 / gauss1.6 / motion9@30) with deconvolve's defaults (200 iterations).
"""
from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from typing import Any, Callable

import numpy as np

import minieye as me
from minieye import restore, train
from minieye.layers import Conv2D
from minieye.losses import MSE, SecondOrderTV, TotalVariation

from bench_restore import KERNELS, bundled  # the same images and kernels (run as a script: this folder is on sys.path)


class Profiler:
    """Exclusive wall time per component, collected by wrapping methods (and the backward closures they return)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.stack: list[float] = []  # time spent in nested components, per open frame
        self.saved: list[tuple[Any, str, Any]] = []

    def _timed(self, name: str, fn: Callable, wrap_backward: bool = False) -> Callable:
        def run(*args: Any, **kwargs: Any) -> Any:
            self.stack.append(0.0)
            start = time.perf_counter()
            try:
                out = fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                nested = self.stack.pop()
                self.totals[name] += elapsed - nested
                if self.stack:
                    self.stack[-1] += elapsed
            if wrap_backward:
                value, backward = out
                return value, self._timed(name, backward)
            return out
        return run

    def wrap(self, owner: Any, attr: str, name: str, wrap_backward: bool = False) -> None:
        original = getattr(owner, attr)
        self.saved.append((owner, attr, original))
        setattr(owner, attr, self._timed(name, original, wrap_backward))

    def install(self) -> None:
        self.wrap(Conv2D, "forward", "blur: Conv2D forward + backward", True)
        self.wrap(MSE, "forward", "MSE", True)
        self.wrap(TotalVariation, "forward", "TotalVariation", True)
        self.wrap(SecondOrderTV, "forward", "SecondOrderTV", True)
        self.wrap(train.LBFGS, "apply_inverse_hessian", "L-BFGS two-loop")
        self.wrap(train.LBFGS, "accepted", "L-BFGS update (s, y pairs)")
        self.wrap(train.Problem, "project", "Box projection")
        self.wrap(train.Problem, "projected_slope", "projected slope")
        self.wrap(train.ProjectedPath, "slope", "projected slope")
        if hasattr(train.ProjectedPath, "point"):  # the fused trial point (older revisions: Problem.project)
            self.wrap(train.ProjectedPath, "point", "Box projection")
        self.wrap(train.Problem, "reduce_gradient", "gradient reduction (Box)")
        self.wrap(train.Problem, "set_vector", "vector -> parameters")
        self.wrap(train.Problem, "get_vector", "vector -> parameters")
        from minieye.core import DeltaSet
        self.wrap(DeltaSet, "to_vector", "DeltaSet -> vector")

    def remove(self) -> None:
        for owner, attr, original in reversed(self.saved):
            setattr(owner, attr, original)
        self.saved.clear()


def run_case(blurred: np.ndarray, k: np.ndarray, iterations: int | None) -> tuple[np.ndarray, Any, float]:
    started = time.perf_counter()
    out, info = restore.deconvolve(blurred, k, full=True, iterations=iterations, prior="nonlocal")
    return out, info, time.perf_counter() - started


def profile(blurred: np.ndarray, k: np.ndarray, iterations: int, kernels: bool) -> None:
    with me.options(regularizer_kernels=kernels):
        setup = min(run_case(blurred, k, 1)[2] for _ in range(3))  # Wiener start, network, one iteration
        prof = Profiler()
        prof.install()
        try:
            _, info, seconds = run_case(blurred, k, iterations)
        finally:
            prof.remove()
    n = info.result.iterations
    which = "kernel" if kernels else "NumPy reference"
    print(f"\n## Profile with the {which} regularizers: {n} iterations, {info.result.evaluations} evaluations "
          f"({info.result.evaluations / n:.2f} per iteration), {1e3 * seconds / n:.1f} ms per iteration\n")
    print("| component | ms / iteration | share |\n|---|---|---|")
    accounted = 0.0
    for name, total in sorted(prof.totals.items(), key=lambda kv: -kv[1]):
        accounted += total
        print(f"| {name} | {1e3 * total / n:.2f} | {100 * total / seconds:.0f}% |")
    rest = seconds - accounted - setup
    print(f"| rest (line search, path arithmetic, Graph/Problem, allocations) | {1e3 * rest / n:.2f} | "
          f"{100 * rest / seconds:.0f}% |")
    print(f"| setup, once per call (Wiener start, network, first iteration) | {1e3 * setup / n:.2f} | "
          f"{100 * setup / seconds:.0f}% |")


def ratio(blurred: np.ndarray, k: np.ndarray, iterations: int, repeats: int) -> None:
    times: dict[bool, list[float]] = {False: [], True: []}
    psnr = {}
    for _ in range(repeats):
        for kernels in (False, True):
            with me.options(regularizer_kernels=kernels):
                out, info, seconds = run_case(blurred, k, iterations)
            times[kernels].append(seconds / iterations)
            psnr[kernels] = out
    ref, ker = min(times[False]), min(times[True])
    print(f"\n## Regularizers: NumPy reference vs kernels ({iterations} iterations, best of {repeats})\n")
    print(f"reference {1e3 * ref:.1f} ms/iteration, kernels {1e3 * ker:.1f} ms/iteration: "
          f"{ref / ker:.2f}x; max |difference| of the results {np.abs(psnr[False] - psnr[True]).max():.2e}")


def cases() -> None:
    print("\n## The six noise-free 512x512 cases (defaults: 200 iterations)\n")
    print("| image | kernel | PSNR dB | seconds | iterations |\n|---|---|---|---|---|")
    seconds_all = []
    for name in ("camera", "astronaut"):
        truth = bundled(name)
        for kname, k in KERNELS.items():
            blurred = restore.blur(truth, k, "reflect")
            out, info, seconds = run_case(blurred, k, None)
            seconds_all.append(seconds)
            print(f"| {name} | {kname} | {restore.psnr(truth, out):.2f} | {seconds:.1f} | {info.result.iterations} |",
                  flush=True)
    print(f"\nmedian {np.median(seconds_all):.1f} s, max {np.max(seconds_all):.1f} s "
          f"(load average now {os.getloadavg()[0]:.1f})")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cases", action="store_true", help="also time the six noise-free 512x512 cases")
    ap.add_argument("--no-ratio", action="store_true", help="skip the reference-vs-kernel ratio")
    args = ap.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")
    truth = bundled("camera")
    k = KERNELS["box5"]
    blurred = restore.blur(truth, k, "reflect")
    for kernels in (False, True):  # compile / warm both variants before timing
        with me.options(regularizer_kernels=kernels):
            run_case(blurred, k, 3)
    for kernels in (False, True):
        profile(blurred, k, args.iterations, kernels)
    if not args.no_ratio:
        ratio(blurred, k, args.iterations, args.repeats)
    if args.cases:
        cases()


if __name__ == "__main__":
    main()
