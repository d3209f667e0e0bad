"""Seconds of one blind_deconvolve against the issue's targets: 256x256 under 10 s, 512x512 under 30 s.

    python benchmarks/bench_blind_speed.py                 # grey and colour, 256 and 512, 13x13 and 25x25 shakes
    python benchmarks/bench_blind_speed.py --sizes 256 --frames 25
    python benchmarks/bench_blind_speed.py --auto         # kernel_size=None: the frame chosen from the data

Crops of tuning images (scikit-image camera for grey, astronaut for colour; centred),
blurred by ``psf.camera_shake(frame, seed=1)`` with noise 0.01 (seeded). Each call is
timed by the wall clock and by the process's CPU seconds (every thread; on this shared
machine the load average, printed, inflates the wall time more than the CPU time). A
small call first compiles the Numba kernels, so no row pays for the JIT.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from minieye import restore
from minieye.restore import psf


def crop(colour: bool, size: int) -> np.ndarray:
    from skimage import data
    image = (data.astronaut() if colour else data.camera()) / 255.0
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return image[top:top + size, left:left + size]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="256,512", help="comma-separated crop sides")
    ap.add_argument("--frames", default="13,25", help="comma-separated kernel frames (odd)")
    ap.add_argument("--auto", action="store_true", help="do not tell the frame (kernel_size=None)")
    args = ap.parse_args(argv)
    restore.blind_deconvolve(crop(True, 64), 5)  # compile first
    print(f"load average at start {os.getloadavg()[0]:.1f}")
    print(f"| crop | frame{' (not told)' if args.auto else ''} | wall s | CPU s | accepted | PSNR blurred -> blind |\n"
          "|---|---|---|---|---|---|")
    for size in [int(s) for s in args.sizes.split(",")]:
        for colour in (False, True):
            truth = crop(colour, size)
            for frame in [int(f) for f in args.frames.split(",")]:
                kernel = psf.camera_shake(frame, seed=1)
                blurred = restore.blur(truth, kernel) + 0.01 * np.random.default_rng(0).standard_normal(truth.shape)
                wall, cpu = time.perf_counter(), time.process_time()
                result = restore.blind_deconvolve(blurred, None if args.auto else frame, full=True)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                print(f"| {size}x{size} {'colour' if colour else 'grey'} | {frame}x{frame} | {wall:.1f} | {cpu:.1f} "
                      f"| {'yes' if result.accepted else 'no'} | {restore.psnr(truth, np.clip(blurred, 0, 1)):.2f} -> "
                      f"{restore.psnr(truth, np.clip(result.image, 0, 1)):.2f} |", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
