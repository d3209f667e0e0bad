"""Reproduce the shipped denoiser weights (minieye/restore/denoiser.minieye).

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/train_denoiser.py
    python benchmarks/train_denoiser.py --epochs 2 --out out/denoiser_try.minieye   # a quick try
    python benchmarks/train_denoiser.py --init W --widen 1.3333333333333333 --rate 5e-4 --warmup 1 --seed 2 \
        --out out/denoiser_widened.minieye   # 24 -> 32 channels from trained weights (docs/learned_prior.md)

Trains the U-Net of restore/denoiser_unet.py (24 channels at full size, 2 levels down) on
patches of the tuning corpus only (benchmarks/denoiser_corpus.py, with 8 smooth synthetic
images), from the left 3/4 of every image (the rest validates: benchmarks/denoiser_recipe.py
--weights), noise levels 0.1 u**2, 200 epochs, one thread, seed 0; prints the time,
writes the weights (float32, minieye's io format) and the loss curves
(out/denoiser_loss.json and, with matplotlib, out/denoiser_loss.png).
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
from denoiser_recipe import build_net  # noqa: E402
from minieye.restore.denoiser import WEIGHTS_PATH  # noqa: E402
from minieye.restore.denoiser_training import train_denoiser  # noqa: E402
from minieye.restore.denoiser_unet import widen_unet  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=("dncnn", "unet"), default="unet")
    parser.add_argument("--levels", default="2,2:1,1:1", help="unet: 3x3 layers per lower level down : up : at full size")
    parser.add_argument("--depth", type=int, default=8, help="dncnn: conv layers")
    parser.add_argument("--channels", type=int, default=24)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--patches", type=int, default=2048, help="fresh patches per epoch")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sigma-power", type=float, default=2.0, help="noise levels 0.1 u**power (more low ones above 1)")
    parser.add_argument("--smooth", type=int, default=8, help="extra smooth synthetic images (denoiser_corpus.py)")
    parser.add_argument("--all-pixels", action="store_true",
                        help="train on whole images (default: the left 3/4, the rest validates: denoiser_recipe.py)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(WEIGHTS_PATH), help="where the weights go")
    parser.add_argument("--init", default=None, help="start from these saved weights (a longer run, warm restart)")
    parser.add_argument("--widen", type=float, default=None,
                        help="widen the --init network by this factor first (denoiser_unet.widen_unet, seed --seed)")
    parser.add_argument("--warmup", type=int, default=0,
                        help="epochs over which the rate rises linearly from 10%% (a continuation: Adam starts afresh)")
    parser.add_argument("--checkpoint", type=int, default=10,
                        help="every this many epochs, save the weights to out/denoiser_checkpoint.minieye")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="also keep every checkpoint as out/denoiser_checkpoint_EPOCH.minieye")
    args = parser.parse_args()

    corpus = load_corpus(smooth=args.smooth)
    print(f"corpus: {len(corpus)} images ({', '.join(corpus)})")
    images = list(corpus.values()) if args.all_pixels else train_validation_split(corpus)[0]
    Path("out").mkdir(exist_ok=True)

    def checkpoint(done: int, net: me.core.Layer) -> None:  # a run cut short still leaves weights
        if done % args.checkpoint == 0 or done == args.epochs:
            me.io.save(net, "out/denoiser_checkpoint.minieye")
            if args.keep_checkpoints:
                me.io.save(net, f"out/denoiser_checkpoint_{done:04d}.minieye")

    net = me.io.load(args.init) if args.init else build_net(args)
    if args.widen is not None:
        if not args.init:
            parser.error("--widen needs --init (the trained network to widen)")
        net = widen_unet(net, args.widen, seed=args.seed)
    started = time.perf_counter()
    cpu = time.process_time()
    with me.options(threads=args.threads):
        trained = train_denoiser(images, depth=args.depth, channels=args.channels,
                                 patch_size=args.patch, patches_per_epoch=args.patches, epochs=args.epochs,
                                 batch_size=args.batch, rate=args.rate, seed=args.seed, progress=True,
                                 net=net, on_epoch=checkpoint,
                                 sigma_power=args.sigma_power, warmup=args.warmup * (args.patches // args.batch))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    params = sum(p.value.size for p in trained.net.parameters())
    print(f"{params} parameters; {args.epochs} epochs x {args.patches} patches of {args.patch}x{args.patch}: "
          f"{wall:.0f} s wall, {cpu:.0f} s CPU; final epoch loss {trained.epoch_losses[-1]:.4g}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    me.io.save(trained.net, args.out)
    print(f"weights -> {args.out} ({Path(args.out).stat().st_size / 1e3:.0f} kB)")
    out = Path("out")
    out.mkdir(exist_ok=True)
    curves = {"args": vars(args), "wall_s": wall, "cpu_s": cpu, "epoch_loss": trained.epoch_losses,
              "iteration_loss": trained.iteration_losses}
    (out / "denoiser_loss.json").write_text(json.dumps(curves))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    losses = np.asarray(trained.iteration_losses)
    ax.semilogy(losses, alpha=0.3, label="mini-batch")
    width = max(1, len(losses) // 50)
    ax.semilogy(np.convolve(losses, np.ones(width) / width, mode="valid"), label=f"mean of {width}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("MSE of (noise / 0.1)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "denoiser_loss.png", dpi=100)
    print("loss curves -> out/denoiser_loss.json, out/denoiser_loss.png")


if __name__ == "__main__":
    main()
