"""Convolutional vs fully connected autoencoders on scikit-learn's digits (seed 001's homework).

Three autoencoders with the same code size (16 numbers per 8x8 digit), trained with
minieye's L-BFGS on the same 80% of the 1797 digits, scored on the held-out 20%:

- dense:        64 -> 32 -> 16 -> 32 -> 64 (Dense + ReLU, sigmoid output);
- conv+switches: Conv2D(1->8, 3x3) ReLU MaxPool2D(2) Conv2D(8->4) ReLU MaxPool2D(2)  [4x2x2 code]
                 MaxUnpool2D ConvTranspose2D(4->8) ReLU MaxUnpool2D ConvTranspose2D(8->1) sigmoid,
                 the unpools using their pools' switches (DeconvNet);
- conv+nearest: the same with Upsample(2, nearest) in place of each unpool.

The switches are side information: besides the 16 code values the decoder receives
where each maximum was (2 bits for each of 8*4*4 + 4*2*2 = 144 pooled values), so
conv+switches is not a 16-number code; conv+nearest is the fair conv baseline.

    python demos/autoencoder_demo.py        # writes out/autoencoder/{reconstructions,curves}.png
"""
from __future__ import annotations

import sys

import numpy as np

import _common as common
import minieye as me
from minieye import layers, losses


def load_digits(rng: np.random.Generator, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) as (N, 1, 8, 8) float32 in [0, 1], an 80/20 seeded split."""
    from sklearn.datasets import load_digits as sk_digits
    x = sk_digits().images.astype(np.float32)[:, None] / 16.0
    x = x[rng.permutation(len(x))][:n]
    cut = int(0.8 * len(x))
    return x[:cut], x[cut:]


def dense_autoencoder(code: int, seed: int) -> me.Layer:
    rng = np.random.default_rng(seed)
    return me.Sequential(
        layers.Flatten(), layers.Dense(64, 32, dtype=np.float32, rng=rng), layers.ReLU(),
        layers.Dense(32, code, dtype=np.float32, rng=rng), layers.ReLU(),
        layers.Dense(code, 32, dtype=np.float32, rng=rng), layers.ReLU(),
        layers.Dense(32, 64, dtype=np.float32, rng=rng), layers.Sigmoid(), layers.Reshape((1, 8, 8)))


def conv_autoencoder(switches: bool, seed: int) -> me.Layer:
    """Encoder to a 4x2x2 code; the decoder mirrors it with unpooling (switches) or nearest upsampling."""
    rng = np.random.default_rng(seed)
    pool1, pool2 = layers.MaxPool2D(2), layers.MaxPool2D(2)

    def up(pool: layers.MaxPool2D) -> me.Layer:
        return layers.MaxUnpool2D(pool) if switches else layers.Upsample(2, mode="nearest")

    return me.Sequential(
        layers.Conv2D(1, 8, 3, padding=1, dtype=np.float32, rng=rng), layers.ReLU(), pool1,
        layers.Conv2D(8, 4, 3, padding=1, dtype=np.float32, rng=rng), layers.ReLU(), pool2,
        up(pool2), layers.ConvTranspose2D(4, 8, 3, padding=1, dtype=np.float32, rng=rng), layers.ReLU(),
        up(pool1), layers.ConvTranspose2D(8, 1, 3, padding=1, dtype=np.float32, rng=rng), layers.Sigmoid())


def count(net: me.Layer) -> int:
    return sum(p.size for p in net.parameters())


def figure(models: dict, test: np.ndarray, folder, n: int = 10) -> None:
    plt = common.pyplot()
    rows = [("original", test[:n])] + [(name, m["net"](test[:n])) for name, m in models.items()]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9, len(rows) * 1.0))
    for r, (title, images) in enumerate(rows):
        for c in range(n):
            axes[r, c].imshow(images[c, 0], cmap="gray_r", vmin=0, vmax=1)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("held-out digits and their reconstructions (code size 16)")
    common.save_figure(fig, folder, "reconstructions.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, m in models.items():
        it, loss = zip(*m["fit"]["train"])
        line, = ax.semilogy(it, loss, label=f"{name} train")
        it, val = zip(*m["fit"]["measured"])
        ax.semilogy(it, val, "--", color=line.get_color(), label=f"{name} held-out")
    ax.set_xlabel("L-BFGS iteration")
    ax.set_ylabel("MSE")
    ax.legend(fontsize=8)
    common.save_figure(fig, folder, "curves.png")


def main(argv: list[str] | None = None) -> dict[str, dict]:
    p = common.parser("autoencoder", "Conv vs dense autoencoders on sklearn digits.")
    p.add_argument("--iterations", type=common.positive_int, default=100, help="L-BFGS iterations per model")
    args = p.parse_args(argv)
    n, iterations = (120, 5) if args.smoke else (None, args.iterations)
    folder = common.output_folder(args.out)
    train_x, test_x = load_digits(np.random.default_rng(args.seed), n)
    builders = {"dense": lambda: dense_autoencoder(16, args.seed),
                "conv+switches": lambda: conv_autoencoder(True, args.seed),
                "conv+nearest": lambda: conv_autoencoder(False, args.seed)}
    mse = losses.MSE()
    models = {}
    for name, build in builders.items():
        net = build()
        fit = common.fit(net, mse, train_x, train_x, iterations, every=max(iterations // 10, 1),
                         measure=lambda net: mse(net(test_x), test_x))
        models[name] = {"net": net, "fit": fit, "test": fit["measured"][-1][1]}
        print(f"{name}: {fit['result'].iterations} iterations, {fit['result'].evaluations} evaluations in "
              f"{fit['seconds']:.1f} s ({fit['result'].stop_reason})")
    mean_image = float(np.mean((test_x - train_x.mean(axis=0)) ** 2))
    rows = [[name, count(m["net"]), "16" if name != "conv+switches" else "16 + switches",
             m["fit"]["train"][-1][1], m["test"], f"{m['fit']['seconds']:.1f}"] for name, m in models.items()]
    rows.append(["mean training digit", 0, "0", float(np.mean((train_x - train_x.mean(axis=0)) ** 2)),
                 mean_image, "-"])
    table = common.print_table(["model", "parameters", "code", "train MSE", "held-out MSE", "seconds"], rows,
                               digits=5, title=f"{len(train_x)} training / {len(test_x)} held-out digits, "
                               f"{iterations} L-BFGS iterations")
    common.write_text(folder, "table.md", table)
    figure(models, test_x, folder)
    return {name: {"test_mse": m["test"], "train_mse": m["fit"]["train"][-1][1]} for name, m in models.items()}


if __name__ == "__main__":
    main(sys.argv[1:])
