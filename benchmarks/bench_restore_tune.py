"""Tuning harness of deconvolve's automatic choices (issue 12), on the tuning set only.

    python benchmarks/bench_restore_tune.py grid  [--workers 2]   # weight grid per case -> out/tune/grid.jsonl
    python benchmarks/bench_restore_tune.py defaults              # the current defaults -> summary
    python benchmarks/bench_restore_tune.py noise                 # Haar vs kernel-aware noise estimates
    python benchmarks/bench_restore_tune.py time                  # 512x512: automatic vs fixed rule, alternating

Cases: every tuning image (benchmarks/tune_images.py; a centre crop of at most 192x192),
three (kernel, noise) pairs each, cycling through six blurs and noise sd 0.0025 / 0.01 /
0.03 (``mode='reflect'``, seeded). "best baseline" is the best of oracle Wiener (periodic
and reflect-padded, balance from a grid scored against the truth) and oracle
Richardson-Lucy (iterations from a grid). ``grid`` runs deconvolve at multiples of the
weight 12 sigma^2 (true sigma), local and non-local, and records the data-side features
the rules are fitted on; ``defaults`` runs ``deconvolve(blurred, kernel, prior='nonlocal')`` (the hand-made
prior, as a user would before 'auto' became the default: bench_prior_tune.py measures that).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from tune_images import tuning_images  # noqa: E402

from minieye import restore  # noqa: E402
from minieye.restore import psf  # noqa: E402

KERNELS = {"box5": lambda: psf.box(5), "gauss1.6": lambda: psf.gaussian(1.6), "gauss3": lambda: psf.gaussian(3.0),
           "disk3": lambda: psf.disk(3), "motion9@30": lambda: psf.motion(9, 30),
           "motion15@110": lambda: psf.motion(15, 110)}
NOISES = (0.0025, 0.01, 0.03)
MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
CROP = 192


def cases(images: dict[str, np.ndarray] | None = None) -> list[dict]:
    """Three (kernel, noise) cases per image of ``images`` (default: the tuning images), cycling as described."""
    out = []
    kernels = list(KERNELS)
    for i, (name, image) in enumerate((tuning_images() if images is None else images).items()):
        h, w = image.shape
        t = image[max(0, (h - CROP) // 2):max(0, (h - CROP) // 2) + CROP, max(0, (w - CROP) // 2):max(0, (w - CROP) // 2) + CROP]
        for j in range(3):
            out.append(dict(image=name, truth=t, kernel=kernels[(2 * i + j) % 6], sigma=NOISES[(i + j) % 3],
                            seed=100 * i + j))
    return out


def blurred_of(case: dict) -> tuple[np.ndarray, np.ndarray]:
    k = KERNELS[case["kernel"]]()
    rng = np.random.default_rng(case["seed"])
    t = case["truth"]
    return restore.blur(t, k, "reflect") + case["sigma"] * rng.standard_normal(t.shape), k


def best_baseline(truth: np.ndarray, y: np.ndarray, k: np.ndarray) -> float:
    def score(x):
        return restore.psnr(truth, np.clip(x, 0, 1))
    balances = np.logspace(-5, 0, 11)
    wp = max(score(restore.wiener(y, k, b, boundary="periodic")) for b in balances)
    wr = max(score(restore.wiener(y, k, b)) for b in balances)
    rl = max(score(restore.richardson_lucy(np.clip(y, 0, None), k, n)) for n in (5, 10, 20, 40, 80, 160))
    return max(wp, wr, rl)


def _mean_gradient(u: np.ndarray) -> float:
    gy, gx = np.diff(u, axis=0)[:, :-1], np.diff(u, axis=1)[:-1]
    return float(np.hypot(gy, gx).mean())


def grid_case(case: dict) -> dict:
    y, k = blurred_of(case)
    truth = case["truth"]
    row = dict(image=case["image"], kernel=case["kernel"], sigma=case["sigma"], shape=list(truth.shape),
               input=restore.psnr(truth, y), baseline=best_baseline(truth, y, k),
               sigma_haar=restore.estimate_noise(y), sigma_kernel=restore.estimate_noise(y, kernel=k))
    start = restore.wiener(y, k, float(np.clip(100 * row["sigma_kernel"] ** 2, 1e-2, 0.1)))
    row["grad_start"], row["grad_blurred"] = _mean_gradient(start), _mean_gradient(y)
    base = 12.0 * case["sigma"] ** 2
    for prior in ("local", "nonlocal"):
        runs = []
        for m in MULTIPLIERS:
            started = time.perf_counter()
            u, info = restore.deconvolve(y, k, noise_sigma=case["sigma"], tv_weight=base * m, prior=prior, full=True)
            runs.append(dict(m=m, psnr=restore.psnr(truth, u), grad=_mean_gradient(u),
                             residual=float(np.mean((restore.blur(u, k, "reflect") - y) ** 2)),
                             seconds=time.perf_counter() - started))
        row[prior] = runs
    return row


# the automatic choice before its smooth ladder could extend above its top (commit 136b0c4)
PREVIOUS = {"EXTEND": {"tv": 0, "smooth": 0}}


def time_512() -> None:
    """Wall and process CPU seconds of 512x512 deconvolutions: fixed rule, previous and current automatic choice."""
    from minieye.kernels.warm import warm_up
    from minieye.restore import regweight
    warm_up()
    images = tuning_images()
    current = {name: getattr(regweight, name) for name in PREVIOUS}
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")
    ratios = []
    for name in ("camera", "astronaut"):
        for kname in ("box5", "gauss1.6", "motion9@30"):
            k = KERNELS[kname]()
            y = restore.blur(images[name], k, "reflect") + 0.01 * np.random.default_rng(0).standard_normal((512, 512))
            line, walls = [], {}
            for label in ("fixed", "previous", "auto"):  # alternating in one process: the machine is shared
                kw = {} if label != "fixed" else dict(tv_weight=12 * restore.estimate_noise(y, kernel=k) ** 2)
                for key, value in (PREVIOUS if label == "previous" else current).items():
                    setattr(regweight, key, value)
                wall, cpu = time.perf_counter(), time.process_time()
                u, info = restore.deconvolve(y, k, full=True, prior="nonlocal", **kw)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                walls[label] = wall
                choose = f", choice {info.choice.seconds:.2f} s" if info.choice else ""
                line.append(f"{label} {restore.psnr(images[name], u):.2f} dB {wall:.2f} s wall, {cpu:.2f} s cpu{choose}")
            ratios.append(walls["auto"] / walls["previous"])
            print(f"{name} {kname} sigma 0.01: " + "; ".join(line), flush=True)
    for key, value in current.items():
        setattr(regweight, key, value)
    print(f"auto / previous wall time: geometric mean {np.exp(np.mean(np.log(ratios))):.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("grid", "defaults", "noise", "time"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default="out/tune")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.mode == "time":
        return time_512()
    todo = cases()
    if args.mode == "noise":
        for low in (False, True):  # each case's own sd, then sd 0.001 (nearly noise-free input)
            ratios = []
            for case in todo:
                y, k = blurred_of(dict(case, sigma=0.001) if low else case)
                true = 0.001 if low else case["sigma"]
                ratios.append((restore.estimate_noise(y) / true, restore.estimate_noise(y, kernel=k) / true))
            r = np.array(ratios)
            for name, col in (("Haar", r[:, 0]), ("kernel-aware", r[:, 1])):
                print(f"{'sd 0.001' if low else 'own sd':8s} {name:13s} estimate / truth: min {col.min():.2f}, max "
                      f"{col.max():.2f}, geometric mean |error| x{np.exp(np.abs(np.log(col)).mean()):.3f}")
        return
    if args.mode == "grid":
        with open(os.path.join(args.out, "grid.jsonl"), "w") as f, ProcessPoolExecutor(args.workers) as pool:
            for row in pool.map(grid_case, todo):
                f.write(json.dumps(row) + "\n")
                f.flush()
                print(row["image"], row["kernel"], row["sigma"], f"best local {max(r['psnr'] for r in row['local']):.2f}"
                      f" baseline {row['baseline']:.2f}", flush=True)
        return
    gains, below_in, times = [], 0, []
    for case in todo:
        y, k = blurred_of(case)
        started = time.perf_counter()
        u, info = restore.deconvolve(y, k, full=True, prior="nonlocal")
        times.append(time.perf_counter() - started)
        p, inp, base = restore.psnr(case["truth"], u), restore.psnr(case["truth"], y), best_baseline(case["truth"], y, k)
        gains.append(p - base)
        below_in += p < inp
        extra = f" {info.family} w/12s^2 {(info.tv_weight or info.choice.weight) / (12 * case['sigma'] ** 2):.2f}" \
            f" nonlocal {info.nonlocal_ran}"
        print(f"{case['image']:20s} {case['kernel']:13s} {case['sigma']:.4f} input {inp:.2f} base {base:.2f} "
              f"ours {p:.2f} gain {p - base:+.2f} sigma^ {info.sigma:.4f}{extra} {times[-1]:.2f}s", flush=True)
    g = np.array(gains)
    print(f"cases {len(g)}: mean gain over best baseline {g.mean():+.3f} dB, worst {g.min():+.2f}, "
          f"below baseline-0.25 {(g < -0.25).sum()}, below input {below_in}, median time {np.median(times):.2f} s")


if __name__ == "__main__":
    main()
