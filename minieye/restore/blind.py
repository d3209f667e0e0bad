"""Blind deconvolution: estimate the image and the blur kernel together, by alternating.

Minimise over the image u and the PSF k (non-negative, summing to one)

    mean((k (*) u - y)^2) + w_u TV(u)

one block at a time, each block a minieye training problem solved with L-BFGS:

1. image step: ``deconvolution_problem`` (learned Source image -> frozen conv with k),
   warm-started from the previous image;
2. kernel step: the kernel is the trainable weight of a Conv2D whose input is the
   strongest 10% of u's *gradients* (the rest zeroed: Cho & Lee's predicted edges) and
   whose target is the gradient images of y (gradients condition the kernel estimate
   far better than raw intensities), under a Box(0, inf) constraint; entries below 10% of the largest are pruned (they
   are mostly fitted noise) and k /= sum(k).

The TV weight starts large (a cartoon image, only strong edges, from which a kernel
can be read) and halves at each round down to the non-blind default, a continuation
that avoids the trivial "no blur" solution. A final non-blind ``deconvolve`` with the
estimated kernel gives the returned image. Single scale: kernels up to ~15 pixels.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import check_positive_int, fail, pair
from ..layers import Conv2D
from .. import losses, train
from .deconvolve import TV_EPS, _as_image, _to_dtype, deconvolution_problem, default_tv_weight, deconvolve
from .noise import estimate_noise
from .psf import gaussian

__all__ = ["blind_deconvolve"]

START_WEIGHT = 4e-3  # TV weight of the first round (a strongly cartoonised image)
PRUNE = 0.1  # kernel entries below this fraction of the largest are set to zero
KEEP = 0.1  # fraction of the strongest image gradients the kernel step trusts


def _grads(x: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (2N, 1, H-1, W-1): horizontal and vertical forward differences."""
    gh = x[:, :-1, 1:] - x[:, :-1, :-1]
    gv = x[:, 1:, :-1] - x[:, :-1, :-1]
    return np.concatenate([gh, gv])[:, None]


def _strong(g: np.ndarray, keep: float) -> np.ndarray:
    """Zero all but the ``keep`` fraction of largest-magnitude gradients (per image)."""
    n = g.shape[0] // 2
    mag = np.sqrt(g[:n] ** 2 + g[n:] ** 2)
    threshold = np.quantile(mag.reshape(n, -1), 1.0 - keep, axis=1).reshape(n, 1, 1, 1)
    mask = np.concatenate([mag >= threshold] * 2)
    return g * mask


def _kernel_step(u: np.ndarray, y: np.ndarray, k: np.ndarray, iterations: int, keep: float) -> np.ndarray:
    """Fit k >= 0 to ``grad y ~ k (*) P`` with P the strongest gradients of u (Cho & Lee's
    predicted edges); u is (N, H + kh - 1, W + kw - 1)."""
    conv = Conv2D(1, 1, k.shape, bias=False, dtype="float64", name="kernel")
    conv.weight.value[0, 0] = k[::-1, ::-1]  # cross-correlation with the flipped PSF
    problem = train.Problem(conv, losses.MSE(), _strong(_grads(u), keep), _grads(y),
                            constraints=[train.Box(conv.weight, 0.0, None)])
    train.Trainer(problem).run(max_iterations=iterations)
    estimate = np.clip(conv.weight.value[0, 0, ::-1, ::-1], 0, None)
    estimate[estimate < PRUNE * estimate.max()] = 0.0  # faint entries are mostly fitted noise
    total = estimate.sum()
    return estimate / total if total > 0 else k


def blind_deconvolve(blurred: Any, kernel_size: Any, *, rounds: int | None = None, iterations: int = 8,
                     initial_kernel: Any = None, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Estimate (image, kernel) from a blurred image alone.

    ``kernel_size``: the PSF's (kh, kw) (odd; an int for square). ``iterations``: rounds
    of alternation (``rounds`` is a synonym); each round runs 30 L-BFGS iterations on the
    image and 30 on the kernel. ``initial_kernel`` defaults to a Gaussian.
    Returns the image (shape and dtype of ``blurred``) and the kernel ((kh, kw),
    float64, non-negative, sum 1, true-convolution convention like psf.py's).
    """
    where = "blind_deconvolve"
    y, out_dtype, scale = _as_image(blurred, where)
    kh, kw = pair(kernel_size, where, "kernel_size", minimum=1)
    if kh % 2 == 0 or kw % 2 == 0:
        raise fail(where, "odd kernel sides", f"kernel_size=({kh}, {kw})")
    if kh > y.shape[0] or kw > y.shape[1]:
        raise fail(where, "a kernel no larger than the image", f"kernel_size=({kh}, {kw}), blurred.shape == {y.shape}")
    rounds = check_positive_int(rounds if rounds is not None else iterations, where, "iterations")
    if initial_kernel is None:
        g = gaussian(max(min(kh, kw) / 6.0, 0.5), size=max(kh, kw))
        c0, c1 = (g.shape[0] - kh) // 2, (g.shape[1] - kw) // 2
        k = g[c0:c0 + kh, c1:c1 + kw]
        k = k / k.sum()
    else:
        k = np.asarray(initial_kernel, dtype=np.float64)
        if k.shape != (kh, kw):
            raise fail(where, f"initial_kernel of shape {(kh, kw)}", f"shape {k.shape}")
        k = np.clip(k, 0, None) / np.clip(k, 0, None).sum()
    sigma = estimate_noise(y)
    planes = y[None] if y.ndim == 2 else np.moveaxis(y, -1, 0)
    rh, rw = kh // 2, kw // 2
    u = np.pad(planes, ((0, 0), (rh, rh), (rw, rw)), mode="symmetric")
    final_weight = default_tv_weight(sigma)
    weight = max(final_weight, START_WEIGHT) * 2.0
    bar = _bar(rounds, progress)
    for _ in range(rounds):
        weight = max(weight / 2.0, final_weight)
        problem, image, _g = deconvolution_problem(planes[:, None], k, u[:, None],
                                                   [(weight, losses.TotalVariation(TV_EPS))], (0.0, 1.0), np.float64)
        train.Trainer(problem).run(max_iterations=30)
        u = image.value.value[:, 0]
        k = _kernel_step(u, planes, k, 30, KEEP)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(tv_weight=f"{weight:.2g}")
    if bar is not None:
        bar.close()
    restored = deconvolve(y, k, noise_sigma=sigma)
    return _to_dtype(restored * scale, out_dtype), k


def _bar(total: int, progress: bool):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc="blind deconvolution")
