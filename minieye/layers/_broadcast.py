"""Shared helpers for layers: undoing NumPy broadcasting in backward passes.

When ``y = f(a, b)`` broadcast ``a`` of shape ``s`` up to ``y.shape``, the gradient of
``a`` is ``dy`` summed over the broadcast axes and reshaped back to ``s``.
"""
from __future__ import annotations

import numpy as np


def sum_to_shape(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting added or stretched, giving ``shape``."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)
