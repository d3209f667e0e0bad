"""Affine layers: Dense (fully connected), Bias, Scale and Linear.

Dense, with weight ``w`` of shape (out, in) and bias ``b`` of shape (out,):

    y = x @ w.T + b            dx = dy @ w
    dw = sum over samples of dy^T x          db = sum over samples of dy

Bias adds a trainable array broadcast against the trailing axes of ``x``; Scale
multiplies by a trainable scalar ``a``; Linear computes ``a * x + b`` with trainable
scalars ``a`` and ``b``. Their parameter gradients are ``dy`` summed over the
broadcast axes (times ``x`` for ``a``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import (as_float_array, check_bool, check_gradient, check_positive_int, fail, generator, layer_gradient,
                      layer_input, resolve_dtype)
from ..checks import where as where_of
from ..core import Backward, DeltaSet, Layer, Parameter, input_grad_needed
from ..functional.linear import blas_threads_for
from ._broadcast import sum_to_shape
from ._parameters import layer_parameter

__all__ = ["Dense", "Bias", "Scale", "Linear"]

_INITS = ("he", "glorot", "zeros")


def _scalar_parameter(value: float, name: str, dtype: np.dtype) -> Parameter:
    return Parameter(float(value), name=name, dtype=dtype)


class Dense(Layer):
    """Fully connected layer ``y = x @ weight.T + bias`` on the last axis.

    Shapes: x (..., in_features) -> y (..., out_features); weight (out_features,
    in_features), bias (out_features,).

    ``init``: "he" (normal, std sqrt(2 / in), for ReLU nets; default), "glorot"
    (uniform, limit sqrt(6 / (in + out)), for tanh/sigmoid nets) or "zeros".
    The bias starts at zero. ``rng`` (a Generator or an int seed) or ``seed`` draws the weights.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = None,
                 init: str = "he", rng: np.random.Generator | int | None = None, seed: int | None = None,
                 name: str | None = None):
        super().__init__(name)
        where = where_of("Dense", name)
        self.in_features = check_positive_int(in_features, where, "in_features")
        self.out_features = check_positive_int(out_features, where, "out_features")
        bias = check_bool(bias, where, "bias")
        self.dtype = resolve_dtype(dtype, where)
        if init not in _INITS:
            raise fail(where, f"init one of {_INITS}", f"init={init!r}")
        gen = generator(rng, seed, where)
        self.init = init
        # config() records an int seed (given as seed= or rng=) so that a rebuilt layer draws the same weights.
        self.seed = seed if seed is not None else (None if rng is None or isinstance(rng, np.random.Generator)
                                                   else int(rng))
        shape = (self.out_features, self.in_features)
        if init == "he":
            w = gen.standard_normal(shape) * np.sqrt(2.0 / self.in_features)
        elif init == "glorot":
            limit = np.sqrt(6.0 / (self.in_features + self.out_features))
            w = gen.uniform(-limit, limit, shape)
        else:
            w = np.zeros(shape)
        self.weight = Parameter(w, name="weight", dtype=self.dtype)
        self.bias = Parameter(np.zeros(self.out_features), name="bias", dtype=self.dtype) if bias else None

    def config(self) -> dict[str, Any]:
        cfg = {"in_features": self.in_features, "out_features": self.out_features,
               "bias": self.bias is not None, "dtype": self.dtype.name, "init": self.init, **super().config()}
        if self.seed is not None:
            cfg["seed"] = self.seed
        return cfg

    def describe(self) -> str:
        return f"Dense({self.in_features}->{self.out_features})"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        x = layer_input(x, self, dtype=self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            flat = x.ndim > 2 and int(np.prod(x.shape[1:])) == self.in_features
            raise fail(f"{self.label()} forward", f"x of shape (..., {self.in_features})", f"x.shape == {x.shape}",
                       "The last axis holds the features" + ("; put a layers.Flatten() before this layer"
                                                             if flat else ""))
        weight, bias = self.weight, self.bias
        w = layer_parameter(self, "weight", (self.out_features, self.in_features), self.dtype)
        work = x.size * self.out_features  # multiply-adds of each product, forward and backward
        with blas_threads_for(work):
            y = x @ w.T
        if bias is not None:
            y += layer_parameter(self, "bias", (self.out_features,), self.dtype)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray | None:
            dy = layer_gradient(dy, y.shape, x.dtype, self)
            with blas_threads_for(work):
                if not weight.frozen:
                    deltas.add(weight, dy.reshape(-1, self.out_features).T @ x.reshape(-1, self.in_features))
                if bias is not None and not bias.frozen:
                    deltas.add(bias, dy.reshape(-1, self.out_features).sum(axis=0))
                return dy @ w if input_grad_needed() else None

        return y, backward


class Bias(Layer):
    """Adds a trainable array ``bias`` (initially zero) broadcast against x's trailing axes.

    Shapes: x (..., *shape) (axes where shape has 1 may be any size) -> y of x's shape; bias ``shape``. ``shape`` may be an
    int (features on the last axis) or a tuple; (C, 1, 1) gives a per-channel bias
    for NCHW images.
    """

    def __init__(self, shape: int | tuple[int, ...], dtype: Any = None, name: str | None = None):
        super().__init__(name)
        where = where_of("Bias", name)
        dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        self.shape = tuple(check_positive_int(d, where, "shape entries") for d in dims)
        self.dtype = resolve_dtype(dtype, where)
        self.bias = Parameter(np.zeros(self.shape), name="bias", dtype=self.dtype)

    def config(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype.name, **super().config()}

    def describe(self) -> str:
        return f"Bias{self.shape}"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        x = as_float_array(x, where, "x", dtype=self.dtype)
        k = len(self.shape)
        if x.ndim < k or any(b not in (1, n) for b, n in zip(self.shape, x.shape[x.ndim - k:])):
            raise fail(where, f"x whose trailing axes broadcast with the bias shape {self.shape}",
                       f"x.shape == {x.shape}")
        bias = self.bias
        y = x + layer_parameter(self, "bias", self.shape, self.dtype)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            dy = check_gradient(dy, y.shape, x.dtype, f"{self.label()} backward")
            if not bias.frozen:
                deltas.add(bias, sum_to_shape(dy, self.shape))
            return dy

        return y, backward


class Linear(Layer):
    """``y = scale * x + offset`` with trainable scalars (0-d Parameters).

    Shapes: x (any) -> y of x's shape; scale (), offset ().
    """

    def __init__(self, scale: float = 1.0, offset: float = 0.0, dtype: Any = None, name: str | None = None):
        super().__init__(name)
        where = where_of(type(self).__name__, name)
        self.dtype = resolve_dtype(dtype, where)
        for key, value in (("scale", scale), ("offset", offset)):
            if value is None and key == "offset":
                continue
            if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
                raise fail(where, f"{key} a real number", f"{key}={value!r}")
        self.scale = _scalar_parameter(scale, "scale", self.dtype)
        self.offset = _scalar_parameter(offset, "offset", self.dtype) if offset is not None else None

    def config(self) -> dict[str, Any]:
        offset = None if self.offset is None else float(self.offset.value)
        return {"scale": float(self.scale.value), "offset": offset, "dtype": self.dtype.name, **super().config()}

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        x = as_float_array(x, f"{self.label()} forward", "x", dtype=self.dtype)
        scale, offset = self.scale, self.offset
        a = layer_parameter(self, "scale", (), self.dtype)
        y = a * x
        if offset is not None:
            y = y + layer_parameter(self, "offset", (), self.dtype)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            dy = check_gradient(dy, x.shape, x.dtype, f"{self.label()} backward")
            if not scale.frozen:
                deltas.add(scale, np.asarray(np.vdot(dy, x), dtype=x.dtype))
            if offset is not None and not offset.frozen:
                deltas.add(offset, np.asarray(dy.sum(), dtype=x.dtype))
            return dy * a

        return np.asarray(y, dtype=x.dtype), backward


class Scale(Linear):
    """``y = scale * x`` with a trainable scalar ``scale`` (a Linear without offset).

    Shapes: x (any) -> y of x's shape; scale ().
    """

    def __init__(self, scale: float = 1.0, dtype: Any = None, name: str | None = None):
        super().__init__(scale, None, dtype=dtype, name=name)  # type: ignore[arg-type]

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        del cfg["offset"]
        return cfg
