"""Learning a filter by reverse convolution, then deconvolving (seed 002, Nguyen; its Tables 1 and 2).

The paper filters images with a 3x3 kernel u, learns u back from (image, filtered) by
plain per-pixel SGD at learning rates 1 .. 0.1, deconvolves, and scores with

    MAE0 = mean |filtered - image|,  MAE = mean |deconvolved - image|,  r = |MAE - MAE0| / MAE0.

Here, on bundled scikit-image photos (grey, resized; no download):

- filtered = F.conv2d(image, u), 'valid' (smaller by 2), in the paper's orientation
  (y = sum_ij u_ij x_ij: a cross-correlation, as in CNNs);
- SGD: minieye.train with GradientDescent + FixedStep(gamma/2) on one random pixel per
  step (our MSE is (p - t)^2, the paper's loss 1/2 (p - t)^2, hence gamma/2);
- L-BFGS: ``restore.learn_filter`` (exact least squares, all images in one fit);
- deconvolution: the sharp image as a minieye Source, the learned kernel as a frozen
  Conv2D, MSE to the filtered image, a [0, 1] box, L-BFGS.

Beware the paper's r: it is 0 when the deconvolved image is exactly as far from the
original as the filtered one, and 100% for a perfect recovery (MAE = 0). We print it
beside the paper's, but MAE itself (lower is better) is the measure of recovery.

    python demos/filter_learning_demo.py                      # the paper's three filters
    python demos/filter_learning_demo.py --kernel "1,2,1;2,4,2;1,2,1"   # or a .npy path
"""
from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

import _common as common
import minieye as me
from minieye import functional as F
from minieye import layers, losses, restore, train

# The paper's filters, exactly as printed in seed 002.
FILTERS = {
    "blur": np.ones((3, 3)) / 9.0,
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64),
    "edge": np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], dtype=np.float64),
}
RATES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)
# Table 1 of the paper: (MAE, MAE0, r) per learning rate and filter.
PAPER_TABLE1 = {
    1.0: {"blur": (0.2881, 0.0727, 2.961781), "sharpen": (0.2200, 0.1758, 0.251110), "edge": (0.5563, 0.5482, 0.014685)},
    0.9: {"blur": (0.1988, 0.0727, 1.733775), "sharpen": (0.2232, 0.1758, 0.269450), "edge": (0.5538, 0.5482, 0.010093)},
    0.8: {"blur": (0.3629, 0.0727, 3.989925), "sharpen": (0.2579, 0.1758, 0.466521), "edge": (0.5541, 0.5482, 0.010713)},
    0.7: {"blur": (0.1246, 0.0727, 0.712817), "sharpen": (0.2201, 0.1758, 0.251523), "edge": (0.5558, 0.5482, 0.013837)},
    0.6: {"blur": (0.0950, 0.0727, 0.305891), "sharpen": (0.2329, 0.1758, 0.324306), "edge": (0.5555, 0.5482, 0.013313)},
    0.5: {"blur": (0.1300, 0.0727, 0.787666), "sharpen": (0.2020, 0.1758, 0.148955), "edge": (0.5570, 0.5482, 0.016023)},
    0.4: {"blur": (0.1024, 0.0727, 0.407506), "sharpen": (0.1976, 0.1758, 0.123684), "edge": (0.5588, 0.5482, 0.019245)},
    0.3: {"blur": (0.0707, 0.0727, 0.028118), "sharpen": (0.1782, 0.1758, 0.013286), "edge": (0.5592, 0.5482, 0.019991)},
    0.2: {"blur": (0.0707, 0.0727, 0.028118), "sharpen": (0.1927, 0.1758, 0.095685), "edge": (0.5595, 0.5482, 0.020560)},
    0.1: {"blur": (0.0707, 0.0727, 0.028118), "sharpen": (0.1757, 0.1758, 0.000734), "edge": (0.5595, 0.5482, 0.020584)},
}
# Table 2 of the paper: averages over the learning rates.
PAPER_TABLE2 = {"blur": (0.1514, 0.0727, 1.098372), "sharpen": (0.2100, 0.1758, 0.194525),
                "edge": (0.5570, 0.5482, 0.015904)}
