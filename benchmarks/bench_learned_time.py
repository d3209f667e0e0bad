"""Seconds of deconvolve(prior='learned' / 'auto' (the default) / 'nonlocal') on a 512x512 image, one thread.

    python benchmarks/bench_learned_time.py [--repeat 2] [--weights W] [--priors learned,auto,nonlocal]
    python benchmarks/bench_learned_time.py --base e398ad1 --priors auto --repeat 3   # another tree against this one
    python benchmarks/bench_learned_time.py --weights OLD,NEW --priors auto --repeat 3   # two networks alternating
    python benchmarks/bench_learned_time.py --cold --priors auto --repeat 1   # a fresh process's first call

camera (scikit-image), 5x5 box blur (reflect), noise sd 0.01, seed 0. minieye's kernels and
every BLAS/OpenMP pool (threadpoolctl) are held to one thread. Prints wall and process-CPU seconds of each run and the PSNR; the three priors alternate in one process
(the machine is shared), and the load average is printed at the start and the end.

``--base REV_OR_PATH``: another tree of minieye (a git revision of this repository, or a folder
holding ``minieye/``), imported beside this one as ``minieye_base`` (bench_plan_ab.base_package);
each prior then runs on both trees in turn, the order swapped every round, and each round prints
this tree's CPU seconds over the base's and the largest difference between the two restorations.
``--weights A,B``: two denoisers on this tree, alternating the same way (``use_weights`` before
each run; "base" is A). ``--cold``: no warm-up, so the first run is what a fresh process's first
restoration costs (the JIT cache loaded, the weights read, the first page faults).
"""
from __future__ import annotations

import argparse
import importlib
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

import minieye as me
from minieye import restore
from minieye.restore import psf


def _sides(base: str | None, weights: str | None, cold: bool) -> list[tuple[str, object, str | None]]:
    """(name, package, weights) of each side timed: this tree, and the base tree or weights where given."""
    chosen = weights.split(",") if weights else [None]
    if len(chosen) > 2 or (base and len(chosen) > 1):
        raise SystemExit("--weights: one path, or two (A,B) without --base")
    sides: list[tuple[str, object, str | None]] = [("this", me, chosen[-1])]
    if base:
        from bench_plan_ab import base_package
        sides.insert(0, ("base", base_package(base), chosen[0]))
    elif len(chosen) == 2:
        sides.insert(0, ("base", me, chosen[0]))
    for _, package, _ in sides:
        if not cold:
            importlib.import_module(f"{package.__name__}.kernels.warm").warm_up()
    return sides


_in_use: dict[str, str | None] = {}


def _use(package: object, weights: str | None) -> None:
    """use_weights where they change (it drops the loaded network and whatever it keeps)."""
    if package.__name__ not in _in_use or _in_use[package.__name__] != weights:
        importlib.import_module(f"{package.__name__}.restore.denoiser").use_weights(weights)
        _in_use[package.__name__] = weights


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--weights", default=None, help="denoiser weights to time instead of the shipped ones (A,B: both)")
    ap.add_argument("--cold", action="store_true", help="no warm-up: the first run is a fresh process's first call")
    ap.add_argument("--priors", default="learned,auto,nonlocal")
    ap.add_argument("--base", default=None, help="a git revision or folder whose minieye runs beside this one")
    args = ap.parse_args(argv)
    from skimage import data
    truth = data.camera() / 255.0
    k = psf.box(5)
    y = restore.blur(truth, k, mode="reflect") + 0.01 * np.random.default_rng(0).standard_normal(truth.shape)
    with me.options(threads=1), threadpool_limits(1):
        sides = _sides(args.base, args.weights, args.cold)
        for _, package, weights in sides if not args.cold else []:
            with package.options(threads=1):
                _use(package, weights)
                package.restore.deconvolve(y[:64, :64], k, prior="auto")  # the network's and the solver's first calls
        print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")
        for round_ in range(args.repeat):
            for prior in args.priors.split(","):
                results = {}
                for name, package, weights in (sides if round_ % 2 == 0 else sides[::-1]):
                    with package.options(threads=1):
                        _use(package, weights)
                        wall, cpu = time.perf_counter(), time.process_time()
                        u, info = package.restore.deconvolve(y, k, prior=prior, full=True)
                        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    results[name] = (u, cpu)
                    label = "" if len(sides) == 1 else f"{name:4s} "
                    print(f"{label}prior={prior!r:11s} ({info.family}, learned share {info.learned_share:.2f}): "
                          f"{restore.psnr(truth, u):.2f} dB, {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
                if len(sides) > 1:
                    (u_base, cpu_base), (u_this, cpu_this) = results["base"], results["this"]
                    print(f"     this / base CPU {cpu_this / cpu_base:.3f}, "
                          f"largest difference {np.abs(u_this - u_base).max():.2e}", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
