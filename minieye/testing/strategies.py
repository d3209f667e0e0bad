"""Hypothesis strategies for layer tests, named by the dimension they draw.

    from minieye.testing import strategies as ms
    shape = ms.image_shapes()                    # (N, C, H, W), small
    x = ms.arrays(shape, away_from=(0.0,))       # float64 values kept off ReLU's kink

Sizes are small on purpose (a few hundred elements at most) so that a table of every
layer runs in seconds. Array values come from a NumPy generator seeded by hypothesis:
hypothesis shrinks shapes and seeds, not individual values, which keeps drawing fast.
Values can be kept ``margin`` away from kinks (0 for ReLU/Abs, the bounds of a
clamp), made pairwise ``distinct`` (max-like layers) or drawn from a positive range
(Log). This module needs hypothesis (a dev extra); ``import minieye`` never imports it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from hypothesis import strategies as st

__all__ = ["seeds", "rngs", "batch_sizes", "features", "channels", "spatial_sizes", "image_shapes",
           "matrix_shapes", "arrays", "labels", "kernel_sizes"]


def seeds() -> st.SearchStrategy[int]:
    """Seeds for np.random.default_rng (hypothesis shrinks them towards 0)."""
    return st.integers(0, 2**32 - 1)


def rngs() -> st.SearchStrategy[np.random.Generator]:
    return seeds().map(np.random.default_rng)


def batch_sizes(min_size: int = 1, max_size: int = 3) -> st.SearchStrategy[int]:
    """N, the batch axis."""
    return st.integers(min_size, max_size)


def features(min_size: int = 1, max_size: int = 6) -> st.SearchStrategy[int]:
    """Feature counts (the last axis of Dense inputs)."""
    return st.integers(min_size, max_size)


def channels(min_size: int = 1, max_size: int = 3) -> st.SearchStrategy[int]:
    """C, the channel axis of NCHW images."""
    return st.integers(min_size, max_size)


def spatial_sizes(min_size: int = 1, max_size: int = 6) -> st.SearchStrategy[int]:
    """H or W of NCHW images."""
    return st.integers(min_size, max_size)


def kernel_sizes(min_size: int = 1, max_size: int = 3) -> st.SearchStrategy[int]:
    return st.integers(min_size, max_size)


def image_shapes(batch: st.SearchStrategy[int] | None = None, channels_: st.SearchStrategy[int] | None = None,
                 height: st.SearchStrategy[int] | None = None,
                 width: st.SearchStrategy[int] | None = None) -> st.SearchStrategy[tuple[int, int, int, int]]:
    """(N, C, H, W) shapes from the given dimension strategies (small defaults)."""
    return st.tuples(batch_sizes() if batch is None else batch, channels() if channels_ is None else channels_,
                     spatial_sizes() if height is None else height, spatial_sizes() if width is None else width)


def matrix_shapes(batch: st.SearchStrategy[int] | None = None,
                  feature: st.SearchStrategy[int] | None = None) -> st.SearchStrategy[tuple[int, int]]:
    """(N, F) shapes."""
    return st.tuples(batch_sizes() if batch is None else batch, features() if feature is None else feature)


def _values(shape: tuple[int, ...], seed: int, low: float, high: float, away_from: Sequence[float],
            margin: float, distinct: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    if distinct:  # a shuffled grid with jitter: neighbours at least 0.4 * (high - low) / size apart
        grid = (rng.permutation(size) + 0.5 + rng.uniform(-0.3, 0.3, size)) / max(size, 1)
        x = low + (high - low) * grid
    else:
        x = rng.uniform(low, high, size)
    for kink in away_from:  # push values out of (kink - margin, kink + margin), keeping their side
        d = x - kink
        side = np.where(d >= 0, 1.0, -1.0)
        x = np.where(np.abs(d) < margin, kink + side * (margin + np.abs(d)), x)
    return x.reshape(shape)


def arrays(shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]], low: float = -2.0, high: float = 2.0,
           away_from: Sequence[float] = (), margin: float = 0.05,
           distinct: bool = False) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of ``shape`` (a tuple or a strategy of tuples) with values in [low, high].

    ``away_from``: kinks the values keep at least ``margin`` away from (values that fall
    near one move outward, so the range may grow by ``margin``). ``distinct``: values
    pairwise separated (for max-like layers, whose gradient jumps where two values tie).
    For positive values (Log) pass ``low > 0``.
    """
    if low >= high:
        raise ValueError(f"arrays: expected low < high; got low={low}, high={high}")
    shapes = shape if isinstance(shape, st.SearchStrategy) else st.just(tuple(shape))
    return shapes.flatmap(lambda s: seeds().map(
        lambda seed: _values(tuple(s), seed, low, high, tuple(away_from), margin, distinct)))


def labels(shape: tuple[int, ...], n_classes: int) -> st.SearchStrategy[np.ndarray]:
    """Integer class labels in [0, n_classes) of ``shape`` (for SoftmaxCrossEntropy)."""
    return seeds().map(lambda seed: np.random.default_rng(seed).integers(0, n_classes, size=shape))

