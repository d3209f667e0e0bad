"""Training the denoiser of restore/denoiser.py with minieye's own Trainer.

Every epoch draws fresh patches (random crops, flips and quarter turns of the training
images) and fresh noise: sigma = MAX_SIGMA u**sigma_power per patch, u uniform in [0, 1],
Gaussian noise of that sd added; the target is the noise itself (divided by RESIDUAL_UNIT).
Adam with a cosine learning-rate schedule over all iterations (after an optional linear
warm-up) minimises the mean squared error.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..checks import check_nonneg_int, check_positive_int, fail, generator
from ..core import Layer
from .denoiser import MAX_SIGMA, RESIDUAL_UNIT, build_denoiser, denoiser_input

__all__ = ["sample_patches", "noisy_pairs", "train_denoiser", "TrainedDenoiser"]


def sample_patches(images: Sequence[np.ndarray], count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random ``size`` x ``size`` crops, each flipped and turned at random.

    Images are picked in proportion to their area. Shapes: images (H_i, W_i) each, with
    H_i, W_i >= size -> (count, size, size) float32.
    """
    areas = np.array([im.shape[0] * im.shape[1] for im in images], dtype=np.float64)
    which = rng.choice(len(images), size=count, p=areas / areas.sum())
    out = np.empty((count, size, size), dtype=np.float32)
    for i, k in enumerate(which):
        im = images[k]
        top = rng.integers(0, im.shape[0] - size + 1)
        left = rng.integers(0, im.shape[1] - size + 1)
        patch = np.rot90(im[top:top + size, left:left + size], k=int(rng.integers(4)))
        out[i] = patch[:, ::-1] if rng.integers(2) else patch
    return out


def noisy_pairs(clean: np.ndarray, rng: np.random.Generator, max_sigma: float = MAX_SIGMA,
                sigma_power: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs and targets; sigma = max_sigma u**sigma_power, u uniform in [0, 1]
    (a power above 1 draws more low noise levels). Shapes: clean (N, H, W) -> (N, 2, H, W), (N, 1, H, W)."""
    sigma = (max_sigma * rng.uniform(0.0, 1.0, size=len(clean)) ** sigma_power).astype(clean.dtype)
    noise = rng.standard_normal(clean.shape).astype(clean.dtype) * sigma[:, None, None]
    return denoiser_input(clean + noise, sigma), (noise / RESIDUAL_UNIT)[:, None]


@dataclass
class TrainedDenoiser:
    """What train_denoiser returns: the network, the per-epoch mean loss, the seconds spent."""

    net: Layer
    epoch_losses: list[float] = field(default_factory=list)
    iteration_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _check_images(images: Sequence[Any], size: int) -> list[np.ndarray]:
    out = []
    for i, im in enumerate(images):
        im = np.asarray(im, dtype=np.float32)
        if im.ndim != 2 or min(im.shape) < size:
            raise fail("train_denoiser", f"(H, W) images at least {size} pixels on each side",
                       f"images[{i}].shape == {im.shape}")
        out.append(im)
    if not out:
        raise fail("train_denoiser", "at least one training image", "images == []")
    return out


def train_denoiser(images: Sequence[Any], *, depth: int = 8, channels: int = 24, patch_size: int = 32,
                   patches_per_epoch: int = 2048, epochs: int = 10, batch_size: int = 16, rate: float = 1e-3,
                   seed: int = 0, progress: bool = False, net: Layer | None = None,
                   on_epoch: Callable[[int, Layer], None] | None = None, sigma_power: float = 1.0,
                   warmup: int = 0) -> TrainedDenoiser:
    """Train a denoiser on grey ``images`` (values in about [0, 1]) with Adam, from ``seed``.

    Args:
        images: (H, W) arrays, each at least ``patch_size`` on each side.
        depth, channels: the network's size (build_denoiser); ignored when ``net`` is given.
        patches_per_epoch, epochs, batch_size: fresh patches every epoch, in mini-batches.
        rate: Adam's learning rate at the start; a cosine schedule takes it to 2% at the end.
        progress: show a tqdm progress bar per epoch.
        net: the network to train (e.g. restore.denoiser_unet.build_unet()); None: build_denoiser's.
        sigma_power: noise levels max_sigma u**sigma_power, u uniform (noisy_pairs).
        on_epoch: called with (epochs done, net) after every epoch (checkpoints).
        warmup: mini-batches over which the rate rises linearly from 10% (times the cosine);
            a continuation from saved weights starts with fresh Adam moments, which a
            warm-up keeps from jolting the weights.

    Returns a TrainedDenoiser whose ``net`` is in evaluation mode.
    """
    from .. import losses, train
    for name, value in (("patch_size", patch_size), ("patches_per_epoch", patches_per_epoch),
                        ("epochs", epochs), ("batch_size", batch_size)):
        check_positive_int(value, "train_denoiser", name)
    check_nonneg_int(warmup, "train_denoiser", "warmup")
    if not sigma_power > 0:
        raise fail("train_denoiser", "sigma_power > 0", f"sigma_power={sigma_power!r}")
    pictures = _check_images(images, patch_size)
    rng = generator(seed, None, "train_denoiser")
    net = build_denoiser(depth, channels, seed=seed) if net is None else net
    inputs, targets = noisy_pairs(sample_patches(pictures, patches_per_epoch, patch_size, rng), rng,
                                  sigma_power=sigma_power)
    problem = train.Problem(net, losses.MSE(), inputs, targets, batch_size=batch_size, rng=seed)
    total = epochs * problem.batches_per_epoch
    schedule = train.Cosine(total, min_factor=0.02)
    search = train.FixedStep(rate, schedule=train.LinearWarmup(warmup) * schedule if warmup else schedule)
    history = train.History()
    bar = train.ProgressBar("denoiser") if progress else None
    trainer = train.Trainer(problem, train.Adam(), search, monitors=[history] + ([bar] if bar else []))
    started = time.perf_counter()
    result = TrainedDenoiser(net)
    for epoch in range(epochs):
        if epoch:  # fresh crops and noise; the trainer keeps Adam's moments and its schedule
            problem.inputs, problem.targets = noisy_pairs(
                sample_patches(pictures, patches_per_epoch, patch_size, rng), rng, sigma_power=sigma_power)
            problem.inputs = (problem.inputs,)
        if bar is not None:
            bar.description = f"denoiser {epoch + 1}/{epochs}"
        stop = trainer.run(epochs=1).stop_reason
        result.epoch_losses.append(float(trainer.epochs.history[-1]["loss"]))
        if on_epoch is not None:
            on_epoch(epoch + 1, net)
        if stop != "epochs":  # Ctrl-C, a non-finite loss: keep what was learned so far
            break
    result.iteration_losses = [r.loss for r in history.records]
    result.seconds = time.perf_counter() - started
    net.eval()
    return result
