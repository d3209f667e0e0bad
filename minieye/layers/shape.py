"""Layers that move values around without arithmetic: Reshape, Flatten, Crop, Pad.

Each is linear, so backward applies the adjoint: Reshape/Flatten reshape dy back;
Crop's adjoint pads dy with zeros; Pad's adjoint crops dy and, in reflect and
replicate modes, adds the border gradients back onto the input pixels they copied
(``F.pad`` and ``F.pad_adjoint``: one implementation of padding).
Crop and Pad act on the last two axes (H, W of NCHW) and take their amounts as
``F.pad`` and PyTorch do: an int, an (h, w) pair or (left, right, top, bottom).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..checks import as_float_array, check_gradient, fail, layer_gradient, layer_input
from ..checks import where as where_of
from ..core import Backward, DeltaSet, Layer
from ..functional.conv_pad import apply_pad, fold_pad, pad_amounts

__all__ = ["Reshape", "Flatten", "Crop", "Pad"]


class Reshape(Layer):
    """Reshapes each sample: ``x (N, ...) -> (N, *shape)``; one entry of ``shape`` may be -1.

    Shapes: x (N, ...) -> y (N, *shape), the sample size unchanged.
    """

    def __init__(self, shape: tuple[int, ...] | list[int], name: str | None = None):
        super().__init__(name)
        where = where_of(type(self).__name__, name)
        dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        ok = all(isinstance(d, (int, np.integer)) and (d >= 1 or d == -1) for d in dims) and \
            sum(d == -1 for d in dims) <= 1
        if not ok:
            raise fail(where, "shape of positive ints with at most one -1", f"shape={shape!r}")
        self.shape = tuple(int(d) for d in dims)

    def config(self) -> dict[str, Any]:
        return {"shape": list(self.shape), **super().config()}

    def describe(self) -> str:
        return f"Reshape{self.shape}"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        x = as_float_array(x, where, "x")
        known = int(np.prod([d for d in self.shape if d != -1]))
        size = int(np.prod(x.shape[1:])) if x.ndim else 0
        if x.ndim < 1 or (size != known if -1 not in self.shape else size % known):
            raise fail(where, f"x of shape (N, ...) with samples reshapable to {self.shape}", f"x.shape == {x.shape}")
        # (-1 resolved by hand: reshape cannot infer it for an empty batch)
        shape = tuple(size // known if d == -1 else d for d in self.shape)
        y = x.reshape(x.shape[0], *shape)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            return check_gradient(dy, y.shape, x.dtype, f"{self.label()} backward").reshape(x.shape)

        return y, backward


class Flatten(Layer):
    """Flattens each sample: ``(N, d1, d2, ...) -> (N, d1 * d2 * ...)``.

    Shapes: x (N, ...) -> y (N, prod(...)).
    """

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        x = layer_input(x, self)
        if x.ndim < 1:
            raise fail(f"{self.label()} forward", "x with a batch axis", f"x.shape == {x.shape}")

        y = x.reshape(x.shape[0], math.prod(x.shape[1:]))  # (not -1: an empty batch has no size to divide)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            return layer_gradient(dy, y.shape, x.dtype, self).reshape(x.shape)

        return y, backward


class Crop(Layer):
    """Removes ``amount`` rows/columns from the borders of the last two axes.

    ``amount``: int, (h, w) or (left, right, top, bottom), as ``F.pad``. Shapes: x (..., H, W) ->
    y (..., H - top - bottom, W - left - right).
    """

    def __init__(self, amount: Any, name: str | None = None):
        super().__init__(name)
        self.amount = pad_amounts(amount, where_of(type(self).__name__, name), "amount")

    def config(self) -> dict[str, Any]:
        return {"amount": list(self.amount), **super().config()}

    def describe(self) -> str:
        return f"Crop{self.amount}"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        x = as_float_array(x, where, "x")
        left, right, top, bottom = self.amount
        if x.ndim < 2 or x.shape[-2] <= top + bottom or x.shape[-1] <= left + right:
            raise fail(where, f"x (..., H, W) with H > {top + bottom} and W > {left + right}", f"x.shape == {x.shape}")
        h, w = x.shape[-2:]
        y = x[..., top:h - bottom, left:w - right]

        y = np.ascontiguousarray(y)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            dy = check_gradient(dy, y.shape, x.dtype, f"{self.label()} backward")
            dx = np.zeros_like(x)
            dx[..., top:h - bottom, left:w - right] = dy
            return dx

        return y, backward


class Pad(Layer):
    """Pads the last two axes by ``amount`` with zeros, a reflection or edge replication (``F.pad``).

    ``amount``: int, (h, w) or (left, right, top, bottom), as ``F.pad`` and PyTorch.
    ``mode``: "zero" (default), "reflect" (mirror without repeating the edge, like numpy's
    "reflect" and PyTorch's ReflectionPad2d; needs amount < size) or "replicate" (repeat the edge).
    Shapes: x (..., H, W) -> y (..., H + top + bottom, W + left + right).
    """

    MODES = ("zero", "reflect", "replicate")

    def __init__(self, amount: Any, mode: str = "zero", name: str | None = None):
        super().__init__(name)
        where = where_of(type(self).__name__, name)
        self.amount = pad_amounts(amount, where, "amount")
        if mode not in self.MODES:
            raise fail(where, f"mode one of {self.MODES}", f"mode={mode!r}")
        self.mode = mode

    def config(self) -> dict[str, Any]:
        return {"amount": list(self.amount), "mode": self.mode, **super().config()}

    def describe(self) -> str:
        return f"Pad{self.amount}" + ("" if self.mode == "zero" else f"[{self.mode}]")

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        x = as_float_array(x, where, "x")
        amount, mode = self.amount, self.mode
        y = apply_pad(x, amount, mode, where)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            at = f"{self.label()} backward"
            return fold_pad(check_gradient(dy, y.shape, x.dtype, at), amount, mode, at)

        return y, backward
