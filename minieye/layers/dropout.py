"""Dropout: in training mode, zero each value with probability p and scale the rest by
1 / (1 - p), so that the expected output is the input; in evaluation mode, the identity.

    y = x * m / (1 - p)      dx = dy * m / (1 - p)      m ~ Bernoulli(1 - p), drawn per forward

The mask is drawn in forward and kept by the backward closure, so a backward always
matches its own forward. Masks come from the layer's own Generator (``seed=``), which
advances with every training forward, or, inside ``minieye.randomness.fixed_noise(seed)``,
from one determined by that seed and the layer's place in the pass: the same masks on
every pass (how the gradient-check harness sees a fixed function).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_gradient, check_real, fail, generator
from ..checks import where as where_of
from ..core import Backward, DeltaSet, Layer
from ..randomness import noise_generator

__all__ = ["Dropout"]


class Dropout(Layer):
    """Randomly zeroes values with probability ``p`` in training mode; the identity after ``eval()``.

    Shapes: any -> same (every value has its own draw, as PyTorch's Dropout).
    ``seed``: an int for a reproducible sequence of masks, None for fresh entropy.
    """

    def __init__(self, p: float = 0.5, seed: int | None = None, name: str | None = None):
        super().__init__(name)
        where = where_of("Dropout", name)
        self.p = check_real(p, where, "p")
        if self.p > 1:
            raise fail(where, "p in [0, 1]", f"p={p!r}")
        self.seed = seed
        self._rng = generator(None, seed, where)

    def config(self) -> dict[str, Any]:
        return {"p": self.p, "seed": self.seed, **super().config()}

    def describe(self) -> str:
        return f"Dropout({self.p:g})"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        x = as_float_array(x, f"{self.label()} forward", "x")
        if not self.training or self.p == 0:
            def identity(dy: Any, deltas: DeltaSet) -> np.ndarray:
                return check_gradient(dy, x.shape, x.dtype, f"{self.label()} backward")
            return x, identity
        # float32 draws whatever x's dtype: half the cost, and the same mask for both precisions
        keep = noise_generator(self._rng).random(x.shape, dtype=np.float32) >= np.float32(self.p)
        mask = keep * x.dtype.type(1 / (1 - self.p) if self.p < 1 else 0)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            return check_gradient(dy, x.shape, x.dtype, f"{self.label()} backward") * mask

        return x * mask, backward
