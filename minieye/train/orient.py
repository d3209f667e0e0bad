"""Orientations: which way to move, given the loss gradient at the current point.

Every orientation works on flat float64 vectors (the concatenation of the problem's
parameters, in ``problem.params`` order) and returns a Path (see ``paths``); the line
search chooses how far along it to go. First-order methods here:

    GradientDescent   d = -g
    Momentum          v <- mu v - g;  d = v               (Nesterov: d = mu v - g)
    Adam              m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
                      d = -m_hat / (sqrt(v_hat) + eps)   with bias-corrected m_hat, v_hat

Their "learning rate" is the step the line search takes (``FixedStep(rate)``), so
``Momentum + FixedStep(lr)`` is the textbook ``x += lr * v``. Quasi-Newton methods
(LBFGS, OWLQN, QQN) live in ``quasinewton``.

State that a checkpoint must keep (velocities, moments, counters) is exposed by
``state_dict()`` as JSON values and ndarrays, and restored by ``load_state_dict``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..checks import fail
from ._linalg import norm
from .paths import LinePath, Path

__all__ = ["Iterate", "Orientation", "GradientDescent", "Momentum", "Nesterov", "Adam"]


@dataclass
class Iterate:
    """One evaluated point: ``x`` (flat float64), ``loss`` (including any orientation
    penalty such as OWL-QN's L1 term) and ``grad``, the gradient of the network loss
    (with coordinates held at a bound by a constraint set to zero); ``raw_grad`` is the
    unmasked gradient when a constraint masked some coordinates (else None).

    ``grad`` is None while the backward pass has not run (``pending`` runs it): line
    searches that need only values leave it so for the steps they reject.
    """

    x: np.ndarray
    loss: float
    grad: np.ndarray | None
    raw_grad: np.ndarray | None = None
    pending: Callable[[], Any] | None = field(default=None, repr=False)

    @property
    def full_grad(self) -> np.ndarray:
        return self.grad if self.raw_grad is None else self.raw_grad


def _positive(value: Any, where: str, name: str) -> float:
    if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool) \
            or not np.isfinite(value) or value <= 0:
        raise fail(where, f"{name} a positive finite number", f"{name}={value!r}")
    return float(value)


def _fraction(value: Any, where: str, name: str) -> float:
    if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool) \
            or not 0 <= value < 1:
        raise fail(where, f"{name} in [0, 1)", f"{name}={value!r}")
    return float(value)


class Orientation:
    """Base class. Subclasses implement ``direction`` and, when they learn, ``accepted``.

    ``learns_from_steps``: whether ``accepted`` needs the gradient at the new point on
    the same batch (L-BFGS's curvature pairs); False lets the trainer skip that
    backward pass with mini-batches and FixedStep.

    Shapes: Iterate.x and Iterate.grad (n,) float64, n = problem.size; the Path too.
    """

    learns_from_steps = True

    def start(self, problem: Any) -> None:
        """Called once at the start of a run (after ``reset``) with the Problem."""

    def reset(self) -> None:
        """Forget everything learned (velocities, moments, curvature pairs)."""

    def direction(self, it: Iterate) -> Path:
        raise NotImplementedError

    def accepted(self, old: Iterate, new: Iterate) -> None:
        """The trainer moved from ``old`` to ``new`` (both evaluated on the same batch)."""

    def penalty(self, x: np.ndarray) -> float:
        """A term the orientation adds to the loss (OWL-QN's L1 norm); 0 by default."""
        return 0.0

    def stationarity(self, it: Iterate) -> float:
        """The gradient norm that the stop test compares with ``gradient_tolerance``."""
        return norm(it.grad)

    def config(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class GradientDescent(Orientation):
    """Steepest descent: ``d = -g``."""

    learns_from_steps = False

    def direction(self, it: Iterate) -> Path:
        return LinePath(-it.grad)


class Momentum(Orientation):
    """Heavy-ball momentum ``v <- momentum * v - g``; ``nesterov=True`` looks ahead (``d = momentum * v - g``)."""

    learns_from_steps = False

    def __init__(self, momentum: float = 0.9, nesterov: bool = False):
        self.momentum = _fraction(momentum, type(self).__name__, "momentum")
        self.nesterov = bool(nesterov)
        self.velocity: np.ndarray | None = None

    def reset(self) -> None:
        self.velocity = None

    def direction(self, it: Iterate) -> Path:
        v = -it.grad if self.velocity is None else self.momentum * self.velocity - it.grad
        self.velocity = v
        return LinePath(self.momentum * v - it.grad if self.nesterov else v.copy())

    def config(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def state_dict(self) -> dict[str, Any]:
        return {} if self.velocity is None else {"velocity": self.velocity}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        v = state.get("velocity")
        self.velocity = None if v is None else np.array(v, dtype=np.float64)


class Nesterov(Momentum):
    """Momentum with Nesterov's look-ahead (PyTorch's ``nesterov=True`` form)."""

    def __init__(self, momentum: float = 0.9):
        super().__init__(momentum, nesterov=True)

    def config(self) -> dict[str, Any]:
        return {"momentum": self.momentum}


class Adam(Orientation):
    """Adam (Kingma & Ba): a per-coordinate scaled direction of size about 1; pair it with ``FixedStep(lr)``."""

    learns_from_steps = False

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.beta1 = _fraction(beta1, "Adam", "beta1")
        self.beta2 = _fraction(beta2, "Adam", "beta2")
        self.eps = _positive(eps, "Adam", "eps")
        self.reset()

    def reset(self) -> None:
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None
        self.count = 0

    def direction(self, it: Iterate) -> Path:
        g = it.grad
        if self.m is None:
            self.m, self.v = np.zeros_like(g), np.zeros_like(g)
        self.count += 1
        self.m = self.beta1 * self.m + (1.0 - self.beta1) * g
        self.v = self.beta2 * self.v + (1.0 - self.beta2) * (g * g)
        m_hat = self.m / (1.0 - self.beta1 ** self.count)
        v_hat = self.v / (1.0 - self.beta2 ** self.count)
        return LinePath(-m_hat / (np.sqrt(v_hat) + self.eps))

    def config(self) -> dict[str, Any]:
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def state_dict(self) -> dict[str, Any]:
        if self.m is None:
            return {"count": self.count}
        return {"count": self.count, "m": self.m, "v": self.v}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state.get("count", 0))
        self.m = None if state.get("m") is None else np.array(state["m"], dtype=np.float64)
        self.v = None if state.get("v") is None else np.array(state["v"], dtype=np.float64)
