"""Layers that move values around without arithmetic: Reshape, Flatten, Crop, Pad.

Each is linear, so backward applies the adjoint: Reshape/Flatten reshape dy back;
Crop's adjoint pads dy with zeros; Pad's adjoint crops dy and, in reflect and
replicate modes, adds the border gradients back onto the input pixels they copied.
Crop and Pad act on the last two axes (H, W of NCHW) and take their amounts as an
int, an (h, w) pair or a (top, bottom, left, right) quadruple.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_gradient, check_nonneg_int, fail
from ..checks import where as where_of
from ..core import Backward, DeltaSet, Layer

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
        where = f"{self.label()} forward"
        x = as_float_array(x, where, "x")
        if x.ndim < 1:
            raise fail(where, "x with a batch axis", f"x.shape == {x.shape}")

        y = x.reshape(x.shape[0], int(np.prod(x.shape[1:])))  # (not -1: an empty batch has no size to divide)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            return check_gradient(dy, y.shape, x.dtype, f"{self.label()} backward").reshape(x.shape)

        return y, backward


def _amounts(value: Any, where: str, name: str) -> tuple[int, int, int, int]:
    """An int, (h, w) or (top, bottom, left, right) as (top, bottom, left, right)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        items = (value,) * 4
    else:
        try:
            items = tuple(value)
        except TypeError:
            items = ()
        if len(items) == 2:
            items = (items[0], items[0], items[1], items[1])
    if len(items) != 4:
        raise fail(where, f"{name} an int, an (h, w) pair or (top, bottom, left, right)", f"{name}={value!r}")
    return tuple(check_nonneg_int(v, where, name) for v in items)  # type: ignore[return-value]


class Crop(Layer):
    """Removes ``amount`` rows/columns from the borders of the last two axes.

    ``amount``: int, (h, w) or (top, bottom, left, right). Shapes: x (..., H, W) ->
    y (..., H - top - bottom, W - left - right).
    """

    def __init__(self, amount: Any, name: str | None = None):
        super().__init__(name)
        self.amount = _amounts(amount, where_of(type(self).__name__, name), "amount")

    def config(self) -> dict[str, Any]:
        return {"amount": list(self.amount), **super().config()}

    def describe(self) -> str:
        return f"Crop{self.amount}"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        x = as_float_array(x, where, "x")
        top, bottom, left, right = self.amount
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


def _source_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each output position along one padded axis, the input position it copies."""
    pos = np.arange(-before, n + after)
    if mode == "replicate":
        return np.clip(pos, 0, n - 1)
    period = 2 * (n - 1)  # reflect without repeating the edge, as numpy's "reflect"
    pos = np.abs(pos) % period if period else np.zeros_like(pos)
    return np.where(pos >= n, period - pos, pos)


def _fold(dy: np.ndarray, n: int, before: int, after: int, mode: str) -> np.ndarray:
    """The adjoint of reflect/replicate padding along the last axis: border gradients go back
    onto the input positions they copied (slices, not scatter: np.add.at is slow)."""
    dx = dy[..., before:before + n].copy()
    if mode == "replicate":
        if before:
            dx[..., 0] += dy[..., :before].sum(axis=-1)
        if after:
            dx[..., n - 1] += dy[..., before + n:].sum(axis=-1)
        return dx
    if before:  # padded position j < before copies input position before - j
        dx[..., 1:before + 1] += dy[..., before - 1::-1]
    if after:  # padded position before + n + k copies input position n - 2 - k
        dx[..., n - 1 - after:n - 1] += dy[..., before + n:][..., ::-1]
    return dx


class Pad(Layer):
    """Pads the last two axes by ``amount`` with zeros, a reflection or edge replication.

    ``amount``: int, (h, w) or (top, bottom, left, right). ``mode``: "zero" (default),
    "reflect" (mirror without repeating the edge, like numpy's "reflect" and PyTorch's
    ReflectionPad2d; needs amount < size) or "replicate" (repeat the edge).
    Shapes: x (..., H, W) -> y (..., H + top + bottom, W + left + right).
    """

    MODES = ("zero", "reflect", "replicate")

    def __init__(self, amount: Any, mode: str = "zero", name: str | None = None):
        super().__init__(name)
        where = where_of(type(self).__name__, name)
        self.amount = _amounts(amount, where, "amount")
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
        top, bottom, left, right = self.amount
        if x.ndim < 2:
            raise fail(where, "x with at least 2 dimensions (..., H, W)", f"x.shape == {x.shape}")
        h, w = x.shape[-2:]
        if self.mode == "zero":
            y = np.zeros((*x.shape[:-2], h + top + bottom, w + left + right), dtype=x.dtype)
            y[..., top:top + h, left:left + w] = x

            def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
                dy = check_gradient(dy, y.shape, x.dtype, f"{self.label()} backward")
                return np.ascontiguousarray(dy[..., top:top + h, left:left + w])

            return y, backward
        if self.mode == "reflect" and (max(top, bottom) >= h or max(left, right) >= w):
            raise fail(where, f"reflect padding smaller than the input (amount {self.amount})",
                       f"x.shape == {x.shape}", "use mode='replicate' or pad in several steps")
        rows = _source_index(h, top, bottom, self.mode)
        cols = _source_index(w, left, right, self.mode)
        y = x[..., rows, :][..., cols]

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            dy = check_gradient(dy, y.shape, x.dtype, f"{self.label()} backward")
            by_cols = _fold(dy, w, left, right, self.mode)
            folded = _fold(np.swapaxes(by_cols, -1, -2), h, top, bottom, self.mode)
            return np.ascontiguousarray(np.swapaxes(folded, -1, -2))

        return y, backward
