"""Box constraints on parameters, enforced by projection.

``Box(p, lower=0, upper=1)`` keeps every entry of ``p.value`` in [lower, upper]
(either bound may be None; a bound may also be an array broadcastable to p's shape).

How the trainer honours them (a projected quasi-Newton scheme, as in Bertsekas'
two-metric projection and the "L-BFGS-B lite" methods):

1. the starting point is projected into the box;
2. coordinates sitting on a bound whose gradient pushes outward are *active*: their
   gradient entry is set to zero before the orientation sees it, so L-BFGS builds its
   direction (and its curvature pairs) in the free coordinates only;
3. every trial point of the line search is projected, ``x(t) = clip(x + p(t))``, and
   the slope phi'(t) uses the tangent of that projected path;
4. the gradient norm used by the stop test is that of the masked gradient (zero at
   a constrained minimum, where the plain gradient is not).

So a bound is a hard constraint: the parameters never leave the box, unlike a
penalty such as a non-negativity loss.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import fail
from ..core import Parameter

__all__ = ["Box", "NonNegative", "active_mask"]


class Box:
    """Keep ``param.value`` within ``[lower, upper]`` (None: unbounded on that side).

    Shapes: lower and upper are numbers or arrays broadcastable to ``param.shape``.
    """

    def __init__(self, param: Parameter, lower: Any = None, upper: Any = None):
        where = "Box"
        if not isinstance(param, Parameter):
            raise fail(where, "param a minieye Parameter", type(param).__name__)
        self.param = param
        self.lower = self._bound(lower, -np.inf, "lower")
        self.upper = self._bound(upper, np.inf, "upper")
        if np.any(self.lower > self.upper):
            raise fail(f"Box({param.name!r})", "lower <= upper everywhere",
                       f"lower={lower!r}, upper={upper!r}")

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

    def project(self) -> None:
        """Clip the parameter's current value into the box, in place."""
        np.clip(self.param.value, self.lower, self.upper, out=self.param.value)

    def __repr__(self) -> str:
        lo = self.lower.min() if self.lower.size else None
        hi = self.upper.max() if self.upper.size else None
        return f"Box({self.param.name!r}, lower={lo}, upper={hi})"


def NonNegative(param: Parameter) -> Box:  # noqa: N802 - reads as a constraint name
    """``Box(param, lower=0)``."""
    return Box(param, lower=0.0)


def active_mask(x: np.ndarray, grad: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Coordinates on a bound whose negative gradient points out of the box."""
    return ((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0))