IMAGES = ("astronaut", "camera", "chelsea", "coffee", "coins", "hubble_deep_field", "immunohistochemistry",
          "moon", "retina", "rocket")


def parse_kernel(text: str) -> np.ndarray:
    """``"a,b,c;d,e,f;g,h,i"`` (rows separated by ';') or a path to a .npy file; an argparse type
    (a usage error naming the option for a ragged or non-numeric kernel or a missing file)."""
    try:
        if text.endswith(".npy"):
            kernel = np.asarray(np.load(text, allow_pickle=False), dtype=np.float64)
        else:
            kernel = np.array([[float(v) for v in row.split(",")] for row in text.split(";")])
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: {exc.strerror or exc}") from None
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'a,b,c;d,e,f;g,h,i' (rows of as many numbers) or a .npy "
                                         f"file; got {text!r}") from None
    if kernel.ndim != 2 or not kernel.size or not np.isfinite(kernel).all():
        raise argparse.ArgumentTypeError(f"expected a 2-D kernel of finite numbers; got shape {kernel.shape}")
    return kernel


def learn_sgd(images: np.ndarray, filtered: np.ndarray, size: int, rate: float, steps: int,
              rng: np.random.Generator) -> np.ndarray:
    """The paper's plain SGD: one random pixel per step, fixed learning rate, from a zero kernel."""
    n, _, h, w = filtered.shape
    at = (rng.integers(0, n, steps), rng.integers(0, h, steps), rng.integers(0, w, steps))
    rows, cols = at[1][:, None] + np.arange(size), at[2][:, None] + np.arange(size)
    patches = images[at[0][:, None, None], 0, rows[:, :, None], cols[:, None, :]][:, None]
    targets = filtered[at[0], 0, at[1], at[2]].reshape(steps, 1, 1, 1)
    conv = layers.Conv2D(1, 1, size, bias=False, dtype=np.float64)
    conv.weight.value[...] = 0.0
    problem = train.Problem(conv, losses.MSE(), patches, targets, batch_size=1, rng=rng)
    trainer = train.Trainer(problem, orientation=train.GradientDescent(), line_search=train.FixedStep(rate / 2))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = trainer.run(max_iterations=steps)
    if result.stop_reason == "non_finite" or not np.isfinite(conv.weight.value).all():
        return np.full((size, size), np.nan)  # diverged: the step is too long for these pixel values
    return conv.weight.value[0, 0].copy()


def learn_lbfgs(images: np.ndarray, filtered: np.ndarray, size: int) -> tuple[np.ndarray, str]:
    """``restore.learn_filter`` on all images at once (passed as the channels of one image)."""
    source, target = (np.moveaxis(a[:, 0], 0, -1) for a in (images, filtered))  # (N, 1, H, W) -> (H, W, N)
    return restore.learn_filter(source, target, kernel_size=size), "restore.learn_filter"


