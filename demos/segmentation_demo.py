"""A small DeconvNet (Noh et al., seed 001): per-pixel classes from switch unpooling vs nearest upsampling.

Data (generated here, seeded): 24x24 grey images of one or two shapes (disks, and bars
three times longer than wide) on striped, noisy backgrounds. Shape and background brightness overlap, so
a pixel's class needs its neighbourhood: form and edges, not intensity.

Network (the same for both variants except the up-sampling):

    Conv2D(1->8) ReLU MaxPool2D(2) Conv2D(8->16) ReLU MaxPool2D(2) Conv2D(16->16) ReLU     [6x6]
    UP ConvTranspose2D(16->8) ReLU UP ConvTranspose2D(8->8) ReLU Conv2D(8->3, 1x1)          [24x24 logits]

with UP = MaxUnpool2D paired with the mirrored MaxPool2D (DeconvNet's switches: each
value returns to where its maximum was) or Upsample(2, nearest) (every value copied
to the whole 2x2 block). Per-pixel softmax cross-entropy, Adam on mini-batches of 10
images (full-batch L-BFGS sits for a long time on the "all background" plateau).
Scored on held-out images: pixel accuracy and mean intersection-over-union.

    python demos/segmentation_demo.py          # writes out/segmentation/{predictions,curves}.png
"""
from __future__ import annotations

import sys

import numpy as np

import _common as common
import minieye as me
from minieye import layers, losses, train

CLASSES = ("background", "disk", "bar")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    angle, period = rng.uniform(0, np.pi), rng.uniform(3, 8)
    stripes = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + rng.uniform(0, 6.3))
    return rng.uniform(0.3, 0.7) + rng.uniform(0.1, 0.25) * stripes


