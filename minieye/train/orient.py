"""Orientations: which way to move, given the loss gradient at the current point.

Every orientation works on flat float64 vectors (the concatenation of the problem's
parameters, in ``problem.params`` order) and returns a Path (see ``paths``); the line
search chooses how far along it to go. First-order methods here:

    GradientDescent   d = -g
    Momentum          v <- mu v - g;  d = v               (Nesterov: d = mu v - g)
    Adam              m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
                      d = -m_hat / (sqrt(v_hat) + eps)   with bias-corrected m_hat, v_hat
    AdamW             Adam's d - weight_decay * x        (decoupled weight decay)

``clip_norm`` (these four): the gradient is scaled by ``min(1, clip_norm / (|g| + 1e-6))``
first, as PyTorch's ``clip_grad_norm_`` does, |g| being the norm over all parameters.

Their "learning rate" is the step the line search takes (``FixedStep(rate)``), so
``Momentum + FixedStep(lr)`` is the textbook ``x += lr * v``. Quasi-Newton methods
(LBFGS, OWLQN, QQN) live in ``quasinewton``.

State that a checkpoint must keep (velocities, moments, counters) is exposed by
``state_dict()`` as JSON values and ndarrays, and restored by ``load_state_dict``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..checks import check_bool, check_optional_real, check_real, fail, fail_type
from ..functional.optim import adam_direction
from ._linalg import norm
from .paths import LinePath, Path

__all__ = ["Iterate", "Orientation", "GradientDescent", "Momentum", "Nesterov", "Adam", "AdamW"]


@dataclass
class Iterate:
    """One evaluated point: ``x`` (flat float64), ``loss`` (including any orientation
    penalty such as OWL-QN's L1 term) and ``grad``, the gradient of the network loss
    (with coordinates held at a bound by a constraint set to zero); ``raw_grad`` is the
    unmasked gradient when a constraint masked some coordinates (else None).

    ``grad`` is None while the backward pass has not run (``pending`` runs it): line
    searches that need only values leave it so for the steps they reject. ``buffers``: the
    trainer's snapshot of the layers' buffers right after a trial's evaluation.
    """

    x: np.ndarray
    loss: float
    grad: np.ndarray | None
    raw_grad: np.ndarray | None = None
    pending: Callable[[], Any] | None = field(default=None, repr=False)
    buffers: Any = field(default=None, repr=False)  # the layers' buffers after this evaluation (LayerBuffers)

    @property
    def full_grad(self) -> np.ndarray:
        return self.grad if self.raw_grad is None else self.raw_grad


def _clip_norm(value: Any, where: str) -> float | None:
    return check_optional_real(value, where, "clip_norm", positive=True)


def _clipped(g: np.ndarray, clip_norm: float | None) -> np.ndarray:
    """``g`` scaled to norm ``clip_norm`` when longer (PyTorch's clip_grad_norm_, its 1e-6 included)."""
    if clip_norm is None:
        return g
    scale = clip_norm / (norm(g) + 1e-6)
    return g * scale if scale < 1.0 else g


def _with_clip(config: dict[str, Any], clip_norm: float | None) -> dict[str, Any]:
    return config if clip_norm is None else {**config, "clip_norm": clip_norm}


def _fraction(value: Any, where: str, name: str) -> float:
    """A momentum or decay rate: a real number in [0, 1)."""
    if check_real(value, where, name, signed=True) < 0 or value >= 1:
        raise fail(where, f"{name} in [0, 1)", f"{name}={value!r}")
    return float(value)


_LEARNING_RATE = ("the learning rate belongs to the line search: pass train.FixedStep({value!r}) as the "
                  "Trainer's line_search")
_TORCH_NAMES = {"lr": _LEARNING_RATE, "learning_rate": _LEARNING_RATE, "betas": "give beta1= and beta2= separately"}


class Orientation:
    """Base class. Subclasses implement ``direction`` and, when they learn, ``accepted``.

    ``learns_from_steps``: whether ``accepted`` needs the gradient at the new point on
    the same batch (L-BFGS's curvature pairs); False lets the trainer skip that
    backward pass with mini-batches and FixedStep.

    Shapes: Iterate.x and Iterate.grad (n,) float64, n = problem.size; the Path too.
    """

    learns_from_steps = True

    def __new__(cls, *args: Any, **kwargs: Any) -> "Orientation":
        # PyTorch's optimizer arguments that live elsewhere here: say where, not just "unexpected keyword"
        for name, instead in _TORCH_NAMES.items():
            if name in kwargs:
                raise fail_type(cls.__name__, f"no {name!r} argument", f"{name}={kwargs[name]!r}",
                                instead.format(value=kwargs[name]))
        return super().__new__(cls)

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

    def settings(self, problem: Any) -> dict[str, Any]:
        """``config()`` plus what depends on the problem; a checkpoint resumes only with equal settings."""
        return self.config()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class GradientDescent(Orientation):
    """Steepest descent: ``d = -g`` (``g`` clipped to ``clip_norm`` when given)."""

    learns_from_steps = False

    def __init__(self, clip_norm: float | None = None):
        self.clip_norm = _clip_norm(clip_norm, "GradientDescent")

    def direction(self, it: Iterate) -> Path:
        return LinePath(-_clipped(it.grad, self.clip_norm))

    def config(self) -> dict[str, Any]:
        return _with_clip({}, self.clip_norm)


class Momentum(Orientation):
    """Heavy-ball momentum ``v <- momentum * v - g``; ``nesterov=True`` looks ahead (``d = momentum * v - g``)."""

    learns_from_steps = False

    def __init__(self, momentum: float = 0.9, nesterov: bool = False, clip_norm: float | None = None):
        self.momentum = _fraction(momentum, type(self).__name__, "momentum")
        self.nesterov = check_bool(nesterov, type(self).__name__, "nesterov")
        self.clip_norm = _clip_norm(clip_norm, type(self).__name__)
        self.velocity: np.ndarray | None = None

    def reset(self) -> None:
        self.velocity = None

    def direction(self, it: Iterate) -> Path:
        g = _clipped(it.grad, self.clip_norm)
        v = -g if self.velocity is None else self.momentum * self.velocity - g
        self.velocity = v
        return LinePath(self.momentum * v - g if self.nesterov else v.copy())

    def config(self) -> dict[str, Any]:
        return _with_clip({"momentum": self.momentum, "nesterov": self.nesterov}, self.clip_norm)

    def state_dict(self) -> dict[str, Any]:
        return {} if self.velocity is None else {"velocity": self.velocity}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        v = state.get("velocity")
        self.velocity = None if v is None else np.array(v, dtype=np.float64)


class Nesterov(Momentum):
    """Momentum with Nesterov's look-ahead (PyTorch's ``nesterov=True`` form)."""

    def __init__(self, momentum: float = 0.9, clip_norm: float | None = None):
        super().__init__(momentum, nesterov=True, clip_norm=clip_norm)

    def config(self) -> dict[str, Any]:
        return _with_clip({"momentum": self.momentum}, self.clip_norm)


class Adam(Orientation):
    """Adam (Kingma & Ba): a per-coordinate scaled direction of size about 1; pair it with ``FixedStep(lr)``."""

    learns_from_steps = False

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, clip_norm: float | None = None):
        where = type(self).__name__
        self.beta1 = _fraction(beta1, where, "beta1")
        self.beta2 = _fraction(beta2, where, "beta2")
        self.eps = check_real(eps, where, "eps", positive=True)
        self.clip_norm = _clip_norm(clip_norm, where)
        self.reset()

    def reset(self) -> None:
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None
        self.count = 0

    def direction(self, it: Iterate) -> Path:
        g = np.ascontiguousarray(_clipped(it.grad, self.clip_norm), dtype=np.float64)
        if self.m is None:
            self.m, self.v = np.zeros_like(g), np.zeros_like(g)
        self.count += 1
        # one fused pass: the moments in place, m_hat / (sqrt(v_hat) + eps) into a new vector
        return LinePath(adam_direction(g, self.m, self.v, self.beta1, self.beta2, 1.0 - self.beta1 ** self.count,
                                       1.0 - self.beta2 ** self.count, self.eps, np.empty_like(g)))

    def config(self) -> dict[str, Any]:
        return _with_clip({"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}, self.clip_norm)

    def state_dict(self) -> dict[str, Any]:
        if self.m is None:
            return {"count": self.count}
        return {"count": self.count, "m": self.m.copy(), "v": self.v.copy()}  # updated in place later

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state.get("count", 0))
        self.m = None if state.get("m") is None else np.array(state["m"], dtype=np.float64)
        self.v = None if state.get("v") is None else np.array(state["v"], dtype=np.float64)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as PyTorch's AdamW.

    The direction is Adam's minus ``weight_decay * x``, so with ``FixedStep(lr)`` a step is
    ``x <- x - lr * weight_decay * x - lr * m_hat / (sqrt(v_hat) + eps)``: the decay does
    not pass through Adam's scaling. ``params``: the Parameters that decay (all of the
    problem's by default; leave biases and normalisation weights out by listing the others).
    """

    def __init__(self, weight_decay: float = 0.01, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 params: Sequence[Any] | None = None, clip_norm: float | None = None):
        super().__init__(beta1, beta2, eps, clip_norm)
        self.weight_decay = check_real(weight_decay, "AdamW", "weight_decay")
        self._chosen = None if params is None else list(params)
        self._decay: np.ndarray | None = None  # weight_decay per coordinate when only some parameters decay

    def start(self, problem: Any) -> None:
        if self._chosen is None:
            self._decay = None
            return
        self._decay = np.zeros(problem.size)
        for i in self._positions(problem):
            self._decay[problem.slices[i]] = self.weight_decay

    def _positions(self, problem: Any) -> list[int]:
        return sorted(problem.index_of(p, "AdamW params") for p in self._chosen)

    def settings(self, problem: Any) -> dict[str, Any]:
        """The config plus, when ``params`` was given, their positions in ``problem.params``."""
        if self._chosen is None:
            return self.config()
        return {**self.config(), "params": self._positions(problem)}

    def direction(self, it: Iterate) -> Path:
        d = super().direction(it).direction
        decay = self.weight_decay if self._decay is None else self._decay
        return LinePath(d - decay * it.x)

    def config(self) -> dict[str, Any]:
        return {"weight_decay": self.weight_decay, **super().config()}

