"""restore.denoise against oracle-tuned TV (Chambolle) and non-local means, on held-out images.

    python benchmarks/bench_denoise.py                 # 12 images x noise 0.01, 0.02, 0.03, 0.05
    python benchmarks/bench_denoise.py --size 96 --images moon,cell

Images: scikit-image's bundled images that are not in the tuning corpus (issue 12), grey,
floats in [0, 1], centre crops of --size pixels; noise drawn from default_rng([seed, case]).
Baselines get their parameter chosen by the truth (the best PSNR on a grid, so they are
oracles): ``denoise_tv_chambolle`` weight in sigma x 2^(k/2), k = -4..8;
``denoise_nl_means`` (5x5 patches, distance 6, fast mode, told the true sigma) with
h = sigma x (0.4 .. 1.6). minieye runs with the true sigma and with its own estimate (None).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from minieye import restore

HELD_OUT = ("brick", "grass", "gravel", "cell", "moon", "clock", "text", "chelsea", "coffee", "rocket",
            "hubble_deep_field", "retina")
NOISES = (0.01, 0.02, 0.03, 0.05)


def held_out_image(name: str, size: int) -> np.ndarray:
    from skimage import color, data
    image = getattr(data, name)()
    if image.ndim == 3:
        image = color.rgb2gray(image[..., :3])
    image = np.asarray(image, dtype=np.float64)
    image = (image - image.min()) / (image.max() - image.min())
    top, left = max(0, (image.shape[0] - size) // 2), max(0, (image.shape[1] - size) // 2)
    return image[top:top + size, left:left + size]


def oracle(fn, truth: np.ndarray, values) -> tuple[float, float]:
    """The best PSNR of fn(value) over values, and that value."""
    scores = [(restore.psnr(truth, np.clip(fn(v), 0, 1)), v) for v in values]
    return max(scores)


def main() -> None:
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", default=",".join(HELD_OUT))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    names = args.images.split(",")
    rows, seconds = [], {"tv": 0.0, "nlm": 0.0, "minieye": 0.0}
    print(f"{'image':18s} {'sigma':>6s} {'noisy':>6s} {'TV*':>6s} {'NLM*':>6s} {'ours':>6s} {'ours(est)':>9s}")
    for i, name in enumerate(names):
        truth = held_out_image(name, args.size)
        for j, sigma in enumerate(NOISES):
            rng = np.random.default_rng([args.seed, i, j])
            noisy = truth + sigma * rng.standard_normal(truth.shape)
            t = time.perf_counter()
            tv, _ = oracle(lambda w: denoise_tv_chambolle(noisy, weight=w), truth,
                           [sigma * 2 ** (k / 2) for k in range(-4, 9)])
            seconds["tv"] += time.perf_counter() - t
            t = time.perf_counter()
            nlm, _ = oracle(lambda h: denoise_nl_means(noisy, h=h, sigma=sigma, patch_size=5, patch_distance=6,
                                                       fast_mode=True), truth, [sigma * f for f in np.arange(0.4, 1.7, 0.2)])
            seconds["nlm"] += time.perf_counter() - t
            t = time.perf_counter()
            ours = restore.psnr(truth, np.clip(restore.denoise(noisy, noise_sigma=sigma), 0, 1))
            seconds["minieye"] += time.perf_counter() - t
            estimated = restore.psnr(truth, np.clip(restore.denoise(noisy), 0, 1))
            row = (restore.psnr(truth, np.clip(noisy, 0, 1)), tv, nlm, ours, estimated)
            rows.append((sigma,) + row)
            print(f"{name:18s} {sigma:6.3f} " + " ".join(f"{v:6.2f}" for v in row[:4]) + f" {row[4]:9.2f}", flush=True)
    table = np.array(rows)
    print("\nmean PSNR (dB) per noise level:")
    for sigma in NOISES:
        sel = table[table[:, 0] == sigma]
        m = sel[:, 1:].mean(axis=0)
        print(f"  sigma {sigma:.3f}: noisy {m[0]:.2f}  TV* {m[1]:.2f}  NLM* {m[2]:.2f}  ours {m[3]:.2f}  "
              f"ours(est) {m[4]:.2f}  ours - best oracle {np.mean(sel[:, 4] - np.maximum(sel[:, 2], sel[:, 3])):+.2f}")
    gain = table[:, 4] - np.maximum(table[:, 2], table[:, 3])
    print(f"all {len(table)} cases: ours - best oracle baseline {gain.mean():+.2f} dB mean, "
          f"{gain.min():+.2f} worst, below it in {(gain < 0).sum()} cases; "
          f"ours(est) - best {np.mean(table[:, 5] - np.maximum(table[:, 2], table[:, 3])):+.2f} dB mean")
    print(f"seconds: TV grid {seconds['tv']:.1f}, NLM grid {seconds['nlm']:.1f}, minieye {seconds['minieye']:.1f}")


if __name__ == "__main__":
    main()
