"""Blind deconvolution on seeded random cases: Levin's error ratio, PSNR, kernel error, time.

    python benchmarks/bench_blind.py --split heldout              # judge: images never tuned on (16 cases)
    python benchmarks/bench_blind.py --split tuning               # tune: the tuning corpus + synthetic images
    python benchmarks/bench_blind.py --split heldout --n 8 --size 128 --seed 1
    python benchmarks/bench_blind.py --split tuning --slack 4     # a loose bound: frame 8 px wider than the truth
    python benchmarks/bench_blind.py --split tuning --share 0.5   # the hedge: half restoration, half input
    python benchmarks/bench_blind.py --split tuning --auto-frame  # kernel_size=None: the frame chosen from the data

Each case takes a crop (``--size``, default 256, centred) of one image of the split, in
[0, 1] (colour images stay colour), blurs it (``mode='reflect'``) with a seeded kernel,
one of: a random camera shake (``psf.camera_shake``, frame 9-25 px, 60% of cases), a
Gaussian (sigma 1-2.5) or a defocus disk (radius 2-4), and adds Gaussian noise of sd
0.005-0.03 (log-uniform). ``blind_deconvolve(blurred, frame, full=True)`` is told the
true kernel's frame (``--slack s``: s pixels wider on every side; ``--auto-frame``: not told,
``kernel_size=None``). Per case:

- ratio: Levin et al.'s error ratio, the squared error of the returned image over that of
  ``deconvolve(blurred, true kernel, prior=blind.FINAL_PRIOR)``, the prior of blind's own final
  step, 'nonlocal' (both clipped to [0, 1]); <= 3 is Levin's "good";
- PSNR of the blurred input, the blind result and the true-kernel restoration (dB);
- kernel error: the L1 distance of the two sum-1 kernels, minimised over integer shifts
  of up to 2 px (a shift moves the image and is cheap for the ratio to see anyway);
- best frame and evidence: the candidate frame whose kernel predicted the held-out pixels
  best, and its advantage over no real blur in standard errors (blind_select.py);
- structure and residual: the record's gradient energy above the noise's and re-blurred
  residual over the noise sd (blind_verdict.py), and
  whether ``blind_deconvolve`` returned the input (its record's ``accepted`` is False);
- seconds of the blind call: wall (on a shared machine: the load average is printed) and
  in brackets the process's CPU seconds (every thread), which the load disturbs less.

Summary: the share of cases with ratio <= 3, cases below the blurred input, median ratio,
the slowest case. The splits (issue 12's rule: tune only on the tuning corpus):
tuning = scikit-image camera, astronaut, coins, shepp_logan_phantom, smoothed binary_blobs,
PyWavelets ascent and aero, scikit-learn china and flower, and a synthetic scene;
heldout = scikit-image brick, grass, gravel, cell, hubble_deep_field, moon, text, page,
chelsea, coffee, rocket, retina, clock.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from minieye import restore
from minieye.restore import psf
from minieye.restore.blind import FINAL_PRIOR

TUNING = ["camera", "astronaut", "coins", "shepp_logan_phantom", "blobs", "ascent", "aero", "china", "flower",
          "synthetic"]
HELDOUT = ["brick", "grass", "gravel", "cell", "hubble_deep_field", "moon", "text", "page", "chelsea", "coffee",
           "rocket", "retina", "clock"]


def load(name: str) -> np.ndarray:
    """A named image of either split as float64 in [0, 1], (H, W) or (H, W, 3)."""
    from skimage import data, filters
    if name == "blobs":
        return filters.gaussian(data.binary_blobs(512, rng=0).astype(float), 2.0)
    if name == "synthetic":  # rectangles, discs and a ramp: step edges of every orientation
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[:512, :512]
        img = 0.2 + 0.3 * xx / 512
        for _ in range(40):
            cy, cx, r = rng.uniform(0, 512, 2).tolist() + [rng.uniform(10, 60)]
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r if rng.random() < 0.5 else \
                (abs(yy - cy) < r) & (abs(xx - cx) < r * rng.uniform(0.3, 1))
            img[mask] = rng.uniform(0, 1)
        return img
    if name in ("ascent", "aero"):
        import pywt
        x = getattr(pywt.data, name)().astype(np.float64)
        return x / x.max()
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image
        return load_sample_image(f"{name}.jpg") / 255.0
    x = getattr(data, name)()
    return x.astype(np.float64) / (255.0 if x.dtype == np.uint8 else max(float(x.max()), 1e-12))


def make_kernel(rng: np.random.Generator) -> tuple[str, np.ndarray]:
    u = rng.random()
    if u < 0.6:
        size, seed = int(rng.integers(4, 13)) * 2 + 1, int(rng.integers(1 << 30))
        return f"shake({size}, seed {seed})", psf.camera_shake(size, seed)
    if u < 0.8:
        sigma = float(rng.uniform(1.0, 2.5))
        return f"gaussian({sigma:.2f})", psf.gaussian(sigma)
    radius = float(rng.uniform(2.0, 4.0))
    return f"disk({radius:.2f})", psf.disk(radius)


def kernel_error(estimate: np.ndarray, truth: np.ndarray, shift: int = 2) -> float:
    """min over integer shifts (|dy|, |dx| <= shift) of the L1 distance of two sum-1 kernels, centres aligned."""
    n = max(estimate.shape + truth.shape) + 2 * shift
    boards = []
    for k in (estimate, truth):
        b = np.zeros((n, n))
        top, left = (n - k.shape[0]) // 2, (n - k.shape[1]) // 2
        b[top:top + k.shape[0], left:left + k.shape[1]] = k / k.sum()
        boards.append(b)
    return min(float(np.abs(np.roll(boards[0], (dy, dx), axis=(0, 1)) - boards[1]).sum())
               for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1))


def make_case(i: int, names: list[str], size: int, seed: int):
    """Case i, seeded by (seed, i): (image name, kernel label, truth, kernel, noise sd, blurred)."""
    rng = np.random.default_rng([seed, i])
    name = names[i % len(names)]
    image = load(name)
    h, w = min(size, image.shape[0]), min(size, image.shape[1])
    top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    truth = image[top:top + h, left:left + w]
    label, kernel = make_kernel(rng)
    noise = float(np.exp(rng.uniform(np.log(0.005), np.log(0.03))))
    blurred = restore.blur(truth, kernel, mode="reflect") + noise * rng.standard_normal(truth.shape)
    return name, label, truth, kernel, noise, blurred


def run_case(i: int, names: list[str], size: int, seed: int, slack: int = 0, share: float = 1.0,
             auto: bool = False) -> dict:
    name, label, truth, kernel, noise, blurred = make_case(i, names, size, seed)
    h, w = truth.shape[:2]
    sq = lambda x: float(np.mean((np.clip(x, 0, 1) - truth) ** 2))  # noqa: E731
    frame = tuple(min(n + 2 * slack, m - (1 - m % 2)) for n, m in zip(kernel.shape, truth.shape))
    started, cpu = time.perf_counter(), time.process_time()
    result = restore.blind_deconvolve(blurred, None if auto else frame, share=share, full=True)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    tried = {k: v for k, v in result.scores.items() if k not in ("no blur", "minimal blur")}
    reference = restore.deconvolve(blurred, kernel, prior=FINAL_PRIOR)
    return {"case": f"{name} {h}x{w}{' colour' if truth.ndim == 3 else ''}, {label}", "noise": noise,
            "ratio": sq(result.image) / sq(reference), "blurred": restore.psnr(truth, np.clip(blurred, 0, 1)),
            "blind": restore.psnr(truth, np.clip(result.image, 0, 1)), "true": restore.psnr(truth, np.clip(reference, 0, 1)),
            "kernel L1": kernel_error(result.kernel, kernel), "accepted": result.accepted, "share": result.share,
            "residual": result.residual,
            "structure": result.structure, "evidence": result.evidence, "frame": min(tried, key=tried.get) if tried else "-",
            "s": seconds, "cpu": cpu}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("tuning", "heldout"), default="heldout")
    ap.add_argument("--n", type=int, default=16, help="number of cases")
    ap.add_argument("--size", type=int, default=256, help="crop side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", default=None, help="comma-separated case numbers to run (of 0..n-1)")
    ap.add_argument("--slack", type=int, default=0, help="tell blind_deconvolve a frame this many pixels wider on "
                    "each side than the true kernel's (a loose bound, as a user would give)")
    ap.add_argument("--share", type=float, default=1.0, help="blind_deconvolve's share: the restoration's share of "
                    "an accepted result, the rest the input (0.5: the hedge)")
    ap.add_argument("--auto-frame", action="store_true", help="do not tell the frame: kernel_size=None")
    args = ap.parse_args(argv)
    names = TUNING if args.split == "tuning" else HELDOUT
    print(f"split {args.split}, {args.n} cases, crop {args.size}, seed {args.seed}, slack {args.slack}, "
          f"share {args.share:g}{', frame chosen from the data' if args.auto_frame else ''}; "
          f"load average at start {os.getloadavg()[0]:.1f}")
    cols = ["case", "noise", "blurred", "blind", "true kernel", "ratio", "kernel L1", "best frame", "evidence", "structure",
            "residual", "accepted", "s (cpu)"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    rows = []
    numbers = [int(c) for c in args.cases.split(",")] if args.cases else range(args.n)
    for i in numbers:
        r = run_case(i, names, args.size, args.seed, args.slack, args.share, args.auto_frame)
        rows.append(r)
        below = " (below blurred)" if r["blind"] < r["blurred"] - 1e-9 else ""
        verdict = ("yes" if r["share"] == 1 else f"yes, share {r['share']:g}") if r["accepted"] else "no: input returned"
        print(f"| {i}: {r['case']} | {r['noise']:.4f} | {r['blurred']:.2f} | {r['blind']:.2f}{below} | {r['true']:.2f} "
              f"| {r['ratio']:.2f} | {r['kernel L1']:.2f} | {r['frame']} | {r['evidence']:.1f} | {r['structure']:.2f} "
              f"| {r['residual']:.2f} | {verdict} | {r['s']:.1f} ({r['cpu']:.1f}) |",
              flush=True)
    ratios = np.array([r["ratio"] for r in rows])
    below = sum(r["blind"] < r["blurred"] - 1e-9 for r in rows)
    gains = [r["blind"] - r["blurred"] for r in rows]
    print(f"ratio <= 3: {np.mean(ratios <= 3):.0%} ({int((ratios <= 3).sum())}/{len(rows)}), median ratio "
          f"{np.median(ratios):.2f}; below the blurred input: {below}; mean gain over blurred {np.mean(gains):+.2f} dB "
          f"(true kernel {np.mean([r['true'] - r['blurred'] for r in rows]):+.2f} dB); input returned in "
          f"{sum(not r['accepted'] for r in rows)}; "
          f"blind seconds: median {np.median([r['s'] for r in rows]):.1f}, "
          f"max {max(r['s'] for r in rows):.1f} (cpu: median {np.median([r['cpu'] for r in rows]):.1f}, max "
          f"{max(r['cpu'] for r in rows):.1f}); load average at end {os.getloadavg()[0]:.1f}")
    return rows


if __name__ == "__main__":
    main()
