"""Normalisation layers: BatchNorm1D/2D, LayerNorm and GroupNorm (PyTorch's numerics).

Each standardises x over a set of axes S and then applies a per-feature affine map:

    mean = mean_S(x)     var = mean_S((x - mean)^2)   (biased)     r = 1 / sqrt(var + eps)
    xhat = (x - mean) r                                             y = weight * xhat + bias

and backward, with g = dy * weight (the gradient reaching xhat):

    dx = r (g - mean_S(g) - xhat mean_S(g xhat))
    dweight = sum(dy xhat)       dbias = sum(dy)        (over every axis but the feature axes)

The statistics are those of the batch for BatchNorm in training mode (S = the batch and
spatial axes, one mean per channel), of each sample for LayerNorm (S = the last
``len(normalized_shape)`` axes) and GroupNorm (S = the channels of a group and the
spatial axes). BatchNorm in training mode also updates, in place, its running statistics
``running = (1 - momentum) running + momentum batch`` with the *unbiased* batch variance
(times n / (n - 1), n values per channel), and counts the batches in ``num_batches_tracked``
(``momentum=None`` averages all batches equally: momentum = 1 / count); in evaluation mode
it normalises with them instead, a fixed affine map whose dx is ``dy * weight * r``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import (as_float_array, check_bool, check_gradient, check_optional_real, check_positive_int,
                      check_real, fail, resolve_dtype)
from ..checks import where as where_of
from ..core import Backward, DeltaSet, Layer, Parameter, input_grad_needed
from ._parameters import layer_parameter

__all__ = ["BatchNorm1D", "BatchNorm2D", "LayerNorm", "GroupNorm"]


def standardize(x: np.ndarray, axes: tuple[int, ...],
                eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(xhat, mean, var, r)``: the statistics over ``axes`` (kept as size-1 axes), var biased."""
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = np.mean(centered * centered, axis=axes, keepdims=True)
    r = 1 / np.sqrt(var + x.dtype.type(eps))
    return centered * r, mean, var, r


