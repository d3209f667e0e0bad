"""Tuning harness of the learned prior (issue 17) and of prior='auto', on the tuning set only.

    python benchmarks/bench_prior_tune.py choice  [--workers 2]   # both priors + held-out scores per case
    python benchmarks/bench_prior_tune.py learned --set ITERATIONS=24   # prior='learned' alone, constants changed
    python benchmarks/bench_prior_tune.py learned --weights W   # another denoiser's weights
    python benchmarks/bench_prior_tune.py blend   # prior='auto''s blend against each prior and the truth's blend
    python benchmarks/bench_prior_tune.py warm    # the learned prior's HQS started from the hand-made restoration
    python benchmarks/bench_prior_tune.py blend --images smooth   # the synthetic smooth-microscopy set instead

Cases: bench_restore_tune.py's (every tuning image, centre crop of at most 192x192, three
(blur, noise) pairs each, noise sd 0.0025 / 0.01 / 0.03); ``--images smooth``: the same cycle
over smooth_images.py's synthetic smooth-microscopy images (also tuning data). ``choice`` runs
``deconvolve(prior='auto', full=True)`` and the prior it did not pick, so each row has the
PSNR of the hand-made default ('nonlocal') and of the learned prior, and the held-out
scores (error / sigma^2 on the proxy's hidden pixels) that 'auto' compared; the summary
prints what 'auto' would gain for several margins. ``learned`` runs prior='learned' with
learned_prior.py's constants overridden (``--set NAME=VALUE``, repeatable). Rows go to
out/prior_tune/<mode>[-<settings>].jsonl.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_restore_tune import blurred_of, cases  # noqa: E402
from smooth_images import smooth_images  # noqa: E402

from minieye import restore  # noqa: E402
from minieye.restore import learned_prior, regweight  # noqa: E402
from minieye.restore.denoiser import use_weights  # noqa: E402

MARGINS = (-0.05, -0.02, 0.0, 0.02, 0.05, 0.1)
PARTS_DIR = os.environ.get("PRIOR_TUNE_PARTS")  # blend: also save each case's restorations there (npz)


def _psnr_of(case: dict, y: np.ndarray, k: np.ndarray, **kwargs) -> tuple[float, object, float]:
    started = time.perf_counter()
    u, info = restore.deconvolve(y, k, full=True, **kwargs)
    return restore.psnr(case["truth"], u), info, time.perf_counter() - started


def choice_case(case: dict) -> dict:
    y, k = blurred_of(case)
    row = dict(image=case["image"], kernel=case["kernel"], sigma=case["sigma"], input=restore.psnr(case["truth"], y))
    p, info, row["seconds_auto"] = _psnr_of(case, y, k, prior="auto")
    other, _, row["seconds_other"] = _psnr_of(case, y, k, prior="nonlocal" if info.family == "learned" else "learned")
    row["learned"], row["handmade"] = (p, other) if info.family == "learned" else (other, p)
    c = info.choice
    row["learned_score"] = None if c is None else c.learned_score
    row["handmade_score"] = None if c is None else c.handmade_score
    row["family"] = info.family
    return row


def blend_case(case: dict) -> dict:
    """prior='auto' with both priors always run: each one's PSNR, the held-out blend's, the truth's best blend's."""
    importlib.import_module("minieye.restore.deconvolve").BLEND_SKIP = -1.0  # both priors run, whatever the share
    y, k = blurred_of(case)
    row = dict(image=case["image"], kernel=case["kernel"], sigma=case["sigma"], input=restore.psnr(case["truth"], y))
    p, info, row["seconds"] = _psnr_of(case, y, k, prior="auto")
    if info.parts is None:  # no automatic choice (nearly noise-free): 'auto' is the hand-made prior
        parts = {"handmade": restore.deconvolve(y, k, prior="nonlocal"), "learned": restore.deconvolve(y, k, prior="learned")}
    else:
        parts = info.parts
    hand, learned = (np.asarray(parts[n], dtype=np.float64) for n in ("handmade", "learned"))
    gap = (learned - hand).ravel()
    best = float(np.clip(np.dot(gap, (case["truth"] - hand).ravel()) / max(np.dot(gap, gap), 1e-30), 0.0, 1.0))
    c = info.choice
    row.update(handmade=restore.psnr(case["truth"], hand), learned=restore.psnr(case["truth"], learned), blend=p,
               share=None if c is None else c.held_out_share, applied_share=info.learned_share, best_share=best,
               half=restore.psnr(case["truth"], 0.5 * (hand + learned)),
               best_blend=restore.psnr(case["truth"], best * learned + (1 - best) * hand),
               learned_score=None if c is None else c.learned_score, handmade_score=None if c is None else c.handmade_score)
    if PARTS_DIR and c is not None:  # the restorations and the proxy's arrays, for offline blend rules
        name = f"{case['image']}_{case['kernel']}_{case['sigma']}".replace("@", "at")
        np.savez_compressed(os.path.join(PARTS_DIR, name + ".npz"), truth=case["truth"], handmade=hand,
                            learned=learned, **{f"proxy_{key}": value for key, value in c.proxy.items()})
    if c is not None:  # what the data gives, for share rules (bench_prior_shares.py)
        window = regweight.proxy_window(y.shape)
        gy, gx = np.gradient(hand[window])
        row.update(sigma_est=info.sigma, family=c.family, weight_rule=c.weight / (12 * info.sigma ** 2),
                   nonlocal_helps=c.nonlocal_helps, share_error=c.share_error,
                   tv_score=min(c.scores.values()), smooth_score=min(c.smooth_scores.values(), default=None),
                   contrast=float(np.std(y[window])) / info.sigma,
                   gradient=float(np.mean(np.hypot(gy, gx))) / info.sigma,
                   gap=float(np.sqrt(np.mean((learned - hand)[window] ** 2))) / info.sigma)
    return row


def print_gains(rows: list[dict], names: tuple[str, ...]) -> np.ndarray:
    """Each named column's mean / worst gain over the hand-made prior and its cases below it; returns that prior's."""
    hand = np.array([r["handmade"] for r in rows])
    print(f"{len(rows)} cases, against the hand-made prior ({hand.mean():.3f} dB): mean / worst / cases worse")
    for name in names:
        gain = np.array([r[name] for r in rows]) - hand
        print(f"  {name:10s} {gain.mean():+.3f} / {gain.min():+.2f} / {(gain < 0).sum()}")
    return hand


def summarize_blend(rows: list[dict]) -> None:
    hand = print_gains(rows, ("learned", "blend", "half", "best_blend"))
    pick = np.array([r["learned"] if r["learned_score"] is not None and r["learned_score"] < r["handmade_score"]
                     else r["handmade"] for r in rows]) - hand
    print(f"  pick       {pick.mean():+.3f} / {pick.min():+.2f} / {(pick < 0).sum()}   "
          f"truth's pick {(np.maximum(hand, [r['learned'] for r in rows]) - hand).mean():+.3f}")
    print("  shares: held-out vs the truth's best, correlation "
          f"{np.corrcoef([r['share'] for r in rows], [r['best_share'] for r in rows])[0, 1]:.2f}")


def warm_case(case: dict) -> dict:
    """prior='learned' as it is, and its HQS loop started from the hand-made restoration instead of the data."""
    from minieye.restore.intensity import working_units
    y, k = blurred_of(case)
    hand, info = restore.deconvolve(y, k, prior="nonlocal", full=True)
    _, _, box, _ = working_units(y, y.dtype, None, "auto", None, None, "bench")
    warm = learned_prior.hqs(y, k / k.sum(), info.sigma, box, start=hand)[0]
    cold = restore.deconvolve(y, k, prior="learned")
    row = dict(image=case["image"], kernel=case["kernel"], sigma=case["sigma"])
    for name, u in (("handmade", hand), ("learned", cold), ("warm", warm), ("half", 0.5 * (hand + cold)),
                    ("warm_half", 0.5 * (hand + warm))):
        row[name] = restore.psnr(case["truth"], u)
    return row



def learned_case(args: tuple[dict, dict]) -> dict:
    case, settings = args
    for name, value in settings.items():
        setattr(learned_prior, name, value)
    y, k = blurred_of(case)
    p, _, seconds = _psnr_of(case, y, k, prior="learned")
    return dict(image=case["image"], kernel=case["kernel"], sigma=case["sigma"], learned=p, seconds=seconds)


def summarize_choice(rows: list[dict]) -> None:
    hand = np.array([r["handmade"] for r in rows])
    learned = np.array([r["learned"] for r in rows])
    print(f"{len(rows)} cases: hand-made {hand.mean():.3f} dB, learned {learned.mean():.3f} dB "
          f"(learned better in {(learned > hand).sum()}), oracle pick {np.maximum(hand, learned).mean():.3f} dB")
    scored = [r for r in rows if r["learned_score"] is not None]
    for margin in MARGINS:
        picks = np.array([r["learned"] if r["learned_score"] is not None and
                          r["learned_score"] < r["handmade_score"] - margin else r["handmade"] for r in rows])
        wrong = sum((r["learned_score"] < r["handmade_score"] - margin) != (r["learned"] > r["handmade"])
                    for r in scored)
        print(f"margin {margin:+.2f}: auto {picks.mean():.3f} dB ({(picks - hand).mean():+.3f} over hand-made, "
              f"worst {(picks - hand).min():+.2f}), wrong picks {wrong} of {len(scored)}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("choice", "learned", "blend", "warm"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], help="NAME=VALUE: a learned_prior constant (mode learned)")
    ap.add_argument("--summary", action="store_true", help="only summarise the saved rows")
    ap.add_argument("--weights", default=None, help="denoiser weights to use instead of the shipped ones")
    ap.add_argument("--images", default="tuning", choices=("tuning", "smooth"),
                    help="the tuning images, or the synthetic smooth-microscopy set (smooth_images.py)")
    args = ap.parse_args(argv)
    settings = {kv.split("=")[0]: float(kv.split("=")[1]) for kv in args.set}
    settings = {n: int(v) if v.is_integer() and n in ("ITERATIONS", "CG_STEPS", "MIN_PAD", "ENSEMBLE_LAST", "ENSEMBLE_VIEWS") else v
                for n, v in settings.items()}
    label = args.mode + "".join(f"-{n}={v}" for n, v in settings.items())
    label += f"-{os.path.splitext(os.path.basename(args.weights))[0]}" if args.weights else ""
    label += "-smooth" if args.images == "smooth" else ""
    path = os.path.join("out", "prior_tune", label + ".jsonl")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not args.summary:
        todo = cases(smooth_images() if args.images == "smooth" else None)
        work = {"choice": (choice_case, todo), "blend": (blend_case, todo), "warm": (warm_case, todo),
                "learned": (learned_case, [(c, settings) for c in todo])}[args.mode]
        with open(path, "w") as f, ProcessPoolExecutor(args.workers, initializer=use_weights,
                                                             initargs=(args.weights,)) as pool:
            for row in pool.map(*work):
                f.write(json.dumps(row) + "\n")
                f.flush()
                print(" ".join(f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}"
                               for key, value in row.items()), flush=True)
    rows = [json.loads(line) for line in open(path)]
    if args.mode == "choice":
        summarize_choice(rows)
    elif args.mode in ("blend", "warm"):
        summarize_blend(rows) if args.mode == "blend" else print_gains(rows, ("learned", "warm", "half", "warm_half"))
    else:
        p = np.array([r["learned"] for r in rows])
        print(f"{label}: {len(rows)} cases, mean learned {p.mean():.3f} dB, median time "
              f"{np.median([r['seconds'] for r in rows]):.2f} s")


if __name__ == "__main__":
    main()