def deconvolve(filtered: np.ndarray, kernel: np.ndarray, iterations: int) -> np.ndarray:
    """The image x in [0, 1] with conv2d(x, kernel) closest to ``filtered`` (L-BFGS from a first guess).

    A kernel that keeps the mean (sum 1) leaves the filtered image close to the original,
    so it is the first guess; otherwise (edges) a flat grey.
    """
    k = kernel.shape[0]
    shape = (filtered.shape[0], 1, filtered.shape[2] + k - 1, filtered.shape[3] + k - 1)
    if abs(kernel.sum() - 1.0) < 0.1:
        pad = ((0, 0), (0, 0), (k // 2, k - 1 - k // 2), (k // 2, k - 1 - k // 2))
        start = np.clip(np.pad(filtered, pad, mode="edge"), 0.0, 1.0)
    else:
        start = np.full(shape, 0.5)
    source = layers.Source(value=start, dtype=np.float64)
    conv = layers.Conv2D(1, 1, k, bias=False, dtype=np.float64)
    conv.weight.value[0, 0] = kernel
    conv.freeze()
    problem = train.Problem(me.Sequential(source, conv), losses.MSE(), (), filtered,
                            constraints=[train.Box(source.value, 0.0, 1.0)])
    train.Trainer(problem).run(max_iterations=iterations)
    return source.value.value.copy()


def scores(images: np.ndarray, filtered: np.ndarray, restored: np.ndarray | None, k: int) -> tuple:
    """(MAE, MAE0, r): MAE0 over the 'valid' region the filtered image covers."""
    c = k // 2
    mae0 = float(np.abs(filtered - images[:, :, c:c + filtered.shape[2], c:c + filtered.shape[3]]).mean())
    if restored is None:
        return float("nan"), mae0, float("nan")
    mae = float(np.abs(restored - images).mean())
    return mae, mae0, abs(mae - mae0) / mae0


def relative_error(kernel: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(kernel - truth) / np.linalg.norm(truth))


def run_filter(name: str, truth: np.ndarray, images: np.ndarray, args, rng: np.random.Generator) -> dict:
    k = truth.shape[0]
    filtered = F.conv2d(images, truth[None, None])
    out = {"name": name, "truth": truth, "sgd": {}}
    with common.timer() as t_sgd:
        for rate in args.rates:
            kernel = learn_sgd(images, filtered, k, rate, args.steps, rng)
            finite = bool(np.isfinite(kernel).all())
            restored = deconvolve(filtered, kernel, args.sgd_iterations) if finite else None
            out["sgd"][rate] = (kernel, relative_error(kernel, truth) if finite else float("nan"),
                                scores(images, filtered, restored, k))
    with common.timer() as t:
        kernel, how = learn_lbfgs(images, filtered, k)
    with common.timer() as t_dec:
        restored = deconvolve(filtered, kernel, args.iterations)
    print(f"{name}: SGD at {len(args.rates)} rates (+ deconvolutions) {t_sgd[0]:.1f} s, L-BFGS filter {t[0]:.2f} s, "
          f"deconvolution {t_dec[0]:.1f} s")
    out.update(lbfgs=kernel, how=how, lbfgs_seconds=t[0], lbfgs_error=relative_error(kernel, truth),
               lbfgs_scores=scores(images, filtered, restored, k), filtered=filtered, restored=restored)
    return out


def _pct(v: float) -> str:
    return "diverged" if not np.isfinite(v) else f"{100 * v:.2f}%"


def _rel(v: float) -> str:
    """A relative kernel error: 1e3 and beyond means the SGD run blew up."""
    return "diverged" if not np.isfinite(v) else f"{v:.1e}"


def report(results: list[dict], rates: tuple[float, ...]) -> str:
    rows1 = []
    for rate in rates:
        for res in results:
            paper = PAPER_TABLE1.get(rate, {}).get(res["name"])
            kernel, err, (mae, mae0, r) = res["sgd"][rate]
            p = (f"{paper[0]:.4f}", f"{paper[1]:.4f}", _pct(paper[2])) if paper else ("-", "-", "-")
            rows1.append([f"{rate:g}", res["name"], *p, mae, mae0, _pct(r), _rel(err)])
    head = ["gamma", "filter", "paper MAE", "paper MAE0", "paper r", "our MAE", "our MAE0", "our r",
            "kernel rel. error"]
    text = common.print_table(head, rows1, title="Table 1: per learning rate (SGD, one pixel per step)")
    rows2 = []
    for res in results:
        paper = PAPER_TABLE2.get(res["name"])
        p = (f"{paper[0]:.4f}", f"{paper[1]:.4f}", _pct(paper[2])) if paper else ("-", "-", "-")
        sgd = [v[2] for v in res["sgd"].values() if np.isfinite(v[2][0])]
        mae_sgd = np.mean([s[0] for s in sgd]) if sgd else float("nan")
        mae0 = res["lbfgs_scores"][1]
        mae, _, r = res["lbfgs_scores"]
        rows2.append([res["name"], *p, mae_sgd, f"{len(sgd)}/{len(res['sgd'])}", mae, mae0, _pct(r),
                      _rel(res["lbfgs_error"])])
    head2 = ["filter", "paper MAE", "paper MAE0", "paper r", "SGD mean MAE", "SGD finite", "L-BFGS MAE",
             "MAE0", "L-BFGS r", "L-BFGS kernel rel. error"]
    text += "\n\n" + common.print_table(head2, rows2, title="Table 2: averages (paper) vs ours")
    lines = []
    for res in results:
        best = min(res["sgd"].items(), key=lambda kv: kv[1][1] if np.isfinite(kv[1][1]) else np.inf)
        lines.append(f"\n{res['name']}: truth / L-BFGS ({res['how']}, {res['lbfgs_seconds']:.2f} s) / "
                     f"SGD at gamma={best[0]}")
        for a, b, c in zip(res["truth"], res["lbfgs"], best[1][0]):
            lines.append("  " + "  ".join(f"{v:8.4f}" for v in a) + "  |" + "  ".join(f"{v:8.4f}" for v in b)
                         + "  |" + "  ".join(f"{v:8.4f}" for v in c))
    print("\n".join(lines))
    return text + "\n" + "\n".join(lines)


def figure(results: list[dict], images: np.ndarray, folder) -> None:
    plt = common.pyplot()
    fig, axes = plt.subplots(len(results), 3, figsize=(9, 3 * len(results)), squeeze=False)
    for row, res in zip(axes, results):
        panels = ((images[0, 0], "original", (0, 1)), (res["filtered"][0, 0], f"{res['name']}-filtered", (None, None)),
                  (res["restored"][0, 0], "deconvolved (L-BFGS kernel)", (0, 1)))
        for ax, (img, title, (low, high)) in zip(row, panels):
            ax.imshow(img, cmap="gray", vmin=low, vmax=high)
            ax.set_title(title)
            ax.axis("off")
    common.save_figure(fig, folder, "filters.png")


def main(argv: list[str] | None = None) -> list[dict]:
    p = common.parser("filter_learning", "Learn a 3x3 filter from an image pair and deconvolve (seed 002).")
    p.add_argument("--kernel", type=parse_kernel, help="an extra kernel: 'a,b,c;d,e,f;g,h,i' or a .npy file")
    p.add_argument("--only-kernel", action="store_true", help="run only --kernel, not the paper's filters")
    p.add_argument("--size", type=common.positive_int, nargs=2, default=(72, 100), help="image size h w (paper: 180 250)")
    p.add_argument("--images", type=int, choices=range(1, len(IMAGES) + 1), metavar="N", default=6,
                   help=f"how many bundled images (1 to {len(IMAGES)})")
    p.add_argument("--steps", type=common.positive_int, default=400, help="SGD steps (one pixel each) per learning rate")
    p.add_argument("--iterations", type=common.positive_int, default=60, help="L-BFGS iterations of the main deconvolution")
    p.add_argument("--sgd-iterations", type=common.positive_int, default=15, help="L-BFGS iterations deconvolving SGD kernels")
    p.add_argument("--rates", type=common.positive_float, nargs="+", default=RATES,
                   help="SGD learning rates (default: Table 1's ten, 1 .. 0.1; the paper also ran 0.09 .. 0.01)")
    args = p.parse_args(argv)
    args.rates = tuple(args.rates)
    if args.only_kernel and args.kernel is None:
        p.error("--only-kernel needs --kernel")
    if args.smoke:
        args.size, args.images, args.steps, args.iterations, args.sgd_iterations = (24, 30), 2, 100, 10, 5
        args.rates = (1.0, 0.1)
    folder = common.output_folder(args.out)
    rng = np.random.default_rng(args.seed)
    images = np.stack([common.bundled_image(n, tuple(args.size)) for n in IMAGES[:args.images]])[:, None]
    filters = {} if args.only_kernel else dict(FILTERS)
    if args.kernel is not None:
        filters["custom"] = args.kernel
    with common.timer() as t:
        results = [run_filter(name, u, images, args, rng) for name, u in filters.items()]
    text = report(results, args.rates)
    print(f"\n{len(IMAGES[:args.images])} images of {args.size[0]}x{args.size[1]}, {t[0]:.1f} s")
    common.write_text(folder, "tables.md", text)
    figure(results, images, folder)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
