"""Tiled deconvolution: peak memory against image size, and seam error against halo width.

    python benchmarks/bench_tiled.py memory --halo 46             # 512..4096 px, memmapped in/out, tile 256
    python benchmarks/bench_tiled.py memory --sizes 512,1024 --untiled   # also plain deconvolve (grows)
    python benchmarks/bench_tiled.py memory --sizes 4096 --tile 0 # restore.deconvolve as it is: 1 GB budget
    python benchmarks/bench_tiled.py seams                        # camera 256x256, tile 96, halos 0..46
    python benchmarks/bench_tiled.py seams --kernel motion9 --tile 128 --halos 0,default
    python benchmarks/bench_tiled.py seams --halos 46 --iterations 0 --dtype float32   # deconvolve's defaults
    python benchmarks/bench_tiled.py defaults                     # defaults in memory vs in tiles (astronaut 1024)
    python benchmarks/bench_tiled.py volume-seams                 # 16x40x40 volume, tile 8x20x20, 3-D halos

memory: each size runs in a fresh subprocess: a synthetic blurred image (blocks plus
noise, float32) is written into a ``.npy`` memmap in a temporary folder, band by band,
then ``restore.deconvolve(src, k, tile=..., out=dst)`` reads and writes memmaps. Three
peaks are printed: numpy's (tracemalloc, started after the input is written), the
process's anonymous resident memory (RssAnon sampled every 20 ms: numpy, Numba and
everything else on the heap, but not the mapped files) and ``ru_maxrss`` (all resident
pages, including the pages of the two mapped files the process touched, which the
kernel can drop at will). Few iterations (memory does not depend on them once L-BFGS's
history buffers exist).

seams: ``deconvolve`` untiled and tiled (float64, run until the line search cannot
improve, so both are converged and the difference is the tiling's), on the camera
crop blurred by a Gaussian (sigma 1.6, 11x11) plus noise; prints the max and mean
absolute difference for each halo, and, from the halo-0 run, the largest difference
among pixels at least d pixels from a cut.

defaults: what a user gets: ``restore.deconvolve`` with its defaults (float32, not run to
convergence) on a photo resized to ``--size``, in memory (``max_memory=None``) and in the
tiles that a smaller ``--max-memory`` forces; prints both PSNRs and their differences.

volume-seams: the same on a (D, H, W) volume (tests/test_restore_tiled.py's: 3-D
blocks and a ramp, ``psf.gaussian3d((0.6, 0.8, 0.8), size=(3, 5, 5))``, noise 0.03),
halos given per axis as ``DxHxW``; prints the max difference per halo and along
which axis it sits.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from typing import Iterator

import numpy as np

from minieye import restore
from minieye.restore import budget, psf, tiled


def _rss_anon_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


@contextlib.contextmanager
def measure_peaks() -> Iterator[dict]:
    """Fills the yielded dict at exit: numpy's peak ("traced", tracemalloc), the anonymous resident
    memory's peak above its level at entry ("anon", bytes; RssAnon sampled every 10 ms) and "seconds"."""
    peaks, stop = {"anon_kib": _rss_anon_kib()}, threading.Event()
    base = peaks["anon_kib"]

    def sample() -> None:
        while not stop.wait(0.01):
            peaks["anon_kib"] = max(peaks["anon_kib"], _rss_anon_kib())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        yield peaks
    finally:
        peaks["seconds"] = time.perf_counter() - started
        peaks["traced"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        stop.set()
        thread.join()
        peaks["anon"] = (peaks.pop("anon_kib") - base) * 1024


def _child(size: int, tile: int, iterations: int, untiled: bool, halo: int | None) -> dict:
    k = psf.gaussian(1.6)
    restore.deconvolve(np.full((32, 32), 0.5), k, iterations=2, prior="nonlocal")  # compile kernels before measuring
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        src = np.lib.format.open_memmap(os.path.join(folder, "in.npy"), "w+", np.float32, (size, size))
        cols = np.arange(size)[None, :]
        for r in range(0, size, 256):  # written band by band: the input is never whole in memory
            rows = np.arange(r, min(r + 256, size))[:, None]
            band = 0.2 + 0.5 * ((rows // 24 + cols // 32) % 2) + 0.02 * rng.standard_normal((len(rows), size))
            src[r:r + len(rows)] = band
        src.flush()
        del src
        src = np.load(os.path.join(folder, "in.npy"), mmap_mode="r")
        dst = np.lib.format.open_memmap(os.path.join(folder, "out.npy"), "w+", np.float32, (size, size))
        with measure_peaks() as peaks:
            if untiled:
                dst[...] = restore.deconvolve(src, k, iterations=iterations, max_memory=None, prior="nonlocal")
            elif tile == 0:  # deconvolve's own choice under its default budget (budget.DEFAULT_MAX_MEMORY)
                restore.deconvolve(src, k, iterations=iterations, out=dst, prior="nonlocal")
            else:
                restore.deconvolve_tiled(src, k, tile=tile, halo=halo, iterations=iterations, out=dst, prior="nonlocal")
        dst.flush()
        sigma = restore.estimate_noise(src[:512, :512])
        plan = tiled.plan_tiles((size, size), k, tile=tile or None, halo=halo, sigma=sigma, prior="nonlocal",
                                max_memory=budget.DEFAULT_MAX_MEMORY if tile == 0 else None)
        untiled = untiled or plan is None
        mode = "untiled" if untiled else f"tile {plan.tile[0]}" + (" (auto, 1 GB)" if tile == 0 else "")
        return {"size": size, "mode": mode, "tiles": 1 if untiled else plan.count,
                "traced_mb": peaks["traced"] / 1e6, "anon_mb": peaks["anon"] / 1e6,
                "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
                "estimate_mb": (plan.peak_bytes if not untiled else
                                tiled._footprint((size, size), k.shape, 1, "nonlocal")) / 1e6,
                "seconds": peaks["seconds"]}


def memory(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"load average at start: {os.getloadavg()[0]:.1f}; tile {args.tile}, {args.iterations} iterations, "
          f"halo {args.halo if args.halo >= 0 else 'default'}, gaussian(1.6) 11x11")
    print("| image | mode | tiles | numpy peak (tracemalloc) MB | anon RSS peak MB | ru_maxrss MB | "
          "estimate (plan.peak_bytes) MB | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for untiled in ([False, True] if args.untiled else [False]):
        for size in sizes:
            cmd = [sys.executable, __file__, "child", *map(str, (size, args.tile, args.iterations, int(untiled),
                                                                 args.halo))]
            row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            print(f"| {row['size']}x{row['size']} | {row['mode']} | {row['tiles']} | {row['traced_mb']:.0f} | "
                  f"{row['anon_mb']:.0f} | {row['maxrss_mb']:.0f} | {row['estimate_mb']:.0f} | "
                  f"{row['seconds']:.1f} |", flush=True)


def _distance_to_cut(plan: tiled.TilePlan) -> np.ndarray:
    """Per pixel: distance to the nearest edge of its window that is not an image border."""
    h, w = plan.shape
    dist = np.full((h, w), 10**6)
    for core in plan.cores():
        r0, r1, c0, c1 = plan.window(core)
        rr = np.arange(core[0], core[1])[:, None]
        cc = np.arange(core[2], core[3])[None, :]
        d = np.full((len(rr), cc.shape[1]), 10**6)
        d = np.minimum(d, rr - r0) if r0 > 0 else d
        d = np.minimum(d, r1 - 1 - rr) if r1 < h else d
        d = np.minimum(d, cc - c0) if c0 > 0 else d
        d = np.minimum(d, c1 - 1 - cc) if c1 < w else d
        dist[core[0]:core[1], core[2]:core[3]] = d
    return dist


def _untiled(blurred: np.ndarray, k: np.ndarray, settings: dict, what: str) -> np.ndarray:
    """The reference: ``deconvolve`` on the whole input, with a header line and its convergence."""
    print(f"load average at start: {os.getloadavg()[0]:.1f}; {what}, {settings}")
    t = time.perf_counter()
    whole, info = restore.deconvolve(blurred, k, full=True, **settings)
    print(f"untiled: {info.result.iterations} iterations ({info.result.stop_reason}), "
          f"{time.perf_counter() - t:.0f} s, sigma {info.sigma:.4f}, default halo {tiled.default_halo(k, info.sigma)}")
    return whole


def seams(args: argparse.Namespace) -> None:
    from scipy.ndimage import convolve
    from skimage import data, util
    truth = util.img_as_float64(data.camera())[128:384, 128:384]
    k = {"gauss1.6": psf.gaussian(1.6), "motion9": psf.motion(9, 30)}[args.kernel]
    blurred = convolve(truth, k, mode="reflect") + args.noise * np.random.default_rng(0).standard_normal(truth.shape)
    settings = dict(iterations=args.iterations or None, dtype=getattr(np, args.dtype), prior="nonlocal")
    whole = _untiled(blurred, k, settings, f"camera 256x256, {args.kernel} {k.shape}, noise {args.noise}, "
                     f"tile {args.tile}")
    print("| halo | tiles | max abs diff | mean abs diff | seconds |")
    print("|---|---|---|---|---|")
    for halo in [None if h == "default" else int(h) for h in args.halos.split(",")]:
        t = time.perf_counter()
        parts, info = restore.deconvolve_tiled(blurred, k, tile=args.tile, halo=halo, full=True, **settings)
        err = np.abs(parts - whole)
        name = f"default {tiled.default_halo(k, info.sigma)}" if halo is None else halo
        print(f"| {name} | {len(info.result)} | {err.max():.2e} | {err.mean():.1e} | {time.perf_counter() - t:.0f} |",
              flush=True)
        if halo == 0:
            dist = _distance_to_cut(tiled.plan_tiles(blurred.shape, k, tile=args.tile, halo=0))
            profile = [f"d>={d}: {err[dist >= d].max():.1e}" for d in (0, 4, 8, 16, 24, 32, 40, 48, 56, 64)
                       if (dist >= d).any()]
            print("  halo 0, max diff at distance >= d from a cut: " + ", ".join(profile), flush=True)


def volume_seams(args: argparse.Namespace) -> None:
    from scipy.ndimage import convolve
    d, h, w = (int(v) for v in args.shape.split("x"))
    k = psf.gaussian3d((0.6, 0.8, 0.8), size=(3, 5, 5))
    zz, yy, xx = np.mgrid[:d, :h, :w]
    base = 0.2 + 0.5 * ((zz // 5 + yy // 12 + xx // 16) % 2) + 0.2 * xx / w
    blurred = convolve(base, k, mode="reflect") + args.noise * np.random.default_rng(1).standard_normal((d, h, w))
    settings = dict(iterations=args.iterations, dtype=np.float64, prior="nonlocal")
    tile = tuple(int(v) for v in args.tile.split("x"))
    whole = _untiled(blurred, k, settings, f"volume {d}x{h}x{w}, gaussian3d {k.shape}, noise {args.noise}, "
                     f"tile {tile}")
    print("| halo (d, h, w) | tiles | max abs diff | max over D slices / H rows / W cols at | seconds |")
    print("|---|---|---|---|---|")
    for text in args.halos.split(","):
        halo = None if text == "default" else tuple(int(v) for v in text.split("x"))
        t = time.perf_counter()
        parts, info = restore.deconvolve_tiled(blurred, k, tile=tile, halo=halo, full=True, **settings)
        err = np.abs(parts - whole)
        at = np.unravel_index(err.argmax(), err.shape)
        name = f"default {tiled.default_halo(k, info.sigma)}" if halo is None else halo
        print(f"| {name} | {len(info.result)} | {err.max():.2e} | {tuple(int(a) for a in at)} | "
              f"{time.perf_counter() - t:.0f} |", flush=True)


def defaults(args: argparse.Namespace) -> None:
    """deconvolve's defaults on a photo, in memory and in the tiles a smaller budget forces: PSNR and differences."""
    from skimage import color, data, transform, util
    truth = util.img_as_float64(color.rgb2gray(getattr(data, args.image)()))
    truth = np.clip(transform.resize(truth, (args.size, args.size), anti_aliasing=True), 0, 1)
    k = psf.gaussian(1.6)
    blurred = restore.blur(truth, k, "reflect") + args.noise * np.random.default_rng(0).standard_normal(truth.shape)
    print(f"load average at start: {os.getloadavg()[0]:.1f}; {args.image} resized to {args.size}x{args.size}, "
          f"gaussian(1.6), noise {args.noise}, deconvolve's defaults")
    t = time.perf_counter()
    whole = restore.deconvolve(blurred, k, max_memory=None, prior="nonlocal")
    t_whole, t = time.perf_counter() - t, time.perf_counter()
    parts, info = restore.deconvolve(blurred, k, max_memory=args.max_memory, full=True, prior="nonlocal")
    t_parts = time.perf_counter() - t
    err = np.abs(parts - whole)
    plan = tiled.plan_tiles(blurred.shape, k, sigma=info.sigma, max_memory=args.max_memory, prior="nonlocal")
    print(f"in memory: {restore.psnr(truth, whole):.3f} dB in {t_whole:.0f} s; max_memory={args.max_memory}: "
          f"{len(info.result)} tiles of {plan.tile}, halo {plan.halo}, {restore.psnr(truth, parts):.3f} dB in "
          f"{t_parts:.0f} s; max abs diff {err.max():.2e}, mean {err.mean():.1e}, 99.9th percentile "
          f"{np.quantile(err, 0.999):.1e}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "child":
        size, tile, iterations, untiled, halo = (int(a) for a in argv[1:6])
        print(json.dumps(_child(size, tile, iterations, bool(untiled), None if halo < 0 else halo)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    m = sub.add_parser("memory")
    m.add_argument("--sizes", default="512,1024,2048,4096")
    m.add_argument("--tile", type=int, default=256, help="0: deconvolve's choice under its 1 GB default budget")
    m.add_argument("--iterations", type=int, default=12)
    m.add_argument("--halo", type=int, default=-1, help="-1: default_halo")
    m.add_argument("--untiled", action="store_true", help="also plain deconvolve (memory grows with the image)")
    s = sub.add_parser("seams")
    s.add_argument("--halos", default="0,8,16,24,46", help="comma-separated; 'default' for default_halo")
    s.add_argument("--kernel", default="gauss1.6", choices=["gauss1.6", "motion9"])
    s.add_argument("--tile", type=int, default=96)
    s.add_argument("--noise", type=float, default=0.01)
    s.add_argument("--iterations", type=int, default=2000, help="0: deconvolve's default (200, or 500)")
    s.add_argument("--dtype", default="float64", help="float64, or float32 (deconvolve's default)")
    v = sub.add_parser("volume-seams")
    v.add_argument("--halos", default="0x0x0,4x6x6,6x10x10,7x6x6,7x10x10,default", help="DxHxW, comma-separated")
    v.add_argument("--shape", default="16x40x40")
    v.add_argument("--tile", default="8x20x20")
    v.add_argument("--noise", type=float, default=0.03)
    v.add_argument("--iterations", type=int, default=1500)
    d = sub.add_parser("defaults")
    d.add_argument("--image", default="astronaut")
    d.add_argument("--size", type=int, default=1024)
    d.add_argument("--noise", type=float, default=0.01)
    d.add_argument("--max-memory", default="150MB", help="the budget that forces tiles")
    args = ap.parse_args(argv)
    {"memory": memory, "seams": seams, "volume-seams": volume_seams, "defaults": defaults}[args.what](args)


if __name__ == "__main__":
    main()
