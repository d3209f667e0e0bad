"""De-blurring as a learning task: MindsEye's 2015 experiment (seed 000), measured.

    python demos/deconvolution_demo.py                    # camera, 5x5 box blur, noise 0.01
    python demos/deconvolution_demo.py --kernel motion --noise 0.005
    python demos/deconvolution_demo.py --image photo.png --kernel psf.npy --blind

The sharp image is the parameter of a Source layer; a frozen convolution blurs it and
L-BFGS fits the blurred photo (minieye.restore.deconvolve). Writes to --out the four
images of the MindsEye post (original, blurred, recovered, re-blurred verification),
comparison.png (Wiener and Richardson-Lucy, each with the best parameter of a small
grid scored against the truth, the MindsEye recipe, minieye's hand-made prior
(prior='nonlocal'), the learned prior (the shipped, minieye-trained denoiser inside
half-quadratic splitting) and the default prior='auto' (the two blended by held-out
prediction), with PSNR/SSIM), loss.png (the hand-made prior's loss curves), and prints
the metrics table. "recovered" is the default's result (the hand-made one with --no-learned).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as common  # noqa: E402

from minieye import losses, restore  # noqa: E402
from minieye.restore import psf  # noqa: E402

KERNELS = {
    "box5": lambda: psf.box(5),
    "gauss": lambda: psf.gaussian(1.6),
    "motion": lambda: psf.motion(9, 30),
    "disk": lambda: psf.disk(3),
}
WIENER_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
RL_GRID = (5, 10, 20, 40)
# MindsEye's recipe (seed 000): fidelity + a penalty on negative values + a maximum-entropy
# goal, no box constraint, learned from a flat grey start (the Wiener start has negative
# pixels, where entropy is undefined). The post gives no weights; these make the terms comparable.
MINDSEYE_RECIPE = [(1e-3, losses.Entropy()), (1.0, losses.NonNegativity())]


def load_image(path: str | None, crop: int | None) -> np.ndarray:
    if path is None:
        image = common.bundled_image("camera")
    else:
        from PIL import Image
        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB" if im.mode in ("RGB", "RGBA", "P") else "L"), dtype=np.float64) / 255.0
    if crop:
        h, w = image.shape[:2]
        top, left = max((h - crop) // 2, 0), max((w - crop) // 2, 0)
        image = image[top:top + crop, left:left + crop]
    return image


def choose_kernel(name: str) -> np.ndarray:
    if name in KERNELS:
        return KERNELS[name]()
    if os.path.exists(name):
        return psf.load_kernel(name)
    raise SystemExit(f"--kernel: expected one of {', '.join(KERNELS)} or a .npy/image file; got {name!r}")


def save_png(image: np.ndarray, folder: Path, name: str) -> Path:
    from PIL import Image
    path = folder / name
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(path)
    return path


def scores(truth: np.ndarray, image: np.ndarray) -> tuple[float, float]:
    clipped = np.clip(image, 0, 1)
    return restore.psnr(truth, clipped), restore.ssim(truth, clipped)


def oracle(truth: np.ndarray, blurred: np.ndarray, kernel: np.ndarray, method: str):
    """The best of a small parameter grid, scored against the truth (an advantage deconvolve lacks)."""
    best = None
    grid = WIENER_GRID if method == "wiener" else RL_GRID
    started = time.perf_counter()
    for value in grid:
        out = restore.wiener(blurred, kernel, value) if method == "wiener" else \
            restore.richardson_lucy(np.clip(blurred, 0, None), kernel, value)
        p = restore.psnr(truth, np.clip(out, 0, 1))
        if best is None or p > best[0]:
            best = (p, value, out)
    return best[2], best[1], time.perf_counter() - started


def main(argv: list[str] | None = None) -> list[dict]:
    p = common.parser("deconvolution", __doc__.splitlines()[0])
    p.add_argument("--image", type=common.existing_file, help="an image file (default: scikit-image's camera, no download)")
    p.add_argument("--kernel", default="box5", help="box5, gauss, motion, disk or a .npy/image PSF (default: box5)")
    p.add_argument("--noise", type=common.non_negative_float, default=0.01, help="sd of the added Gaussian noise (default: 0.01)")
    p.add_argument("--iterations", type=common.positive_int, default=None,
                   help="L-BFGS iterations at most (default: deconvolve's, 200)")
    p.add_argument("--blind", action="store_true", help="also estimate the kernel (blind deconvolution)")
    p.add_argument("--crop", type=common.positive_int, default=None, help="use a centred crop of this size (faster)")
    p.add_argument("--no-mindseye", action="store_true", help="skip the MindsEye-recipe run")
    p.add_argument("--recipe-iterations", type=common.positive_int, default=100,
                   help="L-BFGS iterations of the MindsEye-recipe run (default: 100; it gains little after)")
    p.add_argument("--no-learned", action="store_true",
                   help="skip the runs that use the shipped denoiser (prior='learned' and the default prior='auto')")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.smoke:
        args.crop, args.iterations = args.crop or 48, min(args.iterations or 8, 8)
    folder = common.output_folder(args.out)
    truth = load_image(args.image, args.crop)
    kernel = choose_kernel(args.kernel)
    rng = np.random.default_rng(args.seed)
    blurred = restore.blur(truth, kernel, mode="reflect") + args.noise * rng.standard_normal(truth.shape)
    print(f"image {truth.shape}, kernel {kernel.shape} ({args.kernel}), noise sd {args.noise}, "
          f"estimated {restore.estimate_noise(blurred):.4f}")

    rows: list[dict] = []
    shown: list[np.ndarray] = []  # the image of each row, for the comparison figure

    def record(method: str, image: np.ndarray, seconds: float, note: str = "") -> None:
        psnr, ssim = scores(truth, image)
        rows.append({"method": method, "psnr": psnr, "ssim": ssim, "seconds": seconds, "note": note})
        shown.append(image)

    record("blurred", blurred, 0.0)
    wiener_img, balance, t = oracle(truth, blurred, kernel, "wiener")
    record("Wiener (oracle balance)", wiener_img, t, f"balance={balance:g}")
    rl_img, iters, t = oracle(truth, blurred, kernel, "rl")
    record("Richardson-Lucy (oracle iterations)", rl_img, t, f"iterations={iters}")
    curves = {}
    if not args.no_mindseye:
        recipe_iterations = min(args.recipe_iterations, args.iterations or args.recipe_iterations)
        recipe, info = restore.deconvolve(blurred, kernel, regularizers=MINDSEYE_RECIPE, box=None, init="flat",
                                          iterations=recipe_iterations, full=True, progress=not args.quiet)
        record("MindsEye recipe (entropy + non-negativity)", recipe, info.seconds, f"{info.result.iterations} it")
        curves["MindsEye recipe"] = [r.loss for r in info.result.history]
    recovered, info = restore.deconvolve(blurred, kernel, prior="nonlocal", iterations=args.iterations, full=True,
                                         progress=not args.quiet)
    stage_its = " + ".join(f"{r.iterations} {name}" for name, r in info.stages)
    record("minieye deconvolve, prior='nonlocal' (hand-made)", recovered, info.seconds,
           f"{stage_its} it, sigma {info.sigma:.4f}")
    titles = {"local": "minieye stage 1 (TV + TV2 + box)", "nonlocal": "minieye stage 2 (non-local TV + box)"}
    for name, result in info.stages:  # one panel per stage: their objectives differ
        curves[titles[name]] = [r.loss for r in result.history]
    if not args.no_learned:  # the shipped denoiser as the prior (HQS), and the default: the two blended
        learned, info_l = restore.deconvolve(blurred, kernel, prior="learned", full=True)
        record("minieye deconvolve, prior='learned' (trained denoiser, HQS)", learned, info_l.seconds,
               f"sigma {info_l.sigma:.4f}")
        recovered, info_a = restore.deconvolve(blurred, kernel, full=True)
        choice = info_a.choice
        record("minieye deconvolve, default prior='auto'", recovered, info_a.seconds,
               f"learned share {info_a.learned_share:.2f}" + ("" if choice is None else
               f" (held-out error / sigma^2: learned {choice.learned_score:.3f}, hand-made {choice.handmade_score:.3f})"))
    estimated = None
    if args.blind:
        started = time.perf_counter()
        rounds = max((args.iterations or 240) // 30, 2)
        found = restore.blind_deconvolve(blurred, kernel.shape, iterations=rounds, progress=not args.quiet, full=True)
        blind_img, estimated = found.image, found.kernel
        record("minieye blind_deconvolve", blind_img, time.perf_counter() - started,
               f"kernel error {np.abs(estimated - kernel).sum():.3f} (L1)"
               + ("" if found.accepted else f"; input returned: {found.reason}"))

    reblurred = restore.blur(np.clip(recovered, 0, 1), kernel, mode="reflect")
    for name, image in (("original.png", truth), ("blurred.png", blurred), ("recovered.png", recovered),
                        ("reblurred.png", reblurred)):
        print("wrote", save_png(image, folder, name))
    _comparison_figure(folder, truth, blurred, list(zip(rows, shown)), estimated, kernel,
                       args.blind and found.accepted)
    _loss_figure(folder, curves)
    table = common.print_table(["method", "PSNR (dB)", "SSIM", "seconds", "note"],
                               [[r["method"], r["psnr"], r["ssim"], r["seconds"], r["note"]] for r in rows],
                               digits=3, title="deconvolution of the blurred image (higher is better)")
    common.write_text(folder, "metrics.md", table)
    print(f"re-blurred recovery vs blurred input: PSNR {restore.psnr(blurred, reblurred):.2f} dB")
    return rows


def _comparison_figure(folder: Path, truth, blurred, panels, estimated, kernel, used: bool = True) -> None:
    plt = common.pyplot()
    items = [("original", truth, None)] + [(r["method"], img, r) for r, img in panels]
    if estimated is not None:
        items.append(("estimated kernel (blind)", estimated, None))
    cols = 3 if len(items) <= 6 else 4
    rows = (len(items) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4.3 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, (title, img, r) in zip(np.ravel(axes), items):
        cmap = "gray" if img.ndim == 2 else None
        if title.startswith("estimated kernel"):
            _kernel_panel(fig, ax, kernel, img, used)
            continue
        ax.imshow(np.clip(img, 0, 1), cmap=cmap, vmin=0, vmax=1)
        label = title if r is None else f"{title}\nPSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.3f}"
        ax.set_title(label, fontsize=9)
    fig.tight_layout()
    common.save_figure(fig, folder, "comparison.png")


def _kernel_panel(fig, ax, true_kernel, estimated, used: bool) -> None:
    """The true and the estimated kernel side by side, on one scale (PSF weight), with a colour bar.

    ``used``: whether blind_deconvolve restored with it (else it refused and returned its input).
    """
    gap = np.full((true_kernel.shape[0], 1), np.nan)
    both = np.hstack([true_kernel, gap, estimated])
    cmap = common.pyplot().get_cmap("magma").with_extremes(bad="white")
    shown = ax.imshow(both, cmap=cmap, vmin=0.0, vmax=float(np.nanmax(both)), interpolation="nearest")
    verdict = "" if used else " (refused: input returned)"
    ax.set_title(f"true kernel | estimated kernel{verdict}\nL1 error {np.abs(estimated - true_kernel).sum():.3f}",
                 fontsize=9)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="PSF weight (each sums to 1)")


def _loss_figure(folder: Path, curves: dict) -> None:
    """One panel per run: the objective (MSE + weighted regularizers) per L-BFGS iteration.

    Separate panels because the MindsEye objective includes a negative-entropy term (its
    values are below zero), so the two curves share no useful scale.
    """
    plt = common.pyplot()
    curves = {name: np.asarray(v) for name, v in curves.items() if len(v)}
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), squeeze=False)
    for ax, (name, v) in zip(axes[0], curves.items()):
        ax.plot(np.arange(1, len(v) + 1), v)
        if v.min() > 0:
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("L-BFGS iteration")
        ax.set_ylabel("objective")
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    common.save_figure(fig, folder, "loss.png")


if __name__ == "__main__":
    main()
