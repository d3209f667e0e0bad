"""Blind deconvolution: kernel error and PSNR of restore.blind_deconvolve on fixed, seeded cases.

    python benchmarks/bench_blind.py                              # 6 crops x 2 noise levels + the demo case
    python benchmarks/bench_blind.py --quick                      # the crops at noise 0.002 only, no demo case
    python benchmarks/bench_blind.py --before /tmp/blind_old.py   # also run an older blind.py, side by side

Each case blurs a bundled scikit-image picture (grayscale, [0, 1]) with a known PSF
(``mode='reflect'``), adds Gaussian noise (sd 0.002 or 0.01, ``default_rng(seed)``) and
calls ``blind_deconvolve(blurred, frame)`` with its defaults, ``frame`` being the size
given to it (an upper bound on the PSF's extent; sometimes larger than the PSF, which is
then zero-padded to the frame for the error). Printed per case: the kernel error (L1
distance of two sum-1 kernels: 0 is exact, 2 is disjoint), the PSNR of the blurred
input, of the blind result and of ``deconvolve`` with the true kernel (the ceiling), and
seconds (wall, on whatever else the machine is doing: the load average is printed).

``--before PATH`` loads another version of ``minieye/restore/blind.py`` (e.g. a copy
of an older commit's, ``git show REV:minieye/restore/blind.py > /tmp/blind_old.py``)
as a module of ``minieye.restore`` and runs it on the same inputs.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

import numpy as np

from minieye import restore
from minieye.restore import psf


def _image(name: str) -> np.ndarray:
    from skimage import data
    image = getattr(data, name)().astype(np.float64) / 255.0
    return image[..., 1] if image.ndim == 3 else image  # colour: the green channel


def _streak(length: int, frame: int) -> np.ndarray:
    k = psf.motion(length, 0)
    return np.pad(k, (((frame - k.shape[0]) // 2,) * 2, ((frame - k.shape[1]) // 2,) * 2))


# (label, image, (rows, cols) crop, kernel, frame)
CASES = [
    ("camera, horizontal 7 px streak", "camera", (slice(100, 228), slice(180, 308)), _streak(7, 7), (7, 7)),
    ("camera, motion(7, 30)", "camera", (slice(100, 228), slice(180, 308)), psf.motion(7, 30), None),
    ("camera 96x96, horizontal 7 px streak", "camera", (slice(100, 196), slice(180, 276)), _streak(7, 7), (7, 7)),
    ("astronaut (green), motion(9, 60)", "astronaut", (slice(50, 178), slice(150, 278)), psf.motion(9, 60), None),
    ("coins, disk(2)", "coins", (slice(80, 208), slice(100, 228)), psf.disk(2), None),
    ("astronaut 192x192 (green), motion(11, 135)", "astronaut", (slice(20, 212), slice(120, 312)),
     psf.motion(11, 135), None),
]
DEMO = ("demo: camera 512x512, 5x5 box", "camera", (slice(None), slice(None)), psf.box(5), None)


def load_blind(path: str):
    """``blind_deconvolve`` of another copy of blind.py, imported as a module of minieye.restore."""
    name = "minieye.restore._blind_bench_before"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.blind_deconvolve


def kernel_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    h, w = estimate.shape
    t = np.zeros((max(h, truth.shape[0]), max(w, truth.shape[1])))
    e = np.zeros_like(t)
    for dst, src in ((t, truth), (e, estimate)):
        top, left = (t.shape[0] - src.shape[0]) // 2, (t.shape[1] - src.shape[1]) // 2
        dst[top:top + src.shape[0], left:left + src.shape[1]] = src / src.sum()
    return float(np.abs(e - t).sum())


def run_case(case, noise: float, seed: int, versions: dict) -> dict:
    label, name, crop, kernel, frame = case
    truth = _image(name)[crop]
    frame = kernel.shape if frame is None else frame
    rng = np.random.default_rng(seed)
    blurred = restore.blur(truth, kernel, mode="reflect") + noise * rng.standard_normal(truth.shape)
    score = lambda img: restore.psnr(truth, np.clip(img, 0, 1))  # noqa: E731
    row = {"case": f"{label} ({frame[0]}x{frame[1]})", "noise": noise, "blurred": score(blurred),
           "true kernel": score(restore.deconvolve(blurred, kernel))}
    for tag, blind in versions.items():
        started = time.perf_counter()
        image, estimate = blind(blurred, frame)
        row[tag] = (kernel_error(estimate, kernel), score(image), time.perf_counter() - started)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="noise 0.002 only, no 512x512 demo case")
    ap.add_argument("--before", default=None, help="path of another blind.py to compare with")
    ap.add_argument("--cases", default=None, help="comma-separated case numbers (0-5, 6 = demo) to run")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    versions = {}
    if args.before:
        versions["before"] = load_blind(args.before)
    versions["now"] = restore.blind_deconvolve
    cases = CASES + ([] if args.quick else [DEMO])
    if args.cases:
        cases = [(CASES + [DEMO])[int(i)] for i in args.cases.split(",")]
    noises = (0.002,) if args.quick else (0.002, 0.01)
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    head = "| case | noise | blurred | non-blind, true kernel | " + " | ".join(
        f"{t}: kernel L1 | {t}: blind PSNR | {t}: s" for t in versions) + " |"
    print(head)
    print("|" + "---|" * head.count(" | ") + "---|")
    rows = []
    for case in cases:
        for noise in ((0.01,) if case is DEMO else noises):
            row = run_case(case, noise, args.seed, versions)
            rows.append(row)
            cells = [row["case"], f"{noise:g}", f"{row['blurred']:.2f}", f"{row['true kernel']:.2f}"]
            for t in versions:
                err, p, s = row[t]
                cells += [f"{err:.2f}", f"{p:.2f}" + (" (below blurred)" if p < row["blurred"] else ""), f"{s:.1f}"]
            print("| " + " | ".join(cells) + " |", flush=True)
    for t in versions:
        errs = [r[t][0] for r in rows]
        gains = [r[t][1] - r["blurred"] for r in rows]
        print(f"{t}: mean kernel L1 {np.mean(errs):.3f}, mean gain over blurred {np.mean(gains):+.2f} dB, "
              f"worst {min(gains):+.2f} dB, total {sum(r[t][2] for r in rows):.0f} s")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return rows


if __name__ == "__main__":
    main()