def _shape_mask(kind: int, rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    r = rng.uniform(4.0, 7.0)
    cy, cx = rng.uniform(r, size - r, 2)
    if kind == 1:
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    half = (r, r / 3) if rng.random() < 0.5 else (r / 3, r)  # a horizontal or vertical bar
    return (np.abs(yy - cy) <= half[0]) & (np.abs(xx - cx) <= half[1])


def make_data(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 1, size, size) float32 and labels (n, size, size) int64 in [0, 4)."""
    images = np.empty((n, 1, size, size), dtype=np.float32)
    labels = np.zeros((n, size, size), dtype=np.int64)
    for i in range(n):
        image = _background(rng, size)
        for _ in range(rng.integers(1, 3)):
            kind = int(rng.integers(1, len(CLASSES)))
            mask = _shape_mask(kind, rng, size)
            image[mask] = rng.uniform(0.15, 0.85) + 0.02 * rng.standard_normal(mask.sum())
            labels[i][mask] = kind
        images[i, 0] = image + 0.03 * rng.standard_normal((size, size))
    return images, labels


def deconvnet(switches: bool, seed: int, width: int = 8) -> me.Layer:
    """The encoder-decoder above with ``width`` channels in the first block, 2*width deeper."""
    rng = np.random.default_rng(seed)
    a, b = width, 2 * width
    pool1, pool2 = layers.MaxPool2D(2), layers.MaxPool2D(2)

    def up(pool: layers.MaxPool2D) -> me.Layer:
        return layers.MaxUnpool2D(pool) if switches else layers.Upsample(2, mode="nearest")

    conv = dict(padding=1, rng=rng)
    return me.Sequential(
        layers.Conv2D(1, a, 3, **conv), layers.ReLU(), pool1,
        layers.Conv2D(a, b, 3, **conv), layers.ReLU(), pool2,
        layers.Conv2D(b, b, 3, **conv), layers.ReLU(),
        up(pool2), layers.ConvTranspose2D(b, a, 3, **conv), layers.ReLU(),
        up(pool1), layers.ConvTranspose2D(a, a, 3, **conv), layers.ReLU(),
        layers.Conv2D(a, len(CLASSES), 1, rng=rng))


def scores(predicted: np.ndarray, truth: np.ndarray, n_classes: int = len(CLASSES)) -> tuple[float, float]:
    """(pixel accuracy, mean IoU over the classes present in truth or prediction)."""
    accuracy = float(np.mean(predicted == truth))
    ious = []
    for c in range(n_classes):
        union = np.sum((predicted == c) | (truth == c))
        if union:
            ious.append(np.sum((predicted == c) & (truth == c)) / union)
    return accuracy, float(np.mean(ious))


def figure(images, labels, predictions: dict, folder, n: int = 6) -> None:
    plt = common.pyplot()
    n = min(n, len(images))
    rows = [("image", images[:n, 0], "gray"), ("truth", labels[:n], "tab10")]
    rows += [(name, p[:n], "tab10") for name, p in predictions.items()]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.4, len(rows) * 1.45))
    for r, (title, data, cmap) in enumerate(rows):
        for c in range(n):
            kw = {"vmin": 0, "vmax": 9} if cmap == "tab10" else {}
            axes[r, c].imshow(data[c], cmap=cmap, interpolation="nearest", **kw)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(title, fontsize=8)
    fig.suptitle("held-out images: disks orange, bars green")
    common.save_figure(fig, folder, "predictions.png")


def curves(fits: dict, folder) -> None:
    plt = common.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, fit in fits.items():
        it, loss = zip(*fit["train"])
        a.semilogy(it, loss, label=name)
        it, acc = zip(*fit["measured"])
        b.plot(it, acc, label=name)
    a.set_title("training cross-entropy")
    b.set_title("held-out mean IoU")
    for ax in (a, b):
        ax.set_xlabel("Adam iteration")
        ax.legend()
    common.save_figure(fig, folder, "curves.png")


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float]]:
    p = common.parser("segmentation", "DeconvNet-style segmentation: switch unpooling vs nearest upsampling.")
    p.add_argument("--train", type=common.positive_int, default=200, help="training images")
    p.add_argument("--test", type=common.positive_int, default=100, help="held-out images")
    p.add_argument("--iterations", type=common.positive_int, default=1600, help="Adam iterations per model")
    p.add_argument("--batch", type=common.positive_int, default=10, help="images per Adam step")
    p.add_argument("--rate", type=common.positive_float, default=0.01, help="Adam learning rate")
    args = p.parse_args(argv)
    if args.smoke:
        args.train, args.test, args.iterations = 8, 4, 4
    folder = common.output_folder(args.out)
    rng = np.random.default_rng(args.seed)
    size = 24
    train_x, train_y = make_data(args.train, size, rng)
    test_x, test_y = make_data(args.test, size, rng)
    loss = losses.SoftmaxCrossEntropy()
    fits, predictions, results = {}, {}, {}
    for name, switches in (("unpool (switches)", True), ("upsample (nearest)", False)):
        net = deconvnet(switches, args.seed)
        fit = common.fit(net, loss, train_x, train_y, args.iterations, every=max(args.iterations // 10, 1),
                         measure=lambda net: scores(net(test_x).argmax(axis=1), test_y)[1],
                         orientation=train.Adam(), line_search=train.FixedStep(args.rate),
                         batch_size=min(args.batch, args.train), rng=np.random.default_rng(args.seed + 1))
        fits[name] = dict(fit, net=net)
        predictions[name] = net(test_x).argmax(axis=1)
        results[name] = scores(predictions[name], test_y)
        r = fit["result"]
        print(f"{name}: {r.iterations} iterations, {r.evaluations} evaluations, {fit['seconds']:.1f} s "
              f"({r.stop_reason})")
    prior = scores(np.zeros_like(test_y), test_y)
    rows = [[name, float(loss(fits[name]["net"](train_x), train_y)), acc, iou, f"{fits[name]['seconds']:.1f}"]
            for name, (acc, iou) in results.items()]
    rows.append(["all background", float("nan"), *prior, "-"])
    table = common.print_table(["up-sampling", "train loss", "pixel accuracy", "mean IoU", "seconds"], rows,
                               title=f"{args.train} training / {args.test} held-out {size}x{size} images, "
                               f"{args.iterations} Adam iterations")
    common.write_text(folder, "table.md", table)
    figure(test_x, test_y, predictions, folder)
    curves(fits, folder)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
