"""Search paths: where an iteration may move, as a function of the step size t.

An orientation proposes a *path* ``p(t)`` in parameter space (flat float64 vectors,
the concatenation of ``problem.params``) with ``p(0) = 0``; the line search picks t
and the trainer moves to ``x + p(t)``. The line search only sees the scalar function

    phi(t) = loss(x + p(t)),    phi'(t) = <grad loss(x + p(t)), p'(t)>,

so a straight line (``LinePath``: ``p(t) = t d``), MindsEye's quadratic quasi-Newton
curve (``CurvedPath``: ``p(t) = t (1 - t) a + t^2 b``, tangent to ``a`` at 0 and at
``b`` when t = 1) and projected or orthant-restricted lines all fit one interface.

A path's ``initial_step`` is the step the orientation considers natural (1 for a
quasi-Newton direction); None lets ``first_trial_step`` guess from the previous iteration.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..functional.optim import box_line_point, box_line_slope
from ._linalg import dot, norm

__all__ = ["Path", "LinePath", "CurvedPath", "ProjectedPath", "OrthantPath", "first_trial_step"]


class Path:
    """Base class: ``displacement(t)`` and ``tangent(t)`` are flat float64 vectors.

    Shapes: t a float -> (n,) float64, n = problem.size.
    """

    initial_step: float | None = None

    def displacement(self, t: float) -> np.ndarray:
        raise NotImplementedError

    def tangent(self, t: float) -> np.ndarray:
        raise NotImplementedError

    def slope(self, t: float, x_t: np.ndarray, grad: np.ndarray) -> float:
        """phi'(t) given the point ``x_t = x + p(t)`` and the loss gradient there."""
        return dot(self.effective_gradient(x_t, grad), self.tangent(t))

    def effective_gradient(self, x_t: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The gradient of what the search minimises (the loss, plus any orientation penalty)."""
        return grad


class LinePath(Path):
    """``p(t) = t d``: the path of every orientation except QQN."""

    def __init__(self, direction: np.ndarray, initial_step: float | None = None):
        self.direction = direction
        self.initial_step = initial_step

    def displacement(self, t: float) -> np.ndarray:
        return t * self.direction

    def tangent(self, t: float) -> np.ndarray:
        return self.direction


class CurvedPath(Path):
    """``p(t) = t (1 - t) a + t^2 b``: starts along ``a`` (the negative gradient) and reaches ``b`` at t = 1.

    QQN takes ``b`` as the L-BFGS step, so short steps behave like gradient descent
    and the full step is the quasi-Newton point.
    """

    def __init__(self, start_direction: np.ndarray, end_point: np.ndarray, initial_step: float | None = 1.0):
        self.a = start_direction
        self.b = end_point
        self.initial_step = initial_step

    def displacement(self, t: float) -> np.ndarray:
        return (t * (1.0 - t)) * self.a + (t * t) * self.b

    def tangent(self, t: float) -> np.ndarray:
        return (1.0 - 2.0 * t) * self.a + (2.0 * t) * self.b


class ProjectedPath(Path):
    """Another path projected onto the problem's constraints: ``P(x + p(t)) - x``.

    The tangent is the derivative of the projection along the inner tangent (for a box:
    zero for coordinates the clip holds at a bound), so phi' is the derivative of the
    loss along the projected path (exact away from the kinks).
    """

    def __init__(self, inner: Path, x: np.ndarray, problem: Any):
        self.inner, self.x, self.problem = inner, x, problem
        self.initial_step = inner.initial_step
        # a straight line in a box (restore.deconvolve's case): trial points and slopes are
        # single fused passes over x and d, without the temporaries of the general formulas
        bounds = getattr(problem, "box_bounds", None)  # None for problem-like objects without Box bounds
        self._line_in_box = bounds if type(inner) is LinePath and bounds is not None else None

    def displacement(self, t: float) -> np.ndarray:
        return self.problem.project(self.x + self.inner.displacement(t)) - self.x

    def tangent(self, t: float) -> np.ndarray:
        return self.problem.project_tangent(self.x + self.inner.displacement(t), self.inner.tangent(t))

    def point(self, t: float) -> np.ndarray:
        """The feasible trial point ``P(x + displacement(t))`` (the outer P catches the ulp that
        ``x + (P(z) - x)`` may round outside)."""
        if self._line_in_box is not None:
            d = self.inner.direction
            return box_line_point(self.x, d, float(t), *self._line_in_box, np.empty_like(self.x))
        return self.problem.project(self.x + self.displacement(t))

    def slope(self, t: float, x_t: np.ndarray, grad: np.ndarray) -> float:
        if self._line_in_box is not None:
            return float(box_line_slope(self.x, self.inner.direction, float(t), grad, *self._line_in_box))
        return self.problem.projected_slope(self.x + self.inner.displacement(t), self.inner.tangent(t),
                                            self.inner.effective_gradient(x_t, grad))


class OrthantPath(Path):
    """OWL-QN's line: ``x + t d`` with every coordinate that would cross zero set to zero.

    The orthant ``xi`` is sign(x), or sign(-pseudo-gradient) where x is 0; ``mask``
    (1 or 0 per coordinate) says which coordinates carry the L1 term. The slope
    adds the L1 term ``l1 * sign`` of the point (``l1 * xi`` at coordinates sitting on 0).
    """

    def __init__(self, direction: np.ndarray, x: np.ndarray, orthant: np.ndarray, l1: float,
                 mask: np.ndarray, initial_step: float | None = None):
        self.direction, self.x, self.orthant, self.l1, self.mask = direction, x, orthant, l1, mask
        self.initial_step = initial_step

    def displacement(self, t: float) -> np.ndarray:
        moved = self.x + t * self.direction
        return np.where(self._kept(moved), moved, 0.0) - self.x

    def tangent(self, t: float) -> np.ndarray:
        return np.where(self._kept(self.x + t * self.direction), self.direction, 0.0)

    def _kept(self, moved: np.ndarray) -> np.ndarray:
        # coordinates without the L1 term (mask 0) move freely; one on zero moving into the orthant is kept
        on_zero = (moved == 0.0) & (np.sign(self.direction) == self.orthant)
        return (np.sign(moved) == self.orthant) | on_zero | (self.mask == 0.0)

    def effective_gradient(self, x_t: np.ndarray, grad: np.ndarray) -> np.ndarray:
        sign = np.where(x_t != 0.0, np.sign(x_t), self.orthant)
        return grad + self.l1 * self.mask * sign


def first_trial_step(path: Any, slope0: float, grad: np.ndarray, last_step: float | None,
                     last_slope: float | None) -> float:
    """The line search's first trial step t0 along ``path``: the path's own (a quasi-Newton
    step is 1), else the last step scaled to the same first-order change (Nocedal & Wright
    (3.60)), else 1 / |grad|; 1 when that is not a finite positive number."""
    if path.initial_step is not None:
        t0 = path.initial_step
    elif last_step is not None and last_slope:
        t0 = last_step * last_slope / slope0
    else:
        size = norm(grad)
        t0 = 1.0 / size if size > 0 else 1.0
    return t0 if math.isfinite(t0) and t0 > 0 else 1.0
