"""Element-wise activations and Softmax. None has parameters; each keeps x's float dtype.

Element-wise layers compute ``y = f(x)`` and ``dx = dy * f'(x)``:

    ReLU       max(x, 0)                    f' = [x > 0]
    LeakyReLU  x if x > 0 else slope * x    f' = 1 or slope
    Sigmoid    1 / (1 + exp(-x))            f' = y (1 - y)
    Tanh       tanh(x)                      f' = 1 - y^2
    Abs        |x|                          f' = sign(x)
    Square     x^2                          f' = 2x
    Log        log(x)  (x > 0)              f' = 1 / x
    Clamp      min(max(x, low), high)       f' = [low <= x <= high]
    GELU       x Phi(x)  (Phi: normal CDF)  f' = Phi(x) + x phi(x)
    SiLU       x s(x)  (s: sigmoid)         f' = s (1 + x (1 - s))
    ELU        x if x > 0 else a (e^x - 1)  f' = 1 or a e^x
    Softplus   log(1 + e^(b x)) / b         f' = s(b x)   (x where b x > threshold, f' = 1)

Softmax along ``axis``: ``y = exp(x - max) / sum exp(x - max)`` and
``dx = y * (dy - sum(dy * y, axis))``.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..checks import as_float_array, check_gradient, check_real, fail, layer_gradient, layer_input
from ..checks import where as where_of
from ..core import Backward, DeltaSet, Layer
from ..functional import activation as fused

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Abs", "Square", "Log", "Clamp", "GELU", "SiLU",
           "ELU", "Softplus"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))  # no overflow for large |x|


class _Elementwise(Layer):
    """Base of parameter-free element-wise layers: subclasses give ``_apply(x) -> (y, dydx(x, y))``,
    or, with a fused kernel for both directions, ``_fused(x) -> (y, dy -> dx)``."""

    def _apply(self, x: np.ndarray) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
        raise NotImplementedError

    def _fused(self, x: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        y, slope = self._apply(x)
        return np.asarray(y, dtype=x.dtype), lambda dy: np.asarray(dy * slope(), dtype=x.dtype)

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        x = layer_input(x, self)
        y, input_gradient = self._fused(x)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            return input_gradient(layer_gradient(dy, x.shape, x.dtype, self))

        return y, backward


class ReLU(_Elementwise):
    """``max(x, 0)``. Shapes: any -> same."""

    def _fused(self, x):
        # the mask from x (x > 0 where y > 0): the closure keeps only x, which the backward holds
        # anyway, and not y, which a following pool would otherwise free after the forward
        return fused.relu(x), lambda dy: fused.relu_grad(dy, x)


class LeakyReLU(_Elementwise):
    """``x`` where positive, ``slope * x`` elsewhere. Shapes: any -> same.

    ``negative_slope=`` is PyTorch's name for ``slope`` (give one of them; the default is 0.01).
    """

    def __init__(self, slope: float | None = None, name: str | None = None, *,
                 negative_slope: float | None = None):
        super().__init__(name)
        where = where_of(type(self).__name__, name)
        if slope is not None and negative_slope is not None:
            raise fail(where, "slope or negative_slope, not both",
                       f"slope={slope!r}, negative_slope={negative_slope!r}")
        value, arg = (negative_slope, "negative_slope") if negative_slope is not None else (slope, "slope")
        self.slope = check_real(0.01 if value is None else value, where, arg, signed=True)

    def config(self) -> dict[str, Any]:
        return {"slope": self.slope, **super().config()}

    def describe(self) -> str:
        return f"LeakyReLU({self.slope:g})"

    def _apply(self, x):
        s = x.dtype.type(self.slope)
        return np.where(x > 0, x, s * x), lambda: np.where(x > 0, x.dtype.type(1), s)


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``, computed as ``(1 + tanh(x/2)) / 2`` (no overflow). Shapes: any -> same."""

    def _apply(self, x):
        y = _sigmoid(x)
        return y, lambda: y * (1 - y)


class Tanh(_Elementwise):
    """``tanh(x)``. Shapes: any -> same."""

    def _apply(self, x):
        y = np.tanh(x)
        return y, lambda: 1 - y * y


class Abs(_Elementwise):
    """``|x|`` (gradient 0 at 0). Shapes: any -> same."""

    def _apply(self, x):
        return np.abs(x), lambda: np.sign(x)


class Square(_Elementwise):
    """``x ** 2``. Shapes: any -> same."""

    def _apply(self, x):
        return x * x, lambda: 2 * x


class Log(_Elementwise):
    """Natural logarithm; defined for x > 0 (NumPy's -inf/NaN elsewhere, never hidden). Shapes: any -> same."""

    def _apply(self, x):
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log(x)
        return y, lambda: 1 / x


