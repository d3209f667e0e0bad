"""Seconds of deconvolve(prior='learned' / 'auto' (the default) / 'nonlocal') on a 512x512 image, one thread.

    python benchmarks/bench_learned_time.py [--repeat 2] [--weights W] [--priors learned,auto,nonlocal]

camera (scikit-image), 5x5 box blur (reflect), noise sd 0.01, seed 0. minieye's kernels and
every BLAS/OpenMP pool (threadpoolctl) are held to one thread. Prints wall and process-CPU seconds of each run and the PSNR; the three priors alternate in one process
(the machine is shared), and the load average is printed at the start and the end.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

import minieye as me
from minieye import restore
from minieye.kernels.warm import warm_up
from minieye.restore import psf


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--weights", default=None, help="denoiser weights to time instead of the shipped ones")
    ap.add_argument("--priors", default="learned,auto,nonlocal")
    args = ap.parse_args(argv)
    if args.weights:
        from minieye.restore.denoiser import use_weights
        use_weights(args.weights)
    from skimage import data
    truth = data.camera() / 255.0
    k = psf.box(5)
    y = restore.blur(truth, k, mode="reflect") + 0.01 * np.random.default_rng(0).standard_normal(truth.shape)
    with me.options(threads=1), threadpool_limits(1):
        warm_up()
        restore.deconvolve(y[:64, :64], k, prior="auto")  # the network's and the solver's first calls
        print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")
        for _ in range(args.repeat):
            for prior in args.priors.split(","):
                wall, cpu = time.perf_counter(), time.process_time()
                u, info = restore.deconvolve(y, k, prior=prior, full=True)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                print(f"prior={prior!r:11s} ({info.family}, learned share {info.learned_share:.2f}): "
                      f"{restore.psnr(truth, u):.2f} dB, {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
