"""Helpers of volume deconvolution ((D, H, W) grayscale stacks): the noise level and the Wiener start."""
from __future__ import annotations

import numpy as np

from .noise import estimate_noise

__all__ = ["volume_noise", "wiener_volume"]


def volume_noise(y: np.ndarray) -> float:
    """sigma of a (D, H, W) volume: the median of ``estimate_noise`` over its (H, W) slices."""
    return float(np.median([estimate_noise(plane) for plane in y]))


def wiener_volume(y: np.ndarray, k: np.ndarray, balance: float) -> np.ndarray:
    """Wiener-Hunt on a (D, H, W) volume (3-D Laplacian regulariser), reflect-padded by the kernel's sides.

    The start for volume deconvolution, as ``baselines.wiener`` is for images.
    Shapes: y (D, H, W), k (kd, kh, kw) -> (D, H, W).
    """
    q = np.pad(y, [(n, n) for n in k.shape], mode="symmetric")
    placed = np.zeros(q.shape)
    placed[:k.shape[0], :k.shape[1], :k.shape[2]] = k
    h = np.fft.rfftn(np.roll(placed, [-(n // 2) for n in k.shape], axis=(0, 1, 2)))
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in q.shape[:2]], np.fft.rfftfreq(q.shape[2]), indexing="ij")
    lap = sum(2.0 - 2.0 * np.cos(2 * np.pi * f) for f in freqs)  # transfer function of the 6-neighbour Laplacian
    x = np.fft.irfftn(np.conj(h) * np.fft.rfftn(q) / (np.abs(h) ** 2 + balance * lap ** 2), s=q.shape, axes=(0, 1, 2))
    return x[tuple(slice(n, n + m) for n, m in zip(k.shape, y.shape))]
