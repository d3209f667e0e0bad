"""Constraints on parameters, enforced by projection: boxes and simplices.

``Box(p, lower=0, upper=1)`` keeps every entry of ``p.value`` in [lower, upper]
(either bound may be None; a bound may also be an array broadcastable to p's shape).
``Simplex(p, total=1)`` keeps ``p.value >= 0`` with ``sum(p.value) == total``: a blur
kernel that is non-negative and sums to one.

How the trainer honours them (a projected quasi-Newton scheme, as in Bertsekas'
two-metric projection and the "L-BFGS-B lite" methods):

1. the starting point is projected onto the feasible set;
2. the gradient is *reduced* before the orientation sees it: in a box, coordinates on
   a bound whose gradient pushes outward get a zero entry; on a simplex, the gradient is
   projected onto the face the point lies on (minus its mean over the free coordinates),
   so L-BFGS builds its direction and curvature pairs in the feasible directions;
3. every trial point of the line search is projected, ``x(t) = P(x + p(t))``, and the
   slope phi'(t) uses the derivative of that projected path;
4. the gradient norm used by the stop test is that of the reduced gradient (zero at a
   constrained minimum, where the plain gradient is not).

So a constraint is hard: the parameters never leave the feasible set, unlike a
penalty such as a non-negativity loss. Each parameter takes at most one constraint.
All methods work on the parameter's entries as a flat float64 vector.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import fail
from ..core import Parameter
from ..functional.optim import box_tangent_dot

__all__ = ["Constraint", "Box", "NonNegative", "Simplex", "active_mask"]


class Constraint:
    """Base class: a feasible set for one Parameter, given by its Euclidean projection.

    Shapes: every method takes and returns flat (param.size,) float64 vectors.
    """

    def __init__(self, param: Parameter):
        if not isinstance(param, Parameter):
            raise fail(type(self).__name__, "param a minieye Parameter", type(param).__name__)
        self.param = param

    def project(self, z: np.ndarray) -> np.ndarray:
        """The feasible point nearest to ``z``."""
        raise NotImplementedError

    def tangent(self, z: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Derivative of ``project`` at ``z`` along ``v`` (one-sided, for small positive steps)."""
        raise NotImplementedError

    def tangent_dot(self, z: np.ndarray, v: np.ndarray, g: np.ndarray) -> float:
        """``<g, tangent(z, v)>``: the slope a line search needs."""
        return float(np.einsum("i,i->", g, self.tangent(z, v)))

    def reduce(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The gradient ``g`` at the feasible ``x`` restricted to the feasible directions."""
        raise NotImplementedError

    def apply(self) -> None:
        """Project the parameter's current value, in place."""
        flat = self.param.value.reshape(-1).astype(np.float64)
        self.param.value[...] = self.project(flat).reshape(self.param.shape)


class Box(Constraint):
    """Keep ``param.value`` within ``[lower, upper]`` (None: unbounded on that side).

    Shapes: lower and upper are numbers or arrays broadcastable to ``param.shape``.
    """

    def __init__(self, param: Parameter, lower: Any = None, upper: Any = None):
        super().__init__(param)
        self.lower = self._bound(lower, -np.inf, "lower")
        self.upper = self._bound(upper, np.inf, "upper")
        if np.any(self.lower > self.upper):
            raise fail(f"Box({param.name!r})", "lower <= upper everywhere",
                       f"lower={lower!r}, upper={upper!r}")
        self._lo, self._hi = self.lower.ravel(), self.upper.ravel()

    def _bound(self, value: Any, default: float, name: str) -> np.ndarray:
        where = f"Box({self.param.name!r})"
        if value is None:
            return np.full(self.param.shape, default)
        try:
            array = np.broadcast_to(np.asarray(value, dtype=np.float64), self.param.shape)
        except (ValueError, TypeError):
            raise fail(where, f"{name} a number or an array broadcastable to {self.param.shape}",
                       repr(value)) from None
        if np.isnan(array).any():
            raise fail(where, f"{name} without NaN", repr(value))
        return np.array(array)

    def project(self, z: np.ndarray) -> np.ndarray:
        return np.clip(z, self._lo, self._hi)

    def tangent(self, z: np.ndarray, v: np.ndarray) -> np.ndarray:
        # a coordinate on a bound moves only when the path takes it back inside
        above = (z > self._lo) | ((z == self._lo) & (v > 0))
        below = (z < self._hi) | ((z == self._hi) & (v < 0))
        return np.where(above & below, v, 0.0)

    def tangent_dot(self, z: np.ndarray, v: np.ndarray, g: np.ndarray) -> float:
        return float(box_tangent_dot(z, v, g, self._lo, self._hi))  # one fused pass

    def reduce(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return np.where(active_mask(x, g, self._lo, self._hi), 0.0, g)

    def __repr__(self) -> str:
        lo = self.lower.min() if self.lower.size else None
        hi = self.upper.max() if self.upper.size else None
        return f"Box({self.param.name!r}, lower={lo}, upper={hi})"


def NonNegative(param: Parameter) -> Box:  # noqa: N802 - reads as a constraint name
    """``Box(param, lower=0)``."""
    return Box(param, lower=0.0)


class Simplex(Constraint):
    """Keep ``param.value >= 0`` and ``param.value.sum() == total`` (default 1).

    The projection is the sort-based one of Duchi et al. (2008): ``max(z - tau, 0)``
    with tau chosen so that the sum is ``total``.
    """

    def __init__(self, param: Parameter, total: float = 1.0):
        super().__init__(param)
        ok = isinstance(total, (int, float, np.integer, np.floating)) and not isinstance(total, bool) \
            and np.isfinite(total) and total > 0
        if not ok:
            raise fail(f"Simplex({param.name!r})", "total a positive finite number", f"total={total!r}")
        self.total = float(total)

    def _threshold(self, z: np.ndarray) -> float:
        u = np.sort(z)[::-1]
        excess = np.cumsum(u) - self.total
        rank = np.arange(1, z.size + 1)
        last = np.flatnonzero(u - excess / rank > 0)[-1]
        return float(excess[last] / (last + 1))

    def project(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z - self._threshold(z), 0.0)

    def tangent(self, z: np.ndarray, v: np.ndarray) -> np.ndarray:
        support = z - self._threshold(z) > 0
        return np.where(support, v - v[support].mean(), 0.0)

    def reduce(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        support = x > 0
        # a coordinate at zero is free when moving mass onto it lowers the loss
        free = support | (g < g[support].mean())
        return np.where(free, g - g[free].mean(), 0.0)

    def __repr__(self) -> str:
        return f"Simplex({self.param.name!r}, total={self.total})"


def active_mask(x: np.ndarray, grad: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Coordinates on a bound whose negative gradient points out of the box."""
    return ((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0))
