"""Noise estimates for restore.denoise on the tuning set only: ratio to the true sigma and the denoised PSNR.

    python benchmarks/noise_tune.py [--size 192] [--levels 0.005,0.01,0.02,0.05]

Crops: the centre --size x --size of every image of tune_images.py (issue 12's tuning set,
none held out), white noise from default_rng([seed, image, level]). Estimators: "haar+quiet"
(denoise's estimate before: estimate_noise, lowered to the quiet-block one), "pca" (the
weak-textured-patch estimate, noise_pca.py), their minimum, and "denoise" (what
restore.denoise uses now). Prints, per estimator, the geometric mean of est / true, the
share of cases off by more than x1.5, and the mean PSNR of restore.denoise given that
estimate against given the true sigma.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import minieye as me  # noqa: E402
from minieye import restore  # noqa: E402
from minieye.restore import denoiser  # noqa: E402
from minieye.restore.noise import haar_diagonal  # noqa: E402
from minieye.restore.noise_pca import weak_texture_sigma  # noqa: E402
from tune_images import tuning_images  # noqa: E402


QUIET_BIAS = 0.8213  # quiet_block_sigma's reading on white noise of sd 1 (mean of 20 draws of 256x256)


def quiet_block_sigma(x: np.ndarray) -> float:
    """The 10th percentile of 8x8-block Haar estimates, over its value on white noise (denoise's former rule)."""
    hh = haar_diagonal(x)
    bh, bw = hh.shape[0] // 8, hh.shape[1] // 8
    blocks = hh[:bh * 8, :bw * 8].reshape(bh, 8, bw, 8).swapaxes(1, 2).reshape(bh * bw, 64)
    return float(np.percentile(np.median(blocks, axis=1), 10) / 0.6744897501960817 / QUIET_BIAS)


def haar_quiet(x: np.ndarray) -> float:
    return min(restore.estimate_noise(x), quiet_block_sigma(x))


ESTIMATORS = {
    "haar+quiet": haar_quiet,
    "pca": weak_texture_sigma,
    "min(haar+quiet, pca)": lambda x: min(haar_quiet(x), weak_texture_sigma(x)),
    "denoise": denoiser.estimate_denoise_sigma,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--levels", default="0.005,0.01,0.02,0.05")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    levels = [float(v) for v in args.levels.split(",")]
    ratios = {name: [] for name in ESTIMATORS}
    gaps = {name: [] for name in ESTIMATORS}
    with me.options(threads=1):
        for i, (name, image) in enumerate(tuning_images().items()):
            h, w = min(args.size, image.shape[0]), min(args.size, image.shape[1])
            top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
            truth = image[top:top + h, left:left + w]
            line = []
            for j, sigma in enumerate(levels):
                noisy = truth + sigma * np.random.default_rng([args.seed, i, j]).standard_normal(truth.shape)
                best = restore.psnr(truth, restore.denoise(noisy, noise_sigma=sigma))
                for est_name, fn in ESTIMATORS.items():
                    est = fn(noisy)
                    ratios[est_name].append(est / sigma)
                    gaps[est_name].append(restore.psnr(truth, restore.denoise(noisy, noise_sigma=est)) - best)
                line.append(" ".join(f"{ratios[e][-1]:.2f}" for e in ESTIMATORS))
            print(f"{name:20s} " + " | ".join(line), flush=True)
    print(f"\nper case: est / true for {', '.join(ESTIMATORS)}; noise levels {levels}")
    for est_name in ESTIMATORS:
        r = np.asarray(ratios[est_name])
        off = np.mean((r > 1.5) | (r < 1 / 1.5))
        print(f"{est_name:22s} geometric mean x{np.exp(np.mean(np.log(r))):.3f}, mean |log| x{np.exp(np.mean(np.abs(np.log(r)))):.3f}, "
              f"off by > x1.5: {100 * off:.0f}%, PSNR vs true sigma {np.mean(gaps[est_name]):+.3f} dB "
              f"(worst {np.min(gaps[est_name]):+.2f})")


if __name__ == "__main__":
    main()