def standardize_backward(g: np.ndarray, xhat: np.ndarray, r: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """dx of ``standardize`` given g = dL/dxhat (the statistics depend on x too)."""
    return r * (g - g.mean(axis=axes, keepdims=True) - xhat * np.mean(g * xhat, axis=axes, keepdims=True))


class _Normalization(Layer):
    """Shared parts: eps, the optional affine Parameters (``weight`` ones, ``bias`` zeros,
    of ``feature_shape``), their gradients, and config."""

    _affine_argument = "affine"  # the constructor's name for it, in messages

    def __init__(self, feature_shape: tuple[int, ...], eps: float, affine: bool, dtype: Any, name: str | None):
        super().__init__(name)
        where = where_of(type(self).__name__, name)
        self.eps = check_real(eps, where, "eps", positive=True)
        affine = check_bool(affine, where, self._affine_argument)
        self.dtype = resolve_dtype(dtype, where)
        self._feature_shape = tuple(feature_shape)
        self.weight = Parameter(np.ones(feature_shape), name="weight", dtype=self.dtype) if affine else None
        self.bias = Parameter(np.zeros(feature_shape), name="bias", dtype=self.dtype) if affine else None

    def config(self) -> dict[str, Any]:
        return {"eps": self.eps, "dtype": self.dtype.name, **super().config()}

    def _affine_values(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(weight, bias) values checked against the feature shape (before any state changes), or None."""
        if self.weight is None:
            return None
        return (layer_parameter(self, "weight", self._feature_shape, self.dtype),
                layer_parameter(self, "bias", self._feature_shape, self.dtype))

    @staticmethod
    def _affine(xhat: np.ndarray, shape: tuple[int, ...], values: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        """weight * xhat + bias, the parameters viewed with ``shape`` to broadcast against xhat."""
        if values is None:
            return xhat
        return xhat * values[0].reshape(shape) + values[1].reshape(shape)

    def _affine_backward(self, dy: np.ndarray, xhat: np.ndarray, shape: tuple[int, ...],
                         deltas: DeltaSet) -> np.ndarray:
        """Adds dweight and dbias into ``deltas``; returns g = dy * weight, the gradient of xhat."""
        weight, bias = self.weight, self.bias
        if weight is None:
            return dy
        axes = tuple(i for i in range(dy.ndim) if i >= len(shape) or shape[i] == 1)
        if not weight.frozen:
            deltas.add(weight, (dy * xhat).sum(axis=axes).reshape(weight.shape))
        if not bias.frozen:
            deltas.add(bias, dy.sum(axis=axes).reshape(bias.shape))
        return dy * weight.value.reshape(shape)


class _BatchNorm(_Normalization):
    """BatchNorm over (N, C, *spatial): one mean and variance per channel C."""

    _ranks: tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 dtype: Any = None, name: str | None = None):
        where = where_of(type(self).__name__, name)
        self.num_features = check_positive_int(num_features, where, "num_features")
        super().__init__((self.num_features,), eps, affine, dtype, name)
        self.momentum = check_optional_real(momentum, where, "momentum")
        if self.momentum is not None and self.momentum > 1:
            raise fail(where, "momentum in [0, 1] or None", f"momentum={momentum!r}")
        self.running_mean = np.zeros(self.num_features, dtype=self.dtype)
        self.running_var = np.ones(self.num_features, dtype=self.dtype)
        self.num_batches_tracked = np.zeros((), dtype=np.int64)

    def config(self) -> dict[str, Any]:
        return {"num_features": self.num_features, "momentum": self.momentum, "affine": self.weight is not None,
                **super().config()}

    def describe(self) -> str:
        return f"{type(self).__name__}({self.num_features})"

    def buffers(self) -> dict[str, np.ndarray]:
        return {"running_mean": self.running_mean, "running_var": self.running_var,
                "num_batches_tracked": self.num_batches_tracked}

    def _update_running(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        self.num_batches_tracked += 1
        # momentum None: the cumulative average of every batch so far, as PyTorch
        m = self.dtype.type(1 / self.num_batches_tracked if self.momentum is None else self.momentum)
        self.running_mean *= 1 - m
        self.running_mean += m * mean
        self.running_var *= 1 - m
        self.running_var += (m * self.dtype.type(count / (count - 1))) * var

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        x = as_float_array(x, where, "x", dtype=self.dtype)
        if x.ndim not in self._ranks or x.shape[1] != self.num_features:
            raise fail(where, f"x of shape ({self._layout}) with C == num_features ({self.num_features})",
                       f"x.shape == {x.shape}")
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, self.num_features) + (1,) * (x.ndim - 2)
        training = self.training
        affine = self._affine_values()
        if training:
            count = x.size // self.num_features
            if count < 2:
                raise fail(where, "more than one value per channel in training mode", f"x.shape == {x.shape}",
                           "use a larger batch, or eval() to normalise with the running statistics")
            xhat, mean, var, r = standardize(x, axes, self.eps)
            self._update_running(mean.ravel(), var.ravel(), count)
        else:  # r and xhat are fresh arrays: the closure does not see later updates of the running statistics
            r = 1 / np.sqrt(self.running_var.reshape(shape) + self.dtype.type(self.eps))
            xhat = (x - self.running_mean.reshape(shape)) * r
        y = self._affine(xhat, shape, affine)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray | None:
            dy = check_gradient(dy, x.shape, x.dtype, f"{self.label()} backward")
            g = self._affine_backward(dy, xhat, shape, deltas)
            if not input_grad_needed():
                return None
            return standardize_backward(g, xhat, r, axes) if training else g * r

        return y, backward


class BatchNorm1D(_BatchNorm):
    """Batch normalisation of features (PyTorch's BatchNorm1d).

    Shapes: x (N, C) or (N, C, L) -> same; weight, bias, running_mean, running_var (C,).
    Training mode normalises with the batch's statistics (per channel, over N and L) and
    updates the running ones; ``eval()`` mode uses the running ones. ``affine=False``: no
    weight and bias. ``momentum=None``: running statistics are the plain average over batches.
    """

    _ranks = (2, 3)
    _layout = "N, C) or (N, C, L"


class BatchNorm2D(_BatchNorm):
    """Batch normalisation of image channels (PyTorch's BatchNorm2d).

    Shapes: x (N, C, H, W) -> same; weight, bias, running_mean, running_var (C,).
    Statistics per channel over N, H and W; modes as in BatchNorm1D.
    """

    _ranks = (4,)
    _layout = "N, C, H, W"


class LayerNorm(_Normalization):
    """Normalises each sample over its last ``len(normalized_shape)`` axes (PyTorch's LayerNorm).

    Shapes: x (..., *normalized_shape) -> same; weight, bias ``normalized_shape``
    (``elementwise_affine=False``: none). The same in both modes.
    """

    _affine_argument = "elementwise_affine"

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5, elementwise_affine: bool = True,
                 dtype: Any = None, name: str | None = None):
        where = where_of("LayerNorm", name)
        dims = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else normalized_shape
        try:
            dims = tuple(dims)
        except TypeError:
            raise fail(where, "normalized_shape an int or a tuple of ints", f"{normalized_shape!r}") from None
        if not dims:
            raise fail(where, "normalized_shape with at least one axis", f"{normalized_shape!r}")
        self.normalized_shape = tuple(check_positive_int(d, where, "normalized_shape entries") for d in dims)
        super().__init__(self.normalized_shape, eps, elementwise_affine, dtype, name)

    def config(self) -> dict[str, Any]:
        return {"normalized_shape": list(self.normalized_shape), "elementwise_affine": self.weight is not None,
                **super().config()}

    def describe(self) -> str:
        return f"LayerNorm({', '.join(map(str, self.normalized_shape))})"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        x = as_float_array(x, where, "x", dtype=self.dtype)
        k = len(self.normalized_shape)
        if x.ndim < k or x.shape[x.ndim - k:] != self.normalized_shape:
            raise fail(where, f"x of shape (..., {', '.join(map(str, self.normalized_shape))})",
                       f"x.shape == {x.shape}")
        axes = tuple(range(x.ndim - k, x.ndim))
        shape = (1,) * (x.ndim - k) + self.normalized_shape
        xhat, _, _, r = standardize(x, axes, self.eps)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray | None:
            dy = check_gradient(dy, x.shape, x.dtype, f"{self.label()} backward")
            g = self._affine_backward(dy, xhat, shape, deltas)
            return standardize_backward(g, xhat, r, axes) if input_grad_needed() else None

        return self._affine(xhat, shape, self._affine_values()), backward


class GroupNorm(_Normalization):
    """Normalises each sample over groups of channels (PyTorch's GroupNorm).

    Shapes: x (N, C, *spatial) -> same, C == num_channels, divisible by num_groups;
    weight, bias (C,) (``affine=False``: none). Statistics per sample and group, over the
    group's C / num_groups channels and all spatial positions. The same in both modes.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 dtype: Any = None, name: str | None = None):
        where = where_of("GroupNorm", name)
        self.num_groups = check_positive_int(num_groups, where, "num_groups")
        self.num_channels = check_positive_int(num_channels, where, "num_channels")
        if self.num_channels % self.num_groups:
            raise fail(where, "num_channels divisible by num_groups",
                       f"num_groups={num_groups}, num_channels={num_channels}")
        super().__init__((self.num_channels,), eps, affine, dtype, name)

    def config(self) -> dict[str, Any]:
        return {"num_groups": self.num_groups, "num_channels": self.num_channels, "affine": self.weight is not None,
                **super().config()}

    def describe(self) -> str:
        return f"GroupNorm({self.num_groups}, {self.num_channels})"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        x = as_float_array(x, where, "x", dtype=self.dtype)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise fail(where, f"x of shape (N, C, ...) with C == num_channels ({self.num_channels})",
                       f"x.shape == {x.shape}")
        grouped = (x.shape[0], self.num_groups, self.num_channels // self.num_groups * int(np.prod(x.shape[2:])))
        xhat_g, _, _, r = standardize(x.reshape(grouped), (2,), self.eps)
        xhat = xhat_g.reshape(x.shape)
        shape = (1, self.num_channels) + (1,) * (x.ndim - 2)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray | None:
            dy = check_gradient(dy, x.shape, x.dtype, f"{self.label()} backward")
            g = self._affine_backward(dy, xhat, shape, deltas)
            if not input_grad_needed():
                return None
            return standardize_backward(g.reshape(grouped), xhat_g, r, (2,)).reshape(x.shape)

        return self._affine(xhat, shape, self._affine_values()), backward
