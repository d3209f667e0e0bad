"""Quasi-Newton orientations: L-BFGS, OWL-QN (L1-regularized) and QQN (curved path).

L-BFGS keeps the last m pairs ``s_k = x_{k+1} - x_k``, ``y_k = g_{k+1} - g_k`` and
applies the inverse-Hessian estimate H by the two-loop recursion (Nocedal & Wright,
Alg. 7.4), starting from ``H0 = (s.y / y.y) I`` of the newest pair. A pair is kept
only when ``s.y > eps * y.y`` (positive curvature), so H stays positive definite and
``d = -H g`` is a descent direction. The natural step is 1; with no pairs yet the
direction is ``-g`` with a first step of ``1 / |g|`` (as SciPy's L-BFGS-B does).

OWL-QN (Andrew & Gao 2007) minimises ``f(x) + l1 * |x|_1``: it replaces g by the
pseudo-gradient (the minimum-norm subgradient), keeps the L-BFGS direction only
where it agrees in sign with ``-pseudo-gradient``, and searches inside the orthant
of the current point (coordinates that would cross zero stop at zero).

QQN (MindsEye) searches along the curve ``p(t) = t (1 - t) a + t^2 d``, where
``a = -g`` rescaled to the length of the L-BFGS step ``d``: tangent to steepest
descent at t = 0 and reaching the quasi-Newton point at t = 1, so a failed
quasi-Newton step degrades smoothly to gradient descent. (The QQN paper uses the raw
``-g``; rescaling it measured better here: 127 instead of 334 iterations on the 10-d
Rosenbrock function of benchmarks/bench_optimizers.py, equal elsewhere.)
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..checks import check_positive_int, fail
from ._linalg import dot, norm
from .orient import Iterate, Orientation, _positive
from ..functional.optim import store_pair, two_loop
from .paths import CurvedPath, LinePath, OrthantPath, Path

__all__ = ["LBFGS", "OWLQN", "QQN"]

_EPS = np.finfo(np.float64).eps


class LBFGS(Orientation):
    """Limited-memory BFGS with ``history`` curvature pairs (default 10)."""

    def __init__(self, history: int = 10):
        self.history = check_positive_int(history, type(self).__name__, "history")
        self.reset()

    def reset(self) -> None:
        # pairs live in (history + 1, n) ring buffers, kept across resets: a new pair is
        # written into a free slot and joins _order (the slots oldest first) only when it
        # passes the curvature test. s.y and y.y are stored: each costs a pass over n entries.
        self._order: list[int] = []
        if not hasattr(self, "_s"):
            self._s = self._y = np.zeros((0, 0))
            self._sy = self._yy = np.zeros(0)
            self._dtype = np.dtype(np.float64)

    def start(self, problem: Any) -> None:
        # A float32 network's pairs are stored in float32: the two-loop recursion reads every
        # pair twice per iteration and is limited by memory bandwidth, so this halves its time.
        # The rounding (2^-24 relative) is far below what the pairs already carry: the network
        # sees float32(x), whose steps are off by ~1e-7 |x|, and computes float32 gradients.
        # The recursion itself runs in float64.
        dtypes = {np.dtype(p.dtype) for p in getattr(problem, "params", ())}
        self._dtype = np.dtype(np.float32) if dtypes == {np.dtype(np.float32)} else np.dtype(np.float64)

    @property
    def pairs(self) -> int:
        """Number of curvature pairs stored."""
        return len(self._order)

    # -- the two-loop recursion ------------------------------------------------------
    def apply_inverse_hessian(self, g: np.ndarray) -> np.ndarray:
        """``H g`` for the current estimate H (``g`` itself when no pair is stored)."""
        if not self._order:
            return g.copy()
        newest = self._order[-1]
        gamma = self._sy[newest] / self._yy[newest]
        return two_loop(np.ascontiguousarray(g, dtype=np.float64), self._s, self._y, 1.0 / self._sy,
                        np.array(self._order, dtype=np.int64), gamma)

    def _quasi_newton_step(self, g: np.ndarray) -> np.ndarray | None:
        """``-H g``, or None when there is no history or it fails to descend."""
        if not self._order:
            return None
        d = self.apply_inverse_hessian(g)
        np.negative(d, out=d)  # a fresh array: negate in place rather than allocate another
        dg = dot(d, g)
        # a finite d.g means every entry of d is finite; only an overflowing d.g needs the full check
        finite = math.isfinite(dg) or bool(np.all(np.isfinite(d)))
        if not finite or dg >= 0.0:
            self.reset()  # a broken estimate: start again from steepest descent
            return None
        return d

    def direction(self, it: Iterate) -> Path:
        d = self._quasi_newton_step(it.grad)
        if d is None:
            return _steepest(it.grad)
        return LinePath(d, initial_step=1.0)

    def accepted(self, old: Iterate, new: Iterate) -> None:
        slot = self._free_slot(new.x.size)
        products = store_pair(_flat(new.x), _flat(old.x), _flat(new.grad), _flat(old.grad), self._s[slot], self._y[slot])
        self._keep(slot, *self._products(slot, products))

    def _remember(self, s: np.ndarray, y: np.ndarray) -> None:
        """Store the pair (s, y) if it has positive curvature (s.y and y.y of the stored values)."""
        s, y = _flat(s), _flat(y)
        zero = np.zeros_like(s)
        slot = self._free_slot(s.size)
        products = store_pair(s, zero, y, zero, self._s[slot], self._y[slot])
        self._keep(slot, *self._products(slot, products))

    def _products(self, slot: int, fused: tuple[float, float]) -> tuple[float, float]:
        """s.y and y.y of a stored pair. float64 pairs: NumPy's sums, not the fused pass's (an
        ill-conditioned float64 fit is sensitive to the last bit of these over 200
        iterations); float32 pairs: the fused pass's float64 sums of the rounded values."""
        if self._s.dtype == np.float64:
            s, y = self._s[slot], self._y[slot]
            return dot(s, y), dot(y, y)
        return fused

    def _free_slot(self, n: int) -> int:
        """A ring slot not holding a kept pair (the buffers are (re)made for n entries when needed)."""
        if self._s.shape != (self.history + 1, n) or self._s.dtype != self._dtype:
            self._s = np.zeros((self.history + 1, n), dtype=self._dtype)
            self._y = np.zeros((self.history + 1, n), dtype=self._dtype)
            self._sy, self._yy = np.ones(self.history + 1), np.ones(self.history + 1)
            self._order = []
        return min(set(range(self.history + 1)) - set(self._order))

    def _keep(self, slot: int, sy: float, yy: float) -> None:
        if not (sy > _EPS * yy and sy > 0.0 and np.isfinite(sy) and np.isfinite(yy)):
            return  # no positive curvature along s: keeping it would break H
        self._sy[slot], self._yy[slot] = sy, yy
        self._order.append(slot)
        if len(self._order) > self.history:
            self._order.pop(0)  # the oldest slot becomes the free one

    def config(self) -> dict[str, Any]:
        return {"history": self.history}

    def state_dict(self) -> dict[str, Any]:
        if not self._order:
            return {"pairs": 0}
        return {"pairs": len(self._order), "s": self._s[self._order], "y": self._y[self._order]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset()
        for s, y in zip(state.get("s", ()), state.get("y", ())) if int(state.get("pairs", 0)) else ():
            self._remember(s, y)  # the stored values and the same kernel: the same s.y and y.y as when learned


def _flat(v: Any) -> np.ndarray:
    return np.ascontiguousarray(v, dtype=np.float64).reshape(-1)


def _steepest(g: np.ndarray) -> LinePath:
    size = norm(g)
    return LinePath(-g, initial_step=1.0 / size if size > 0 else 1.0)


class QQN(LBFGS):
    """Quadratic quasi-Newton: L-BFGS on a curved path from steepest descent (t ~ 0) to the L-BFGS point (t = 1)."""

    def direction(self, it: Iterate) -> Path:
        d = self._quasi_newton_step(it.grad)
        if d is None:
            return _steepest(it.grad)
        a = -it.grad * (norm(d) / norm(it.grad))
        return CurvedPath(a, d, initial_step=1.0)


class OWLQN(LBFGS):
    """Orthant-wise limited-memory quasi-Newton for ``loss + l1 * sum |x|``.

    ``params``: the Parameters that carry the L1 term (all of the problem's by default;
    e.g. leave biases out).
    """

    def __init__(self, l1: float = 1e-3, history: int = 10, params: Sequence[Any] | None = None):
        super().__init__(history)
        self.l1 = _positive(l1, "OWLQN", "l1")
        self._chosen = None if params is None else list(params)
        self.mask: np.ndarray | None = None

    def start(self, problem: Any) -> None:
        super().start(problem)
        if self._chosen is None:
            self.mask = np.ones(problem.size)
            return
        self.mask = np.zeros(problem.size)
        for p in self._chosen:
            index = problem.index_of(p, "OWLQN params")
            self.mask[problem.slices[index]] = 1.0

    def _mask(self, n: int) -> np.ndarray:
        if self.mask is None or self.mask.size != n:
            raise fail("OWLQN", "start(problem) before use (the Trainer calls it)", "no problem bound")
        return self.mask

    def penalty(self, x: np.ndarray) -> float:
        return self.l1 * float(np.abs(x * self._mask(x.size)).sum())

    def pseudo_gradient(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The minimum-norm subgradient of ``f + l1 |x|_1`` (g away from the L1 term)."""
        mask = self._mask(x.size)
        l1 = self.l1 * mask
        right, left = g + l1, g - l1  # one-sided derivatives at x = 0
        at_zero = np.where(right < 0, right, np.where(left > 0, left, 0.0))
        pg = np.where(x != 0, g + l1 * np.sign(x), at_zero)
        return np.where(mask > 0, pg, g)

    def direction(self, it: Iterate) -> Path:
        mask = self._mask(it.x.size)
        pg = self.pseudo_gradient(it.x, it.grad)
        d = self._quasi_newton_step(pg)
        initial: float | None = 1.0
        if d is None:
            d = -pg
            size = norm(pg)
            initial = 1.0 / size if size > 0 else 1.0
        # keep only the components that descend along the pseudo-gradient
        d = np.where((mask > 0) & (d * pg >= 0), 0.0, d)
        orthant = np.where(it.x != 0, np.sign(it.x), np.sign(-pg))
        return OrthantPath(d, it.x, orthant, self.l1, mask, initial_step=initial)

    def stationarity(self, it: Iterate) -> float:
        return norm(self.pseudo_gradient(it.x, it.grad))

    def config(self) -> dict[str, Any]:
        return {"l1": self.l1, "history": self.history}
