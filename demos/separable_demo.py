"""Separable inverse kernels (Xu et al., as presented in seed 001, eqs. (3)-(6)).

1. Deconvolution by one convolution: the Wiener pseudo-inverse k_dagger of the blur
   (``restore.wiener_inverse_kernel``, 31x31) applied to the blurred photo, in full
   (961 taps per pixel) and as its rank-1/2/3 SVD approximation
   (``restore.separable_network``: r (31 + 31) taps), all as minieye convolutions on a
   reflect-padded image (low ranks also with ``keep_sum=True``, which restores the
   kernel's sum, i.e. the image's brightness). PSNR and time for three blurs (Gaussian, defocus disk,
   motion at 30 degrees), noise sigma 0.01.
2. A learned deconvolution network initialised by k_dagger (Xu et al.'s first stage):
   the rank-3 separable network (sum kept), fine-tuned with L-BFGS on (blurred, sharp) pairs of
   other photos, scored on the held-out photo; against the same network from a random
   start, trained the same number of iterations.

    python demos/separable_demo.py          # writes out/separable/{kernels,restored}.png
"""
from __future__ import annotations

import sys

import numpy as np

import _common as common
import minieye as me
from minieye import layers, losses, restore

SIZE = 61  # the inverse kernel's side (Xu et al. used 1-D kernels of 121 taps)
SNRS = (10.0, 30.0, 100.0, 300.0)  # eq. (3)'s SNR, picked per blur by the full kernel's PSNR
KERNELS = {"gaussian": lambda: restore.psf.gaussian(2.0), "disk": lambda: restore.psf.disk(3.0),
           "motion": lambda: restore.psf.motion(9.0, 30.0)}
TRAIN_IMAGES = ("astronaut", "coffee", "chelsea", "rocket")


