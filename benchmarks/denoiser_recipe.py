"""Compare denoiser training recipes on the tuning corpus only: train on the left 3/4 of each image, validate on the rest.

    python benchmarks/denoiser_recipe.py --name base --epochs 24
    python benchmarks/denoiser_recipe.py --name p48 --patch 48 --patches 910 --epochs 24
    python benchmarks/denoiser_recipe.py --name smooth8 --smooth 8 --epochs 24

Every image of benchmarks/denoiser_corpus.py is cut at 3/4 of its width: patches come from
the left part only, validation from a crop of the right quarter (train_validation_split).
Validation: mean PSNR gain of the denoised crop over the noisy one, true sigma given, at
sigma 0.005 / 0.01 / 0.02 / 0.03 / 0.05, noise from default_rng([seed, image, level]);
"smooth_gain" is the mean over the smooth, low-contrast images (s1045, the two elevation maps,
binary_blobs, microaneurysms). One thread; one JSON line per run is appended to --log.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import minieye as me  # noqa: E402
from denoiser_corpus import load_corpus, train_validation_split  # noqa: E402
from minieye.restore import psnr  # noqa: E402
from minieye.restore.denoiser import apply_denoiser  # noqa: E402
from minieye.restore.denoiser_training import train_denoiser  # noqa: E402
from minieye.restore.denoiser_unet import build_unet  # noqa: E402

SMOOTH = ("s1045", "jacksboro_fault_dem", "topobathy", "binary_blobs", "microaneurysms")
LEVELS = (0.005, 0.01, 0.02, 0.03, 0.05)


def validate(net, valid: dict[str, np.ndarray], seed: int = 0) -> dict[str, float]:
    """Mean PSNR gain (dB) over all crops and levels, over the smooth ones, and per level."""
    gains: dict[tuple[str, float], float] = {}
    for i, (name, truth) in enumerate(valid.items()):
        for j, sigma in enumerate(LEVELS):
            noisy = truth + sigma * np.random.default_rng([seed, i, j]).standard_normal(truth.shape)
            clean = apply_denoiser(net, noisy, sigma).astype(np.float64)
            gains[name, sigma] = psnr(truth, clean) - psnr(truth, noisy)
    out = {"all": float(np.mean(list(gains.values()))),
           "smooth_gain": float(np.mean([g for (n, _), g in gains.items() if n in SMOOTH]))}
    for sigma in LEVELS:
        out[f"s{sigma}"] = float(np.mean([g for (_, s), g in gains.items() if s == sigma]))
    return out


def build_net(args: argparse.Namespace):
    """None (train_denoiser builds the DnCNN of --depth, --channels) or the U-Net of --channels, --levels."""
    if args.arch == "dncnn":
        return None
    down, up, first = args.levels.split(":")
    return build_unet(args.channels, down=[int(n) for n in down.split(",")], up=[int(n) for n in up.split(",")],
                      first=int(first), seed=args.seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--arch", choices=("dncnn", "unet"), default="dncnn")
    ap.add_argument("--levels", default="2,2:1,1:1", help="unet: 3x3 layers per lower level down : up : at full size")
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--channels", type=int, default=24)
    ap.add_argument("--patch", type=int, default=32)
    ap.add_argument("--patches", type=int, default=2048)
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rate", type=float, default=2e-3)
    ap.add_argument("--smooth", type=int, default=0, help="extra smooth synthetic training images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sigma-power", type=float, default=1.0, help="noise levels 0.1 u**power (more low ones above 1)")
    ap.add_argument("--log", default="out/denoiser_recipe.jsonl")
    ap.add_argument("--weights", default=None, help="validate these saved weights instead of training")
    args = ap.parse_args()
    train, valid = train_validation_split(load_corpus(smooth=args.smooth))
    with me.options(threads=1):
        started, cpu = time.perf_counter(), time.process_time()
        if args.weights:
            net, loss = me.io.load(args.weights).eval(), float("nan")
        else:
            trained = train_denoiser(train, depth=args.depth, channels=args.channels, patch_size=args.patch,
                                     patches_per_epoch=args.patches, epochs=args.epochs, batch_size=args.batch,
                                     rate=args.rate, seed=args.seed, net=build_net(args),
                                     sigma_power=args.sigma_power)
            net, loss = trained.net, trained.epoch_losses[-1]
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        scores = validate(net, valid)
    row = {"name": args.name, **{k: v for k, v in vars(args).items() if k not in ("name", "log")},
           "final_loss": loss, "wall_s": round(wall), "cpu_s": round(cpu), **{k: round(v, 3) for k, v in scores.items()}}
    print(json.dumps(row))
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    with open(args.log, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
