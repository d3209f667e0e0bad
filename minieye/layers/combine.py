"""Layers that combine inputs or reduce axes: Add, Multiply, Concat, Sum, Mean.

    Add        y = x_1 + ... + x_k            dx_i = dy
    Multiply   y = x_1 * ... * x_k            dx_i = dy * prod_{j != i} x_j
    Concat     y = [x_1, ..., x_k] on axis    dx_i = the matching slice of dy
    Sum        y = sum of x over axes         dx = dy broadcast back
    Mean       y = mean of x over axes        dx = dy broadcast back / count

Add and Multiply broadcast their inputs as NumPy does; backward sums each gradient
back to its input's shape. Sum and Mean reduce every axis but the batch axis by
default, so they stay batch-invariant.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_bool, check_gradient, fail
from ..checks import where as where_of
from ..core import Backward, DeltaSet, Layer
from ._broadcast import sum_to_shape

__all__ = ["Add", "Multiply", "Concat", "Sum", "Mean"]


def _float_inputs(layer: Layer, inputs: tuple, minimum: int) -> list[np.ndarray]:
    where = f"{layer.label()} forward"
    if len(inputs) < minimum:
        raise fail(where, f"at least {minimum} inputs", f"{len(inputs)}")
    xs = [as_float_array(x, where, f"input {i}") for i, x in enumerate(inputs)]
    dtype = np.result_type(*xs)
    return [x.astype(dtype, copy=False) for x in xs]


def _broadcast_shape(layer: Layer, xs: list[np.ndarray]) -> tuple[int, ...]:
    try:
        return np.broadcast_shapes(*(x.shape for x in xs))
    except ValueError:
        raise fail(f"{layer.label()} forward", "inputs of broadcastable shapes",
                   ", ".join(str(x.shape) for x in xs)) from None


class Add(Layer):
    """Element-wise sum of any number (>= 1) of inputs, with broadcasting.

    Shapes: inputs broadcastable to S -> y S.
    """

    n_inputs = None

    def forward(self, *inputs: Any) -> tuple[np.ndarray, Backward]:
        xs = _float_inputs(self, inputs, 1)
        _broadcast_shape(self, xs)
        y = xs[0] + sum(xs[1:]) if len(xs) > 1 else xs[0].copy()
        shapes = [x.shape for x in xs]

        def backward(dy: Any, deltas: DeltaSet) -> Any:
            dy = check_gradient(dy, y.shape, y.dtype, f"{self.label()} backward")
            grads = tuple(sum_to_shape(dy, s) for s in shapes)
            return grads[0] if len(grads) == 1 else grads

        return np.asarray(y), backward


class Multiply(Layer):
    """Element-wise product of any number (>= 1) of inputs, with broadcasting.

    Shapes: inputs broadcastable to S -> y S.
    """

    n_inputs = None

    def forward(self, *inputs: Any) -> tuple[np.ndarray, Backward]:
        xs = _float_inputs(self, inputs, 1)
        shape = _broadcast_shape(self, xs)
        y = np.ones(shape, dtype=xs[0].dtype)
        for x in xs:
            y = y * x

        def backward(dy: Any, deltas: DeltaSet) -> Any:
            dy = check_gradient(dy, y.shape, y.dtype, f"{self.label()} backward")
            grads = []
            for i, x in enumerate(xs):
                g = dy
                for j, other in enumerate(xs):  # the product of the others, not y / x (x may hold zeros)
                    if j != i:
                        g = g * other
                grads.append(sum_to_shape(np.broadcast_to(g, shape), x.shape))
            return grads[0] if len(grads) == 1 else tuple(grads)

        return y, backward


class Concat(Layer):
    """Concatenation of any number (>= 1) of inputs along ``axis`` (default 1, channels).

    Shapes: x_i (..., c_i, ...) -> y (..., sum c_i, ...), other axes equal.
    """

    n_inputs = None

    def __init__(self, axis: int = 1, name: str | None = None):
        super().__init__(name)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise fail(where_of("Concat", name), "axis an int", f"axis={axis!r}")
        self.axis = int(axis)

    def config(self) -> dict[str, Any]:
        return {"axis": self.axis, **super().config()}

    def describe(self) -> str:
        return f"Concat(axis={self.axis})"

    def forward(self, *inputs: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        xs = _float_inputs(self, inputs, 1)
        ndim = xs[0].ndim
        if not -ndim <= self.axis < ndim:
            raise fail(where, f"inputs with an axis {self.axis}", f"input 0 shape {xs[0].shape}")
        axis = self.axis % ndim
        rest = [x.shape[:axis] + x.shape[axis + 1:] for x in xs]
        if any(x.ndim != ndim for x in xs) or len(set(rest)) != 1:
            raise fail(where, f"inputs equal in every axis but {self.axis}", ", ".join(str(x.shape) for x in xs))
        y = np.concatenate(xs, axis=axis)
        splits = np.cumsum([x.shape[axis] for x in xs])[:-1]

        def backward(dy: Any, deltas: DeltaSet) -> Any:
            dy = check_gradient(dy, y.shape, y.dtype, f"{self.label()} backward")
            parts = np.split(dy, splits, axis=axis)
            grads = tuple(np.ascontiguousarray(p) for p in parts)
            return grads[0] if len(grads) == 1 else grads

        return y, backward


class _Reduce(Layer):
    """Sum or Mean over ``axis``: an int, a tuple, or None for every axis but the batch axis 0."""

    _mean = False

    def __init__(self, axis: int | tuple[int, ...] | list[int] | None = None, keepdims: bool = False,
                 name: str | None = None):
        super().__init__(name)
        where = where_of(type(self).__name__, name)
        axes = None if axis is None else ((axis,) if isinstance(axis, (int, np.integer)) else tuple(axis))
        if axes is not None and not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
            raise fail(where, "axis an int, a tuple of ints or None", f"axis={axis!r}")
        self.axis = None if axes is None else tuple(int(a) for a in axes)
        self.keepdims = check_bool(keepdims, where, "keepdims")

    def config(self) -> dict[str, Any]:
        axis = None if self.axis is None else list(self.axis)
        return {"axis": axis, "keepdims": self.keepdims, **super().config()}

    def describe(self) -> str:
        return f"{type(self).__name__}(axis={'non-batch' if self.axis is None else self.axis})"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        x = as_float_array(x, where, "x")
        axes = tuple(range(1, x.ndim)) if self.axis is None else self.axis
        if any(not -x.ndim <= a < x.ndim for a in axes) or len({a % max(x.ndim, 1) for a in axes}) != len(axes):
            raise fail(where, f"x with distinct axes {axes}", f"x.shape == {x.shape}")
        axes = tuple(a % x.ndim for a in axes)
        count = int(np.prod([x.shape[a] for a in axes]))
        y = x.sum(axis=axes, keepdims=True)
        if self._mean:
            y = y / count
        out = y if self.keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            dy = check_gradient(dy, out.shape, x.dtype, f"{self.label()} backward").reshape(y.shape)
            if self._mean:
                dy = dy / count
            return np.ascontiguousarray(np.broadcast_to(dy, x.shape))

        return np.asarray(out, dtype=x.dtype), backward


class Sum(_Reduce):
    """Sum over ``axis`` (default: every axis but the batch axis 0).

    Shapes: x (N, ...) -> y (N,) by default; the reduced axes are dropped unless keepdims.
    """


class Mean(_Reduce):
    """Mean over ``axis`` (default: every axis but the batch axis 0).

    Shapes: x (N, ...) -> y (N,) by default; the reduced axes are dropped unless keepdims.
    """

    _mean = True
