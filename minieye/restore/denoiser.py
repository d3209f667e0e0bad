"""A denoiser trained by minieye: a small residual CNN with a noise-level map.

The network sees two channels, the noisy image ``y`` (working units, about [0, 1]) and a
constant map ``sigma / SIGMA_UNIT``, and predicts the noise, scaled: ``r = net(y, map)``,
``denoised = y - RESIDUAL_UNIT * r``. One network covers sigma in [0, MAX_SIGMA] (the
training range); a noisier image is scaled down so that its noise is MAX_SIGMA, denoised,
and scaled back. Two architectures: the DnCNN-like stack built here,

    Conv3x3(2 -> C), ReLU, (Conv3x3(C -> C), ReLU) x (depth - 2), Conv3x3(C -> 1)

(receptive field ``2 depth + 1`` pixels wide), and the U-Net of denoiser_unet.py.
apply_denoiser reads any such network's receptive radius and size factor
(denoiser_unet.network_reach): images are reflect-padded by that radius so that the
network's zero padding never touches the image, and large images go through in tiles
with that margin. The weights shipped in ``denoiser.minieye`` were trained by
``benchmarks/train_denoiser.py`` (see docs/learned_prior.md) and are loaded on first use.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import as_float_array, check_real, fail
from ..core import Layer
from ..functional.conv import scratch_scope
from ..network import Sequential
from .intensity import check_channels_last, choose_intensity
from .denoiser_inference import infer
from .denoiser_unet import network_reach
from .noise import estimate_noise

__all__ = ["denoise", "build_denoiser", "load_denoiser", "use_weights", "denoiser_input", "apply_denoiser",
           "largest_window", "WEIGHTS_PATH", "MAX_SIGMA", "SIGMA_UNIT", "RESIDUAL_UNIT"]

WEIGHTS_PATH = Path(__file__).with_name("denoiser.minieye")
MAX_SIGMA = 0.1      # noise sd range of the training data (working units)
SIGMA_UNIT = 0.1     # the map channel holds sigma / SIGMA_UNIT, so it spans [0, 1]
RESIDUAL_UNIT = 0.1  # the network predicts noise / RESIDUAL_UNIT: outputs of order 1
TILE = 640           # the largest interior side of the tiles a large image is cut into (512x512 and its ring: one)


def build_denoiser(depth: int = 8, channels: int = 24, dtype: Any = "float32", seed: int = 0) -> Sequential:
    """The untrained network. Shapes: (N, 2, H, W) -> (N, 1, H, W) (zero padding keeps the size)."""
    from .. import layers
    if depth < 2 or channels < 1:
        raise fail("build_denoiser", "depth >= 2 and channels >= 1", f"depth={depth}, channels={channels}")
    stack: list[Layer] = [layers.Conv2D(2, channels, 3, padding=1, dtype=dtype, seed=seed), layers.ReLU()]
    for i in range(depth - 2):
        stack += [layers.Conv2D(channels, channels, 3, padding=1, dtype=dtype, seed=seed + 1 + i), layers.ReLU()]
    last = layers.Conv2D(channels, 1, 3, padding=1, dtype=dtype, seed=seed + depth)
    last.weight.value *= 0.1  # start near "no noise": the first steps do not have to undo a random residual
    return Sequential(*stack, last)


_chosen_weights: list[Path] = [WEIGHTS_PATH]  # what load_denoiser reads: use_weights changes it


def use_weights(path: str | Path | None = None) -> None:
    """Run the network saved at ``path`` (minieye's io format) instead of the shipped one,
    in denoise and deconvolve's learned prior, from the next call on; None: the shipped one again."""
    _chosen_weights[0] = WEIGHTS_PATH if path is None else Path(path)
    load_denoiser.cache_clear()


@functools.lru_cache(maxsize=1)
def load_denoiser() -> Layer:
    """The shipped, trained network, or use_weights' (read once, then cached; evaluation mode)."""
    from ..io import load
    path = _chosen_weights[0]
    if not path.is_file():
        raise FileNotFoundError(f"restore.denoise: the trained weights {path} are missing; "
                                "reinstall minieye or run benchmarks/train_denoiser.py")
    return load(path).eval()


def denoiser_input(noisy: np.ndarray, sigma: Any) -> np.ndarray:
    """Stack images and their noise maps. Shapes: noisy (N, H, W), sigma scalar or (N,) -> (N, 2, H, W)."""
    sigma = np.broadcast_to(np.asarray(sigma, dtype=noisy.dtype).reshape(-1, 1, 1), noisy.shape)
    return np.stack([noisy, sigma / SIGMA_UNIT], axis=1)


def _round_up(n: int, factor: int) -> int:
    """The smallest multiple of ``factor`` that is >= n."""
    return -(-n // factor) * factor


def _tiles(size: int, tile: int, factor: int) -> list[tuple[int, int]]:
    """Near-equal pieces of at most ``tile`` (multiples of ``factor``): no thin last tile whose margins cost more than it."""
    count = -(-size // tile)
    piece = _round_up(-(-size // count), factor)
    return [(a, min(a + piece, size)) for a in range(0, size, piece)]


@scratch_scope()  # the network's scratch (~300 MB at TILE) is freed on return (reused within an hqs)
def apply_denoiser(net: Layer, noisy: np.ndarray, sigma: float, tile: int = TILE,
                   buffers: dict | None = None) -> np.ndarray:
    """Denoise one image in working units with ``sigma`` in [0, MAX_SIGMA]. Shapes: (H, W) -> (H, W).

    The image is reflect-padded by the network's receptive radius (and up to a multiple of
    its downsampling factor) and goes through in near-equal pieces of at most ``tile`` x
    ``tile``, each with that margin and on the same grid of the factor, so the result does
    not depend on ``tile`` (beyond float32 rounding). ``buffers``: a dict kept by a caller that
    denoises images of one size again and again (the network's arrays are reused: denoiser_inference.infer).
    """
    radius, factor = network_reach(net)
    margin, tile = _round_up(max(radius, 1), factor), _round_up(tile, factor)
    h, w = noisy.shape
    size_h, size_w = _round_up(h, factor), _round_up(w, factor)
    pads = ((margin, margin + size_h - h), (margin, margin + size_w - w))
    padded = np.pad(noisy.astype(np.float32), pads, mode="reflect" if min(noisy.shape) > margin else "symmetric")
    out = np.empty((size_h, size_w), dtype=np.float32)
    buffers = {} if buffers is None else buffers  # the tiles of one call share them too
    for top, bottom in _tiles(size_h, tile, factor):
        for left, right in _tiles(size_w, tile, factor):
            window = padded[top:bottom + 2 * margin, left:right + 2 * margin]
            residual = infer(net, denoiser_input(window[None], sigma), buffers)[0, 0]
            out[top:bottom, left:right] = (window - RESIDUAL_UNIT * residual)[margin:-margin, margin:-margin]
    return out[:h, :w]


def largest_window(net: Layer, shape: tuple[int, int], tile: int = TILE) -> tuple[int, int]:
    """The sides of the largest window apply_denoiser runs ``net`` on for an (H, W) image, margins
    included (the network's memory grows with it: restore/memory.py)."""
    radius, factor = network_reach(net)
    margin, tile = _round_up(max(radius, 1), factor), _round_up(tile, factor)
    pieces = [max(b - a for a, b in _tiles(_round_up(n, factor), tile, factor)) for n in shape]
    return pieces[0] + 2 * margin, pieces[1] + 2 * margin


def estimate_denoise_sigma(x: np.ndarray) -> float:
    """The noise sd denoise assumes when none is given: the weak-textured-patch estimate.

    The Haar estimate (estimate_noise's default) reads 2-3x high on fine textures at low
    noise; the patch estimate stays within about 10% there (docs/learned_prior.md).
    Shapes: (H, W) or (H, W, C); images under 16 pixels on a side use the Haar estimate.
    """
    return estimate_noise(x, method="pca" if min(x.shape[:2]) >= 16 else "mad")


def denoise(image: Any, noise_sigma: float | None = None) -> np.ndarray:
    """Remove additive white Gaussian noise with the shipped, minieye-trained network.

    Args:
        image: (H, W) grey or (H, W, C) colour (channels-last; each channel denoised alone),
            in any range (mapped to about [0, 1] by deconvolve's rules: floats in [0, 1] as
            they are, uint8 and 0..255 floats divided by 255, anything else by its range).
        noise_sigma: the noise sd in the image's own units; None: estimated
            (``restore.estimate_noise(image, method="pca")``: estimate_denoise_sigma).

    Returns the denoised image, same shape; floats keep their dtype, integer and bool
    images come back as float64 in their own units (the denoised values are not integers).
    """
    where = "restore.denoise"
    x = as_float_array(image, where, "image", dtype=np.float64)
    if x.ndim not in (2, 3):
        raise fail(where, "an (H, W) or (H, W, C) image", f"image.shape == {x.shape}")
    check_channels_last(x.shape, where, "image")
    if min(x.shape[:2]) < 4:
        raise fail(where, "an image at least 4 pixels on each side", f"image.shape == {x.shape}")
    if not np.isfinite(x).all():
        raise fail(where, "finite pixel values", "NaN or Inf in image")
    sigma = estimate_denoise_sigma(x) if noise_sigma is None else check_real(noise_sigma, where, "noise_sigma")
    if sigma < 0:
        raise fail(where, "noise_sigma >= 0", f"noise_sigma={noise_sigma!r}")
    intensity = choose_intensity(np.asarray(image).dtype, float(x.min()), float(x.max()), sigma, where=where)
    working, s = intensity.to_working(x), sigma / intensity.scale
    squeeze = 1.0 if s <= MAX_SIGMA else MAX_SIGMA / s  # beyond the training range: shrink noise and image alike
    net = load_denoiser()
    planes = working[..., None] if working.ndim == 2 else working
    out = np.stack([apply_denoiser(net, squeeze * planes[..., c], squeeze * s) / squeeze
                    for c in range(planes.shape[-1])], axis=-1)
    out = intensity.to_data(out.reshape(working.shape).astype(np.float64))
    dtype = np.asarray(image).dtype
    return out.astype(dtype) if dtype.kind == "f" else out
