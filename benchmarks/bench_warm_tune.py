"""Tuning prior='auto''s learned part (HQS warm-started from the hand-made restoration), tuning set only.

    python benchmarks/bench_warm_tune.py cache [--weights W] [--workers 2]   # once per network
    python benchmarks/bench_warm_tune.py run --set ITERATIONS=8 --set START_SIGMA=0.05 [--weights W]
    python benchmarks/bench_warm_tune.py summary [--weights W]   # every run so far, and a leave-one-image-out choice

The cases are bench_restore_tune.py's 51 (192x192 crops of the tuning images, six blurs,
sigma 0.0025 / 0.01 / 0.03). ``cache`` runs ``deconvolve(prior='auto', full=True)`` as it
ships and keeps, per case, the hand-made restoration, the learned share t (chosen on the
proxy by the cold-started learned fit, which the warm constants do not touch), the
estimated sigma and the output's PSNR. ``run`` then re-runs only the warm HQS loop with
fields of learned_prior.WARM (ITERATIONS, START_SIGMA, LAMBDA, END) changed and scores the blend ``t warm + (1 - t)
hand-made``, exactly what deconvolve returns (cases with t = 0, or t = 1 where the learned
prior runs alone from the data, keep the cached PSNR). Rows go to
out/warm_tune/<weights>/<settings>.jsonl; ``summary`` prints each run's mean gain over the
hand-made prior and the setting chosen without each image, scored on it (17 folds).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_restore_tune import blurred_of, cases  # noqa: E402

from minieye import restore  # noqa: E402
from minieye.restore import learned_prior  # noqa: E402
from minieye.restore.denoiser import use_weights  # noqa: E402
from minieye.restore.intensity import working_units  # noqa: E402

FIELDS = {"ITERATIONS": "iterations", "START_SIGMA": "start_sigma", "LAMBDA": "lam", "END": "end"}


def _folder(weights: str | None) -> str:
    return os.path.join("out", "warm_tune", os.path.splitext(os.path.basename(weights))[0] if weights else "shipped")


def cache_case(args: tuple[int, dict, str]) -> dict:
    index, case, folder = args
    y, k = blurred_of(case)
    started = time.perf_counter()
    u, info = restore.deconvolve(y, k, full=True)
    seconds = time.perf_counter() - started
    hand = info.parts["handmade"] if info.parts else u if info.family != "learned" else restore.deconvolve(
        y, k, prior="nonlocal")  # t = 1: the learned prior alone, from the data
    np.save(os.path.join(folder, f"hand_{index:02d}.npy"), np.asarray(hand, dtype=np.float64))
    return dict(index=index, image=case["image"], kernel=case["kernel"], sigma=case["sigma"], share=info.learned_share,
                family=info.family, estimated_sigma=info.sigma, auto=restore.psnr(case["truth"], u), seconds=seconds,
                handmade=restore.psnr(case["truth"], hand))


def run_case(args: tuple[dict, dict, dict, str]) -> dict:
    row, case, settings, folder = args
    schedule = learned_prior.WARM._replace(**{FIELDS[n]: v for n, v in settings.items()})
    out = dict(index=row["index"], image=row["image"], share=row["share"], handmade=row["handmade"], blend=row["auto"])
    if not 0.0 < row["share"] < 1.0:  # one prior only: the warm loop does not run
        return out
    y, k = blurred_of(case)
    hand = np.load(os.path.join(folder, f"hand_{row['index']:02d}.npy"))
    box = working_units(y, y.dtype, None, "auto", None, None, "bench")[2]
    started = time.perf_counter()
    warm = learned_prior.hqs(y, k / k.sum(), row["estimated_sigma"], box, start=hand, schedule=schedule)[0]
    t = row["share"]
    gap = (warm - hand).ravel()
    best = float(np.clip(np.dot(gap, (case["truth"] - hand).ravel()) / max(np.dot(gap, gap), 1e-30), 0.0, 1.0))
    out.update(blend=restore.psnr(case["truth"], t * warm + (1 - t) * hand), warm=restore.psnr(case["truth"], warm),
               best_blend=restore.psnr(case["truth"], best * warm + (1 - best) * hand),
               seconds=time.perf_counter() - started)
    return out


def summarize(folder: str) -> None:
    runs = {os.path.basename(p)[:-6]: [json.loads(line) for line in open(p)]
            for p in sorted(glob.glob(os.path.join(folder, "*.jsonl"))) if not p.endswith("cache.jsonl")}
    runs = {label: rows for label, rows in runs.items() if len(rows) == 51}
    if not runs:
        return
    print(f"{'settings':58s} blend gain / worst / worse  warm alone  best-share blend  s per blended case")
    for label, rows in runs.items():
        gain = np.array([r["blend"] - r["handmade"] for r in rows])
        blended = [r for r in rows if "warm" in r]
        print(f"{label:58s} {gain.mean():+.3f} / {gain.min():+.2f} / {(gain < -0.005).sum():2d}   "
              f"{np.mean([r['warm'] - r['handmade'] for r in blended]):+.3f}     "
              f"{np.mean([r['best_blend'] - r['handmade'] for r in blended]):+.3f}   "
              f"{np.median([r['seconds'] for r in blended]):.2f}")
    labels = list(runs)
    gains = np.array([[r["blend"] - r["handmade"] for r in runs[label]] for label in labels])  # (runs, 51)
    images = np.array([r["image"] for r in runs[labels[0]]])
    held_out, picks = np.zeros(gains.shape[1]), []
    for image in np.unique(images):
        fold = images == image
        pick = int(np.argmax(gains[:, ~fold].mean(axis=1)))
        held_out[fold], picks = gains[pick, fold], picks + [labels[pick]]
    print(f"leave-one-image-out: {held_out.mean():+.3f} dB (worst {held_out.min():+.2f}); in-sample best "
          f"{labels[int(np.argmax(gains.mean(axis=1)))]} {gains.mean(axis=1).max():+.3f}; picks "
          + ", ".join(f"{p} x{picks.count(p)}" for p in sorted(set(picks))))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("cache", "run", "summary"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--set", action="append", default=[],
                    help="NAME=VALUE: a field of the warm schedule, " + ", ".join(FIELDS) + " (run)")
    ap.add_argument("--weights", default=None, help="denoiser weights instead of the shipped ones")
    args = ap.parse_args(argv)
    folder = _folder(args.weights)
    os.makedirs(folder, exist_ok=True)
    todo = cases()
    pool = ProcessPoolExecutor(args.workers, initializer=use_weights, initargs=(args.weights,))
    if args.mode == "cache":
        with pool, open(os.path.join(folder, "cache.jsonl"), "w") as f:
            for row in pool.map(cache_case, [(i, c, folder) for i, c in enumerate(todo)]):
                f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    elif args.mode == "run":
        settings = {kv.split("=")[0].removeprefix("WARM_"): float(kv.split("=")[1]) for kv in args.set}
        settings = {n: int(v) if n == "ITERATIONS" else v for n, v in settings.items()}
        label = "-".join(f"{n.lower()}={v}" for n, v in settings.items()) or "shipped"
        rows = [json.loads(line) for line in open(os.path.join(folder, "cache.jsonl"))]
        with pool, open(os.path.join(folder, label + ".jsonl"), "w") as f:
            for row in pool.map(run_case, [(r, todo[r["index"]], settings, folder) for r in rows]):
                f.write(json.dumps(row) + "\n")
    summarize(folder)


if __name__ == "__main__":
    main()
