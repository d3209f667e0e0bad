"""The blind kernel estimate alone, on the tuning split: kernel L1 error and Levin's error ratio.

    python benchmarks/bench_blind_kernel.py                       # 12 tuning cases, 160x160 crops
    python benchmarks/bench_blind_kernel.py --n 16 --size 192 --seed 1
    python benchmarks/bench_blind_kernel.py --start-true          # start at the true kernel: the fixed point's bias

For iterating on ``blind_estimate.estimate_kernel``: the cases are bench_blind.py's (the
same seeded crop, kernel and noise for a given --seed, case number and --size), on the
tuning images only (this script has no held-out option: judge there with
``bench_blind.py --split heldout``). Per case: the kernel's L1 error (bench_blind's
``kernel_error``: sum-1 kernels, best over shifts of up to 2 px), Levin's error ratio of
``deconvolve(blurred, estimate)`` over ``deconvolve(blurred, true kernel)`` (without
blind_deconvolve's verdict, so a wrong kernel shows), and the estimate's wall seconds.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_blind  # noqa: E402
from bench_blind import TUNING, kernel_error  # noqa: E402

from minieye import restore  # noqa: E402
from minieye.restore.blind import FINAL_PRIOR  # noqa: E402
from minieye.restore.blind_estimate import estimate_kernel  # noqa: E402


def make_case(i: int, size: int, seed: int):
    """bench_blind's tuning case i: (label, truth, kernel, noise sd, blurred)."""
    name, label, truth, kernel, noise, blurred = bench_blind.make_case(i, TUNING, size, seed)
    return f"{name}{' colour' if truth.ndim == 3 else ''}, {label}", truth, kernel, noise, blurred


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", default=None, help="comma-separated case numbers (of 0..n-1)")
    ap.add_argument("--start-true", action="store_true", help="start at the true kernel (full resolution)")
    ap.add_argument("--no-ratio", action="store_true", help="kernel error only (skips both deconvolutions)")
    args = ap.parse_args(argv)
    start = "from the true kernel" if args.start_true else "from the pyramid"
    print(f"tuning split, {args.n} cases, crop {args.size}, seed {args.seed}, {start}; "
          f"load average {os.getloadavg()[0]:.1f}")
    rows = []
    for i in ([int(c) for c in args.cases.split(",")] if args.cases else range(args.n)):
        label, truth, kernel, noise, blurred = make_case(i, args.size, args.seed)
        started = time.perf_counter()
        estimate = estimate_kernel(blurred, kernel.shape, initial_kernel=kernel if args.start_true else None)
        seconds = time.perf_counter() - started
        row = {"case": f"{i}: {label}", "noise": noise, "L1": kernel_error(estimate, kernel), "s": seconds,
               "ratio": np.nan}
        if not args.no_ratio:
            sq = lambda x: float(np.mean((np.clip(x, 0, 1) - truth) ** 2))  # noqa: E731
            restored = restore.deconvolve(blurred, estimate, prior=FINAL_PRIOR)
            row["ratio"] = sq(restored) / sq(_reference(blurred, kernel, i, args))
        rows.append(row)
        print(f"{row['case']:<44} noise {noise:.4f}  L1 {row['L1']:.2f}  ratio {row['ratio']:6.2f}  {seconds:5.1f} s",
              flush=True)
    ratios = np.array([r["ratio"] for r in rows])
    print(f"mean L1 {np.mean([r['L1'] for r in rows]):.3f}, median L1 {np.median([r['L1'] for r in rows]):.3f}; "
          f"ratio <= 3: {int((ratios <= 3).sum())}/{len(rows)}, median ratio {np.median(ratios):.2f}, "
          f"geometric mean {np.exp(np.mean(np.log(ratios))):.2f}; estimate seconds total "
          f"{sum(r['s'] for r in rows):.1f}; load average {os.getloadavg()[0]:.1f}")
    return rows


def _reference(blurred: np.ndarray, kernel: np.ndarray, i: int, args) -> np.ndarray:
    """deconvolve with the true kernel, cached on disk (it does not depend on the estimator)."""
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"bench_blind_kernel_{args.seed}_{i}_{args.size}.npy")
    if os.path.exists(path):
        return np.load(path)
    out = restore.deconvolve(blurred, kernel, prior=FINAL_PRIOR)
    np.save(path, out)
    return out


if __name__ == "__main__":
    main()