class Clamp(_Elementwise):
    """Bounds values to ``[low, high]`` (either may be None); gradient 1 inside, 0 outside.

    Shapes: any -> same.
    """

    def __init__(self, low: float | None = None, high: float | None = None, name: str | None = None):
        super().__init__(name)
        where = where_of(type(self).__name__, name)
        for key, value in (("low", low), ("high", high)):
            if value is not None and (not isinstance(value, (int, float, np.floating, np.integer))
                                      or isinstance(value, bool) or np.isnan(value)):
                raise fail(where, f"{key} a real number or None", f"{key}={value!r}")
        if low is None and high is None:
            raise fail(where, "at least one of low and high", "neither")
        if low is not None and high is not None and low > high:
            raise fail(where, "low <= high", f"low={low}, high={high}")
        self.low = None if low is None else float(low)
        self.high = None if high is None else float(high)

    def config(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, **super().config()}

    def describe(self) -> str:
        return f"Clamp({self.low}, {self.high})"

    def _apply(self, x):
        y = np.clip(x, self.low, self.high)
        low = -np.inf if self.low is None else self.low
        high = np.inf if self.high is None else self.high
        return y, lambda: ((x >= low) & (x <= high)).astype(x.dtype)


class GELU(_Elementwise):
    """Gaussian error linear unit, the exact form ``x * Phi(x) = x (1 + erf(x / sqrt 2)) / 2``
    (PyTorch's default ``approximate='none'``). Shapes: any -> same."""

    def _fused(self, x):
        # Phi(x) as erfc(-x / sqrt 2) / 2, without the cancellation of 1 + erf for x << 0
        return fused.gelu(x), lambda dy: fused.gelu_grad(dy, x)


class SiLU(_Elementwise):
    """Sigmoid linear unit (swish), ``x * sigmoid(x)``. Shapes: any -> same."""

    def _apply(self, x):
        s = _sigmoid(x)
        return x * s, lambda: s * (1 + x * (1 - s))


class ELU(_Elementwise):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere. Shapes: any -> same."""

    def __init__(self, alpha: float = 1.0, name: str | None = None):
        super().__init__(name)
        self.alpha = check_real(alpha, where_of(type(self).__name__, name), "alpha", signed=True)

    def config(self) -> dict[str, Any]:
        return {"alpha": self.alpha, **super().config()}

    def describe(self) -> str:
        return f"ELU({self.alpha:g})"

    def _apply(self, x):
        a = x.dtype.type(self.alpha)
        # arithmetic rather than np.where (several times slower with a scalar branch);
        # negative is 0 where x > 0, and min() keeps expm1 from overflowing there
        negative = a * np.expm1(np.minimum(x, 0))
        return np.maximum(x, 0) + negative, lambda: negative + a + (x > 0) * (1 - a)


class Softplus(_Elementwise):
    """``log(1 + exp(beta * x)) / beta``, a smooth ReLU; as PyTorch, ``x`` itself where
    ``beta * x > threshold``. Shapes: any -> same."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0, name: str | None = None):
        super().__init__(name)
        where = where_of(type(self).__name__, name)
        self.beta = check_real(beta, where, "beta", positive=True)
        self.threshold = check_real(threshold, where, "threshold", signed=True)

    def config(self) -> dict[str, Any]:
        return {"beta": self.beta, "threshold": self.threshold, **super().config()}

    def describe(self) -> str:
        if (self.beta, self.threshold) == (1.0, 20.0):
            return "Softplus"
        return f"Softplus({self.beta:g}, {self.threshold:g})"

    def _apply(self, x):
        bx = x * x.dtype.type(self.beta)
        linear = bx > self.threshold
        # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): stable for any z
        soft = (np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / x.dtype.type(self.beta)
        y = soft + linear * (x - soft)  # x where linear (arithmetic: faster than np.where with scalars)

        def slope() -> np.ndarray:
            s = _sigmoid(bx)
            return s + linear * (1 - s)

        return y, slope


class Softmax(Layer):
    """Softmax along ``axis`` (default the last): positive outputs summing to 1 along it.

    Shapes: any -> same. Use ``axis=1`` for the channels of NCHW images.
    """

    def __init__(self, axis: int = -1, name: str | None = None):
        super().__init__(name)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise fail(where_of(type(self).__name__, name), "axis an int", f"axis={axis!r}")
        self.axis = int(axis)

    def config(self) -> dict[str, Any]:
        return {"axis": self.axis, **super().config()}

    def describe(self) -> str:
        return f"Softmax(axis={self.axis})"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        x = as_float_array(x, where, "x")
        if not -x.ndim <= self.axis < x.ndim:
            raise fail(where, f"x with an axis {self.axis}", f"x.shape == {x.shape}")
        if x.size == 0:  # an empty batch (or empty axis): nothing to normalise, and max() would refuse
            y = x.copy()
        else:
            e = np.exp(x - x.max(axis=self.axis, keepdims=True))
            y = e / e.sum(axis=self.axis, keepdims=True)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            dy = check_gradient(dy, x.shape, x.dtype, f"{self.label()} backward")
            return y * (dy - (dy * y).sum(axis=self.axis, keepdims=True))

        return y, backward