def blurred_pair(image: np.ndarray, kernel: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return restore.blur(image, kernel, mode="reflect") + sigma * rng.standard_normal(image.shape)


def padded(images: np.ndarray, r: int) -> np.ndarray:
    """(N, H, W) -> (N, 1, H + 2r, W + 2r), reflected like the blur's own boundary rule."""
    return np.pad(images, ((0, 0), (r, r), (r, r)), mode="symmetric")[:, None]


def full_network(kd: np.ndarray) -> me.Layer:
    """One Conv2D holding the whole 2-D inverse kernel (flipped: conv2d cross-correlates)."""
    conv = layers.Conv2D(1, 1, kd.shape, bias=False, dtype=np.float64)
    conv.weight.value[0, 0] = kd[::-1, ::-1]
    return conv


def timed(net: me.Layer, x: np.ndarray, repeats: int) -> tuple[np.ndarray, float]:
    net(x)  # the first call may compile a kernel
    times = []
    for _ in range(repeats):
        with common.timer() as t:
            y = net(x)
        times.append(t[0])
    return y, float(np.median(times))


def compare_ranks(image: np.ndarray, args, rng: np.random.Generator) -> tuple[list, dict]:
    rows, shown = [], {}
    for name, make in KERNELS.items():
        k = make()
        y = blurred_pair(image, k, args.sigma, rng)
        x = padded(y[None], SIZE // 2)
        tried = {snr: restore.wiener_inverse_kernel(k, snr, SIZE) for snr in SNRS}
        snr = max(SNRS, key=lambda v: restore.psnr(image, full_network(tried[v])(x)[0, 0], data_range=1.0))
        kd = tried[snr]
        args.snr[name] = snr
        restored, seconds = timed(full_network(kd), x, args.repeats)
        rows.append([name, "blurred", "-", restore.psnr(image, y, data_range=1.0), "-", "-", "-"])
        rows.append([name, f"full k_dagger (SNR {snr:g})", SIZE * SIZE,
                     restore.psnr(image, restored[0, 0], data_range=1.0), "-", 1000 * seconds, 0.0])
        shown[name] = {"kernel": k, "kd": kd, "blurred": y, "full": restored[0, 0]}
        for rank in args.ranks:
            parts = restore.separable(kd, rank)
            plain = restore.separable_network(kd, rank, padding="valid", dtype=np.float64)(x)
            net = restore.separable_network(kd, rank, padding="valid", keep_sum=True, dtype=np.float64)
            out, seconds = timed(net, x, args.repeats)
            rows.append([name, f"rank {rank}", rank * 2 * SIZE, restore.psnr(image, plain[0, 0], data_range=1.0),
                         restore.psnr(image, out[0, 0], data_range=1.0), 1000 * seconds,
                         parts.error / np.linalg.norm(kd)])
            shown[name][f"rank {rank}"] = out[0, 0]
    return rows, shown


def fine_tune(image: np.ndarray, args, rng: np.random.Generator) -> list:
    """k_dagger-initialised vs randomly initialised rank-3 networks, trained on other photos."""
    k = KERNELS[args.tune_kernel]()
    size = (64, 64) if args.smoke else (128, 128)
    sharp = np.stack([common.bundled_image(n, size) for n in TRAIN_IMAGES])
    blurred = np.stack([blurred_pair(s, k, args.sigma, rng) for s in sharp])
    x_train = padded(blurred, SIZE // 2)
    x_test = padded(blurred_pair(image, k, args.sigma, rng)[None], SIZE // 2)
    kd = restore.wiener_inverse_kernel(k, args.snr[args.tune_kernel], SIZE)
    rows = []
    for start in ("k_dagger", "random"):
        net = restore.separable_network(kd, 3, padding="valid", keep_sum=True, dtype=np.float64)
        if start == "random":
            for p in net.parameters():
                p.value[...] = rng.standard_normal(p.shape) * 0.1
        before = restore.psnr(image, net(x_test)[0, 0], data_range=1.0)
        fit = common.fit(net, losses.MSE(), x_train, sharp[:, None], args.tune_iterations)
        after = restore.psnr(image, net(x_test)[0, 0], data_range=1.0)
        rows.append([args.tune_kernel, f"rank 3 from {start}", before, after, fit["result"].iterations,
                     f"{fit['seconds']:.1f}"])
    return rows


def figure(shown: dict, image: np.ndarray, folder) -> None:
    plt = common.pyplot()
    names = list(shown)
    fig, axes = plt.subplots(len(names), 4, figsize=(11, 2.9 * len(names)), squeeze=False)
    for row, name in zip(axes, names):
        s = shown[name]
        sv = np.linalg.svd(s["kd"], compute_uv=False)
        row[0].imshow(s["kd"], cmap="RdBu_r", vmin=-abs(s["kd"]).max(), vmax=abs(s["kd"]).max())
        row[0].set_title(f"{name}: k_dagger ({SIZE}x{SIZE})")
        row[1].semilogy(np.arange(1, len(sv) + 1), sv / sv[0], ".-")
        row[1].set_title("singular values / s_1")
        row[1].set_xlim(0, 16)
        row[2].imshow(s["blurred"], cmap="gray", vmin=0, vmax=1)
        row[2].set_title(f"blurred {restore.psnr(image, s['blurred'], data_range=1.0):.1f} dB")
        best = "rank 3"
        row[3].imshow(np.clip(s[best], 0, 1), cmap="gray", vmin=0, vmax=1)
        row[3].set_title(f"{best}, sum kept: {restore.psnr(image, s[best], data_range=1.0):.1f} dB")
        for ax in (row[0], row[2], row[3]):
            ax.axis("off")
    common.save_figure(fig, folder, "separable.png")


def main(argv: list[str] | None = None) -> dict[str, list]:
    p = common.parser("separable", "Full vs separable (SVD) inverse kernels, and k_dagger as initialisation.")
    p.add_argument("--image", default="camera", help="bundled scikit-image picture (default: %(default)s)")
    p.add_argument("--size", type=common.positive_int, default=256, help="side of the test image")
    p.add_argument("--sigma", type=common.non_negative_float, default=0.01, help="noise standard deviation")
    p.add_argument("--repeats", type=common.positive_int, default=5, help="timing repeats (median)")
    p.add_argument("--tune-kernel", default="disk", choices=sorted(KERNELS))
    p.add_argument("--tune-iterations", type=common.positive_int, default=40, help="L-BFGS iterations of fine-tuning")
    args = p.parse_args(argv)
    from skimage import data
    if not callable(getattr(data, args.image, None)) or args.image.startswith("_"):
        p.error(f"--image: expected a scikit-image sample picture (camera, astronaut, coins, ...); got {args.image!r}")
    args.ranks, args.snr = (1, 2, 3, 6), {}
    if args.smoke:
        args.size, args.repeats, args.tune_iterations = 64, 1, 3
    folder = common.output_folder(args.out)
    rng = np.random.default_rng(args.seed)
    image = common.bundled_image(args.image, (args.size, args.size))
    rows, shown = compare_ranks(image, args, rng)
    text = common.print_table(["blur", "deconvolution", "taps/pixel", "PSNR dB", "PSNR dB, sum kept", "ms",
                               "kernel rel. error"], rows,
                              digits=2, title=f"{args.image} {args.size}x{args.size}, noise sigma {args.sigma}, "
                              f"k_dagger {SIZE}x{SIZE}")
    tune = fine_tune(image, args, rng)
    text += "\n\n" + common.print_table(
        ["blur", "network", "PSNR before", "PSNR after", "iterations", "seconds"], tune, digits=2,
        title=f"fine-tuned on {len(TRAIN_IMAGES)} other photos, tested on {args.image}")
    common.write_text(folder, "tables.md", text)
    figure(shown, image, folder)
    return {"ranks": rows, "fine_tune": tune}


if __name__ == "__main__":
    main(sys.argv[1:])
