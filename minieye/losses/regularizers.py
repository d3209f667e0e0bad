"""Regularizers: one-input losses on an image (or any array), each returning a 0-d array.

Images are (..., H, W) arrays (NCHW in networks); sums run over all entries and are
divided by the number of entries n, so weights are comparable with ``MSE``'s mean.
With ``dx_h = x[..., i, j+1] - x[..., i, j]`` and ``dx_v = x[..., i+1, j] - x[..., i, j]``
(forward differences, zero across the last column/row: a Neumann boundary):

    TotalVariation   (1/n) sum m^q - eps^q,  m = sqrt(dx_h^2 + dx_v^2 + eps^2)   isotropic, smoothed
                     d/dx = (1/n) * (-div(q m^(q-2) g)), g = (dx_h, dx_v); q = ``power``:
                     1 is total variation, q < 1 a hyper-Laplacian prior (sharper edges,
                     not convex)
    TotalVariation3D the same on volumes (..., D, H, W): m = sqrt(dx_h^2 + dx_v^2 + dx_d^2 + eps^2)
                     with the third forward difference along D (zero across the last slice)
    SecondOrderTV    (1/n) sum m - eps,  m = sqrt(a^2 + b^2 + 2 c^2 + eps^2),  a = Dh Dh x, b = Dv Dv x,
                     c = Dv Dh x (the Frobenius norm of the discrete Hessian, smoothed)
                     d/dx = (1/n) (Dh^T Dh^T a/m + Dv^T Dv^T b/m + 2 Dh^T Dv^T c/m)
    Tikhonov(0)      (1/n) sum x^2                                    d/dx = 2x/n
    Tikhonov(1)      (1/n) sum dx_h^2 + dx_v^2                        d/dx = -(2/n) div(g)
    NonNegativity    (1/n) sum min(x, 0)^2                            d/dx = 2 min(x, 0)/n
    Entropy          mean over samples of  sum_i p_i log p_i = -H(p),  p = x / S, S = sum_i x_i
                     d/dx_j = (log p_j + H) / S       (per sample: axis 0 is the batch)

Signs: every regularizer here is *minimised*. Entropy's value is the NEGATIVE entropy,
so minimising it MAXIMISES the entropy of the normalised image (MindsEye's "maximum
entropy goal"): it pushes intensity from bright pixels towards dim ones, flattening
the image. The gradient includes the normalisation (the H term comes from S depending
on every pixel); without it the gradient would not sum to zero along the direction
x (scaling x changes nothing in p, so <grad, x> = 0 must hold, and does).
Entropy needs non-negative input: ``p = (x + offset) / S`` with a small ``offset``
keeps log finite at zero; a sample with an entry below ``-offset`` has value +inf
(a trainer's line search rejects such a step).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..checks import as_float_array, check_real, fail
from ..core import Backward, DeltaSet
from ..functional.tv import differences, neg_divergence, second_order_tv, total_variation, tv_parameters
from .basic import Loss

__all__ = ["TotalVariation", "TotalVariation3D", "SecondOrderTV", "Tikhonov", "NonNegativity", "Entropy"]


def _image(reg: Loss, x: Any, min_ndim: int = 1) -> np.ndarray:
    where = f"{reg.label()} forward"
    a = as_float_array(x, where, "x")
    if a.ndim < min_ndim or a.size == 0:
        raise fail(where, f"a non-empty array with at least {min_ndim} dimensions", f"x.shape == {a.shape}")
    return a


def _mean_loss(reg: Loss, a: np.ndarray, total: float,
               gradient: Callable[[float], np.ndarray]) -> tuple[np.ndarray, Backward]:
    """(value, backward) of a regularizer worth ``total / a.size``, given ``gradient(scale)``:
    ``scale`` times the gradient of ``total`` (any shape of a.size entries)."""
    value = np.asarray(total / a.size, dtype=a.dtype)

    def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
        return gradient(reg.scalar_dy(dy) / a.size).reshape(a.shape)

    return value, backward


class TotalVariation(Loss):
    """Isotropic total variation, smoothed by ``eps``: mean of sqrt(|grad x|^2 + eps^2) - eps.

    Small ``eps`` (relative to the image's edge contrasts) is close to true TV and
    keeps edges sharp; larger eps is smoother and easier to optimise. ``power`` q < 1
    gives mean(m^q), a hyper-Laplacian prior closer to natural images' gradient statistics.
    The backward reads ``x`` again (it keeps one array, not the differences, as Conv2D
    keeps its input): do not modify ``x`` in place between forward and backward.
    Shapes: x (..., H, W) -> ().
    """

    n_inputs = 1

    def __init__(self, eps: float = 1e-3, power: float = 1.0, name: str | None = None):
        super().__init__(name)
        self.eps, self.power = tv_parameters(eps, power, type(self).__name__)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "eps": self.eps, "power": self.power}

    def describe(self) -> str:
        extra = f", power={self.power:g}" if self.power != 1 else ""
        return f"TotalVariation(eps={self.eps:g}{extra})"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        a = _image(self, x, 2)
        total, gradient = total_variation(a, self.eps, self.power, where=f"{self.label()} forward")
        return _mean_loss(self, a, total, gradient)


class TotalVariation3D(TotalVariation):
    """Isotropic total variation of volumes: TotalVariation with a third difference along D.

    mean of sqrt(|grad x|^2 + eps^2) - eps (to the ``power`` q), the gradient taken over
    the last three axes; for ``restore.deconvolve`` on (D, H, W) volumes.
    Shapes: x (..., D, H, W) -> ().
    """

    def describe(self) -> str:
        return super().describe().replace("TotalVariation(", "TotalVariation3D(", 1)

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        a = _image(self, x, 3)
        gs = differences(a, 3)
        eps = a.dtype.type(self.eps)
        q = self.power
        m = np.sqrt(sum(g * g for g in gs) + eps * eps)
        mq = m if q == 1 else m ** a.dtype.type(q)
        value = np.asarray((mq.sum(dtype=np.float64) - self.eps ** q * m.size) / a.size, dtype=a.dtype)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            scale = a.dtype.type(self.scalar_dy(dy) / a.size)
            factor = 1.0 / m if q == 1 else a.dtype.type(q) * mq / (m * m)  # q m^(q-2)
            return neg_divergence(*[g * factor for g in gs]) * scale

        return value, backward


class SecondOrderTV(Loss):
    """Second-order total variation: mean of sqrt(|Hessian x|_F^2 + eps^2) - eps.

    Zero on planes and ramps (away from the last row and column), so (added to TotalVariation with a smaller weight) it
    penalises curvature rather than slope: smooth shading is not turned into
    TV's staircase of flat terraces. Differences as in TotalVariation (forward, zero
    across the last row/column), applied twice. As TotalVariation's, the backward reads
    ``x`` again: do not modify it in place between forward and backward.
    Shapes: x (..., H, W) -> ().
    """

    n_inputs = 1

    def __init__(self, eps: float = 1e-2, name: str | None = None):
        super().__init__(name)
        self.eps = check_real(eps, "SecondOrderTV", "eps", positive=True)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "eps": self.eps}

    def describe(self) -> str:
        return f"SecondOrderTV(eps={self.eps:g})"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        a = _image(self, x, 2)
        total, gradient = second_order_tv(a, self.eps, where=f"{self.label()} forward")
        return _mean_loss(self, a, total, gradient)


class Tikhonov(Loss):
    """L2 (Tikhonov) regularisation: ``order=0`` mean(x^2); ``order=1`` mean(|grad x|^2).

    Shapes: x (any; (..., H, W) for order 1) -> ().
    """

    n_inputs = 1

    def __init__(self, order: int = 0, name: str | None = None):
        super().__init__(name)
        if order not in (0, 1) or isinstance(order, bool):
            raise fail("Tikhonov", "order 0 (values) or 1 (gradients)", f"order={order!r}")
        self.order = int(order)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "order": self.order}

    def describe(self) -> str:
        return f"Tikhonov(order={self.order})"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        a = _image(self, x, 2 if self.order else 1)
        if self.order == 0:
            value = np.asarray(np.vdot(a, a) / a.size, dtype=a.dtype)

            def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
                return a * a.dtype.type(2.0 * self.scalar_dy(dy) / a.size)
        else:
            gh, gv = differences(a)
            value = np.asarray((np.vdot(gh, gh) + np.vdot(gv, gv)) / a.size, dtype=a.dtype)

            def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
                return neg_divergence(gh, gv) * a.dtype.type(2.0 * self.scalar_dy(dy) / a.size)

        return value, backward


class NonNegativity(Loss):
    """Penalty on negative values: mean(min(x, 0)^2) (zero, with zero gradient, for x >= 0).

    A soft version of a [0, inf) box constraint (``train.NonNegative`` is the hard one).
    Shapes: x (any) -> ().
    """

    n_inputs = 1

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        a = _image(self, x)
        neg = np.minimum(a, 0)
        value = np.asarray(np.vdot(neg, neg) / a.size, dtype=a.dtype)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            return neg * a.dtype.type(2.0 * self.scalar_dy(dy) / a.size)

        return value, backward


class Entropy(Loss):
    """Negative entropy of the normalised image, averaged over the batch (axis 0).

    Minimising it maximises the entropy (see the module docstring for the sign and the
    gradient). ``offset`` is added to x before normalising, keeping log finite at 0.
    Shapes: x (N, ...) -> ().
    """

    n_inputs = 1

    def __init__(self, offset: float = 1e-8, name: str | None = None):
        super().__init__(name)
        self.offset = check_real(offset, "Entropy", "offset")

    def config(self) -> dict[str, Any]:
        return {**super().config(), "offset": self.offset}

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        a = _image(self, x, 2)
        n = a.shape[0]
        flat = a.reshape(n, -1).astype(np.float64) + self.offset
        if (flat <= 0).any():  # outside the domain: reject, never silently clip
            return np.asarray(np.inf, dtype=a.dtype), self._undefined
        total = flat.sum(axis=1, keepdims=True)
        p = flat / total
        logp = np.log(p)
        entropy = -(p * logp).sum(axis=1, keepdims=True)
        value = np.asarray(-entropy.mean(), dtype=a.dtype)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            g = (logp + entropy) / total * (self.scalar_dy(dy) / n)
            return g.reshape(a.shape).astype(a.dtype)

        return value, backward

    def _undefined(self, dy: Any, deltas: DeltaSet) -> np.ndarray:
        raise fail(f"{self.label()} backward", "non-negative input (entropy is undefined below -offset)",
                   "an input with entries below -offset", "constrain the image, e.g. with train.Box")
