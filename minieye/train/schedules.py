"""Learning-rate schedules for ``FixedStep``: a factor of the rate as a function of the step count.

    search = train.FixedStep(1e-3, schedule=train.LinearWarmup(5).then(train.Cosine(45)), per="epoch")

A schedule maps k = 0, 1, 2, ... (iterations, or completed epochs with ``per="epoch"``)
to a factor; step k uses ``rate * schedule(k)``. The values are PyTorch's:

    StepDecay(step_size, gamma=0.1)        gamma ** (k // step_size)                     (StepLR)
    Cosine(total, min_factor=0.0)          m + (1 - m) (1 + cos(pi k / total)) / 2,      (CosineAnnealingLR,
                                           then m from k = total on                       eta_min = m * rate)
    LinearWarmup(steps, start_factor=0.1)  s + (1 - s) min(k, steps) / steps             (LinearLR)
    a * b                                  a(k) * b(k)                                   (ChainedScheduler)
    a.then(b, at=None)                     a(k) for k < at, then b(k - at); at defaults   (SequentialLR)
                                           to a warm-up's ``steps``

(CosineAnnealingLR rises again after ``total``; here the rate stays at its minimum.)
A schedule's ``config()`` is JSON, so checkpoints record it and refuse a resume with another.
"""
from __future__ import annotations

import math
from typing import Any

from ..checks import check_nonneg_int, check_positive_int, fail

__all__ = ["Schedule", "StepDecay", "Cosine", "LinearWarmup"]


def _factor(value: Any, where: str, name: str, low_open: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (0 < value if low_open else 0 <= value) or value > 1:
        raise fail(where, f"{name} in {'(0' if low_open else '[0'}, 1]", f"{name}={value!r}")
    return float(value)


class Schedule:
    """Base class: ``schedule(k) -> factor``; ``*`` multiplies two schedules, ``then`` chains them."""

    def __call__(self, k: int) -> float:
        raise NotImplementedError

    def __mul__(self, other: "Schedule") -> "Schedule":
        if not isinstance(other, Schedule):
            return NotImplemented
        return _Product(self, other)

    def then(self, other: "Schedule", at: int | None = None) -> "Schedule":
        """This schedule for k < ``at``, then ``other`` counted from 0 (``at``: this one's ``steps``)."""
        if not isinstance(other, Schedule):
            raise fail(f"{type(self).__name__}.then", "other a train schedule", repr(other))
        if at is None:
            at = getattr(self, "steps", None)
            if at is None:
                raise fail(f"{type(self).__name__}.then", "at (the step where the next schedule starts)", "None")
        return _Sequence(self, other, check_nonneg_int(at, f"{type(self).__name__}.then", "at"))

    def config(self) -> dict[str, Any]:
        return {"class": type(self).__name__, **vars(self)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class StepDecay(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` steps."""

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size = check_positive_int(step_size, "StepDecay", "step_size")
        self.gamma = _factor(gamma, "StepDecay", "gamma")

    def __call__(self, k: int) -> float:
        return self.gamma ** (k // self.step_size)


class Cosine(Schedule):
    """Half a cosine from 1 down to ``min_factor`` over ``total`` steps."""

    def __init__(self, total: int, min_factor: float = 0.0):
        self.total = check_positive_int(total, "Cosine", "total")
        self.min_factor = _factor(min_factor, "Cosine", "min_factor", low_open=False)

    def __call__(self, k: int) -> float:
        if k >= self.total:
            return self.min_factor
        return self.min_factor + (1.0 - self.min_factor) * (1.0 + math.cos(math.pi * k / self.total)) / 2.0


class LinearWarmup(Schedule):
    """From ``start_factor`` up to 1 in a straight line over ``steps`` steps, then 1."""

    def __init__(self, steps: int, start_factor: float = 0.1):
        self.steps = check_positive_int(steps, "LinearWarmup", "steps")
        self.start_factor = _factor(start_factor, "LinearWarmup", "start_factor")

    def __call__(self, k: int) -> float:
        return self.start_factor + (1.0 - self.start_factor) * min(k, self.steps) / self.steps


class _Product(Schedule):
    def __init__(self, first: Schedule, second: Schedule):
        self.first, self.second = first, second

    def __call__(self, k: int) -> float:
        return self.first(k) * self.second(k)

    def config(self) -> dict[str, Any]:
        return {"class": "Product", "first": self.first.config(), "second": self.second.config()}

    def __repr__(self) -> str:
        return f"{self.first!r} * {self.second!r}"


class _Sequence(Schedule):
    def __init__(self, first: Schedule, second: Schedule, at: int):
        self.first, self.second, self.at = first, second, at

    def __call__(self, k: int) -> float:
        return self.first(k) if k < self.at else self.second(k - self.at)

    def config(self) -> dict[str, Any]:
        return {"class": "Sequence", "first": self.first.config(), "second": self.second.config(), "at": self.at}

    def __repr__(self) -> str:
        return f"{self.first!r}.then({self.second!r}, at={self.at})"

