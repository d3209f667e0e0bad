"""Line searches: how far to go along the orientation's path.

A line search minimises (roughly) the scalar function ``phi(t) = loss(x + p(t))``.
It receives ``phi`` (a callable returning a Trial with the value and the slope
``phi'(t)``), ``phi(0)``, ``phi'(0) < 0`` and a first guess ``t0``, and returns the
accepted Trial or None when no acceptable step was found. With mini-batches every
call of ``phi`` within one search uses the same batch.

Conditions (Nocedal & Wright, ch. 3), with ``0 < c1 < c2 < 1``:

    sufficient decrease (Armijo):  phi(t) <= phi(0) + c1 t phi'(0)
    strong curvature (Wolfe):      |phi'(t)| <= c2 |phi'(0)|

A trial whose loss or gradient is not finite counts as "too far": every search
shrinks the step instead (nothing is zeroed or clipped silently).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from ..checks import check_positive_int, check_real, fail, fail_type
from .schedules import Schedule

__all__ = ["Trial", "LineSearch", "FixedStep", "Backtracking", "ArmijoWolfe", "Quadratic"]


@dataclass
class Trial:
    """One evaluation along the path: step ``t``, ``loss`` (inf when not finite), ``slope`` = phi'(t).

    ``point`` is the trainer's record of the evaluated point (an Iterate).
    """

    t: float
    loss: float
    slope: float
    finite: bool
    point: Any = None


Phi = Callable[[float], Trial]


def _below_resolution(t: float, slope0: float, loss0: float, resolution: float) -> bool:
    """True when the first-order decrease ``t |phi'(0)|`` is lost in the rounding of phi(0).

    Shrinking t further cannot show a real decrease: the search gives up instead of
    spending evaluations (this is how a converged run ends).
    """
    return abs(t * slope0) <= resolution * abs(loss0)


def _number(value: Any, where: str, name: str, low: float, high: float) -> float:
    """A real number strictly between ``low`` and ``high``."""
    if not low < check_real(value, where, name, signed=True) < high:
        raise fail(where, f"{name} in ({low}, {high})", f"{name}={value!r}")
    return float(value)


class LineSearch:
    """Base class. ``needs_descent``: whether the search requires ``phi'(0) < 0``;
    ``uses_slope``: whether it reads ``Trial.slope`` (False: the trainer skips the
    backward pass of trial steps, and Trial.slope is nan).

    ``compares_values``: whether it compares trial losses with ``phi(0)`` (False: only
    finiteness matters, so with mini-batches the trainer may evaluate the trial on the
    *next* batch and reuse that evaluation as the next iteration's start).

    ``resolution``: the relative change of the loss that rounding can fake (16 machine
    epsilons of the loss's dtype; the Trainer sets it from the parameters' dtype).

    Shapes: scalars only (t, phi(t), phi'(t)).
    """

    needs_descent = True
    uses_slope = True
    compares_values = True
    resolution = 16 * 2.0 ** -52

    def search(self, phi: Phi, loss0: float, slope0: float, t0: float) -> Trial | None:
        raise NotImplementedError

    def reset(self) -> None:
        pass

    def at_step(self, iteration: int, epoch: int) -> None:
        """Called by the trainer before each search with the iterations and epochs completed."""

    def config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class FixedStep(LineSearch):
    """Always step ``rate`` (halved only while the loss or gradient there is not finite).

    ``schedule`` (``train.Cosine(...)``, ``train.StepDecay(...)``, ``train.LinearWarmup(...)``
    and their combinations) scales the rate: step k uses ``rate * schedule(k)``, k counting
    iterations, or completed epochs with ``per="epoch"``. ``current_rate`` is the rate of
    the next step.
    """

    needs_descent = False
    uses_slope = False
    compares_values = False

    def __init__(self, rate: float = 1e-3, max_halvings: int = 30, schedule: Schedule | None = None,
                 per: str = "iteration"):
        self.rate = _number(rate, "FixedStep", "rate", 0.0, math.inf)
        self.max_halvings = check_positive_int(max_halvings, "FixedStep", "max_halvings")
        if schedule is not None and not isinstance(schedule, Schedule):
            raise fail_type("FixedStep", "schedule a train schedule (e.g. train.Cosine(100)) or None", repr(schedule),
                            value=schedule)
        if per not in ("iteration", "epoch"):
            raise fail("FixedStep", "per 'iteration' or 'epoch'", repr(per))
        self.schedule, self.per = schedule, per
        self.current_rate = self.rate if schedule is None else self.rate * schedule(0)

    def at_step(self, iteration: int, epoch: int) -> None:
        if self.schedule is not None:
            self.current_rate = self.rate * self.schedule(iteration if self.per == "iteration" else epoch)

    def search(self, phi: Phi, loss0: float, slope0: float, t0: float) -> Trial | None:
        t = self.current_rate
        for _ in range(self.max_halvings + 1):
            trial = phi(t)
            if trial.finite:
                return trial
            t *= 0.5
        return None

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"rate": self.rate, "max_halvings": self.max_halvings}
        if self.schedule is not None:
            config.update(schedule=self.schedule.config(), per=self.per)
        return config


class Backtracking(LineSearch):
    """Armijo backtracking: try ``t0``, multiply by ``shrink`` until sufficient decrease holds."""

    uses_slope = False

    def __init__(self, c1: float = 1e-4, shrink: float = 0.5, max_evaluations: int = 40):
        self.c1 = _number(c1, "Backtracking", "c1", 0.0, 1.0)
        self.shrink = _number(shrink, "Backtracking", "shrink", 0.0, 1.0)
        self.max_evaluations = check_positive_int(max_evaluations, "Backtracking", "max_evaluations")

    def search(self, phi: Phi, loss0: float, slope0: float, t0: float) -> Trial | None:
        t = t0
        for _ in range(self.max_evaluations):
            trial = phi(t)
            if trial.finite and trial.loss <= loss0 + self.c1 * t * slope0:
                return trial
            if trial.finite and _below_resolution(t, slope0, loss0, self.resolution):
                break
            t *= self.shrink
        return None

    def config(self) -> dict[str, Any]:
        return {"c1": self.c1, "shrink": self.shrink, "max_evaluations": self.max_evaluations}


def _cubic_minimizer(a: Trial, b: Trial) -> float:
    """Minimiser of the cubic matching value and slope at a and b (N&W eq. 3.59); nan if none."""
    if a.t == b.t:
        return math.nan
    d1 = a.slope + b.slope - 3.0 * (a.loss - b.loss) / (a.t - b.t)
    radicand = d1 * d1 - a.slope * b.slope
    if not radicand >= 0.0:
        return math.nan
    d2 = math.copysign(math.sqrt(radicand), b.t - a.t)
    denominator = b.slope - a.slope + 2.0 * d2
    if denominator == 0.0:
        return math.nan
    return b.t - (b.t - a.t) * (b.slope + d2 - d1) / denominator


def _quadratic_minimizer(a: Trial, b: Trial) -> float:
    """Minimiser of the parabola through a's value and slope and b's value; nan if not convex."""
    dt = b.t - a.t
    curvature = (b.loss - a.loss - a.slope * dt) / (dt * dt) if dt else math.nan
    if not curvature > 0.0:
        return math.nan
    return a.t - a.slope / (2.0 * curvature)


class ArmijoWolfe(LineSearch):
    """Strong Wolfe line search by bracketing and zoom (Nocedal & Wright, Alg. 3.5 and 3.6).

    ``c1 = 1e-4`` and ``c2 = 0.9`` suit quasi-Newton directions (use ``c2 = 0.1`` for
    conjugate-gradient-like uses). Trial steps inside a bracket come from the cubic
    (or quadratic, when a slope is missing) interpolant, kept at least 10 % away
    from both ends; non-finite trials shrink the bracket by bisection.
    """

    def __init__(self, c1: float = 1e-4, c2: float = 0.9, max_evaluations: int = 20,
                 max_step: float = 1e20):
        self.c1 = _number(c1, "ArmijoWolfe", "c1", 0.0, 1.0)
        self.c2 = _number(c2, "ArmijoWolfe", "c2", self.c1, 1.0)
        self.max_evaluations = check_positive_int(max_evaluations, "ArmijoWolfe", "max_evaluations")
        self.max_step = _number(max_step, "ArmijoWolfe", "max_step", 0.0, math.inf)

    def config(self) -> dict[str, Any]:
        return {"c1": self.c1, "c2": self.c2, "max_evaluations": self.max_evaluations,
                "max_step": self.max_step}

    def _armijo(self, trial: Trial, loss0: float, slope0: float) -> bool:
        return trial.finite and trial.loss <= loss0 + self.c1 * trial.t * slope0

    def _curvature(self, trial: Trial, slope0: float) -> bool:
        return abs(trial.slope) <= -self.c2 * slope0

    def search(self, phi: Phi, loss0: float, slope0: float, t0: float) -> Trial | None:
        self._budget = self.max_evaluations
        previous = Trial(0.0, loss0, slope0, True)
        t = min(t0, self.max_step)
        while self._budget > 0:
            self._budget -= 1
            trial = phi(t)
            if not self._armijo(trial, loss0, slope0) or (previous.t > 0 and trial.loss >= previous.loss):
                return self._zoom(phi, previous, trial, loss0, slope0)
            if self._curvature(trial, slope0):
                return trial
            if trial.slope >= 0:
                return self._zoom(phi, trial, previous, loss0, slope0)
            if t >= self.max_step:
                return trial  # sufficient decrease at the largest step allowed
            guess = _cubic_minimizer(previous, trial)
            t_next = min(max(guess, 1.5 * t), 8.0 * t) if math.isfinite(guess) and guess > t else 4.0 * t
            previous, t = trial, min(t_next, self.max_step)
        return previous if previous.t > 0 else None

    def _zoom(self, phi: Phi, lo: Trial, hi: Trial, loss0: float, slope0: float) -> Trial | None:
        """``lo`` satisfies Armijo with the lowest loss seen; the minimiser lies between lo and hi."""
        while self._budget > 0:
            width = hi.t - lo.t
            if abs(width) <= 1e-14 * max(abs(lo.t), abs(hi.t)):
                break  # the bracket is below floating-point resolution
            if hi.finite:
                guess = _cubic_minimizer(lo, hi)
                if not math.isfinite(guess):
                    guess = _quadratic_minimizer(lo, hi)
            else:
                guess = math.nan
            low_end, high_end = sorted((lo.t + 0.1 * width, hi.t - 0.1 * width))
            if not math.isfinite(guess) or not low_end <= guess <= high_end:
                guess = lo.t + 0.5 * width
            self._budget -= 1
            trial = phi(guess)
            if not self._armijo(trial, loss0, slope0) or trial.loss >= lo.loss:
                hi = trial
                if lo.t == 0 and trial.finite and _below_resolution(trial.t, slope0, loss0, self.resolution):
                    break
                continue
            if self._curvature(trial, slope0):
                return trial
            if trial.slope * (hi.t - lo.t) >= 0:
                hi = lo
            lo = trial
        return lo if lo.t > 0 else None


class Quadratic(LineSearch):
    """Interpolating search: jump to the minimum of the parabola through phi(0), phi'(0) and phi(t).

    Stops when a step satisfies Armijo and ``|phi'(t)| <= c2 |phi'(0)|``, or returns
    the best Armijo step after ``max_evaluations``. Exact in one step on a quadratic.
    """

    def __init__(self, c1: float = 1e-4, c2: float = 0.5, max_evaluations: int = 20):
        self.c1 = _number(c1, "Quadratic", "c1", 0.0, 1.0)
        self.c2 = _number(c2, "Quadratic", "c2", self.c1, 1.0)
        self.max_evaluations = check_positive_int(max_evaluations, "Quadratic", "max_evaluations")

    def config(self) -> dict[str, Any]:
        return {"c1": self.c1, "c2": self.c2, "max_evaluations": self.max_evaluations}

    def search(self, phi: Phi, loss0: float, slope0: float, t0: float) -> Trial | None:
        origin = Trial(0.0, loss0, slope0, True)
        best: Trial | None = None
        t = t0
        for _ in range(self.max_evaluations):
            trial = phi(t)
            if not trial.finite:
                t *= 0.25
                continue
            if trial.loss <= loss0 + self.c1 * t * slope0:
                if best is None or trial.loss < best.loss:
                    best = trial
                if abs(trial.slope) <= -self.c2 * slope0:
                    return trial
            guess = _quadratic_minimizer(origin, trial)
            t_next = min(max(guess, 0.1 * t), 10.0 * t) if math.isfinite(guess) else 4.0 * t
            if abs(t_next - t) <= 1e-3 * t and best is not None:
                break
            t = t_next
        return best
