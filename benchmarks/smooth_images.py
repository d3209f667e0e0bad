"""A synthetic smooth-microscopy tuning set (issue 17): low-contrast images without sharp edges.

Made from random numbers only, never from a held-out image: the kinds are generic (a
fluorescence-like field of soft cells, faint thin vessels on a shaded disc, a slowly varying
texture, and their mixture), at low contrast (details 0.02-0.15 on a background near the middle
of [0, 1], not stretched), with smooth shading. The seeds (200 up) are not the training corpus's
smooth images' (denoiser_corpus.py: 1000 up), and the generators differ from theirs.

    smooth_images() -> {name: (192, 192) float64 image in [0, 1]}
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["SMOOTH_KINDS", "smooth_images", "smooth_image"]

SIZE = 192
SMOOTH_KINDS = ("cells", "vessels", "texture", "mixed")
SEEDS = (200, 201, 202, 203)  # four images per kind


def _shading(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth background: a level, a tilt and a broad bump (illumination), amplitude up to about 0.15."""
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    cy, cx = rng.uniform(-0.3, 0.3, 2)
    bump = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(0.05, 0.3))
    return rng.uniform(0.3, 0.6) + rng.uniform(-0.08, 0.08) * xx + rng.uniform(-0.08, 0.08) * yy \
        + rng.uniform(0.03, 0.12) * bump


def _cells(rng: np.random.Generator, size: int) -> np.ndarray:
    """Soft elliptic blobs (sizes 4-18 px, Gaussian profile, some with a faint inner nucleus), contrast 0.02-0.12."""
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    out = np.zeros((size, size))
    for _ in range(int(rng.integers(15, 35))):
        cy, cx = rng.uniform(0, size, 2)
        a, b = rng.uniform(4, 18), rng.uniform(4, 18)
        angle = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u, v = dy * np.cos(angle) + dx * np.sin(angle), -dy * np.sin(angle) + dx * np.cos(angle)
        r2 = (u / a) ** 2 + (v / b) ** 2
        out += rng.uniform(0.02, 0.12) * np.exp(-r2 ** rng.uniform(1.0, 2.0))
        if rng.random() < 0.5:
            out += rng.uniform(0.01, 0.04) * np.exp(-r2 * 6.0)
    return out


def _vessels(rng: np.random.Generator, size: int) -> np.ndarray:
    """Thin faint curves (width 1-3 px, contrast 0.02-0.1, darker than the background), branching random walks."""
    canvas = np.zeros((size, size))
    for _ in range(int(rng.integers(6, 12))):
        y, x = rng.uniform(0, size, 2)
        heading = rng.uniform(0, 2 * np.pi)
        width = rng.uniform(0.6, 1.5)
        depth = rng.uniform(0.02, 0.1)
        strand = np.zeros((size, size))
        for _ in range(int(rng.integers(150, 400))):
            heading += rng.normal(0, 0.12)
            y, x = y + np.sin(heading), x + np.cos(heading)
            if not (0 <= y < size and 0 <= x < size):
                break
            strand[int(y), int(x)] = 1.0
        strand = ndimage.gaussian_filter(strand, width)
        if strand.max() > 0:
            canvas -= depth * np.minimum(strand / (0.6 * strand.max()), 1.0)
    return canvas


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A slowly varying random field: two scales (correlation 3-8 and 10-25 px), contrast 0.02-0.08 each."""
    out = np.zeros((size, size))
    for low, high in ((3, 8), (10, 25)):
        field = ndimage.gaussian_filter(rng.standard_normal((size, size)), rng.uniform(low, high), mode="wrap")
        out += field / field.std() * rng.uniform(0.02, 0.08)
    return out


def smooth_image(kind: str, seed: int, size: int = SIZE) -> np.ndarray:
    """One synthetic smooth image of ``kind`` (one of ``SMOOTH_KINDS``): (size, size) float64 in [0, 1]."""
    rng = np.random.default_rng(seed)
    image = _shading(rng, size)
    if kind == "cells":
        image = image + _cells(rng, size) + 0.3 * _texture(rng, size)
    elif kind == "vessels":
        yy, xx = np.mgrid[:size, :size] / size - 0.5
        disc = 1.0 / (1.0 + np.exp((np.hypot(yy, xx) - 0.45) / 0.04))  # a shaded field of view, soft rim
        image = image * (0.6 + 0.4 * disc) + _vessels(rng, size) + 0.3 * _texture(rng, size)
    elif kind == "texture":
        image = image + _texture(rng, size)
    elif kind == "mixed":
        image = image + 0.7 * _cells(rng, size) + 0.7 * _vessels(rng, size) + 0.5 * _texture(rng, size)
    else:
        raise ValueError(f"smooth_image: kind one of {SMOOTH_KINDS}, got {kind!r}")
    return np.clip(image, 0.0, 1.0)


def smooth_images() -> dict[str, np.ndarray]:
    """{'smooth_<kind><seed>': (SIZE, SIZE) float64 image in [0, 1]} for every seed and kind (seed-major order)."""
    return {f"smooth_{kind}{seed}": smooth_image(kind, seed) for seed in SEEDS for kind in SMOOTH_KINDS}
