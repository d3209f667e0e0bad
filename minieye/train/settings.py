"""What a Trainer is given, checked (its parts, ``run``'s arguments), the line search's
resolution for the problem's dtype, and its stop tests (limits on iterations, epochs and
time, convergence, lack of progress), each returning ``(stop_reason, message)``, or
``("", "")`` to go on.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from ..checks import check_nonneg_int, check_optional_real, check_positive_int, fail_type
from .linesearch import ArmijoWolfe, LineSearch
from .monitor import Monitor
from .orient import Orientation
from .problem import Problem
from .quasinewton import LBFGS

__all__ = ["UNSET", "OutOfTime", "trainer_parts", "run_arguments", "loss_resolution", "limits",
           "converged", "no_progress", "nonfinite_message"]

_CALLBACK_HINT = "wrap a function fn(trainer, record) as train.Callback(fn)"
UNSET: Any = object()  # run(max_iterations) not given: 100, or no limit when epochs is given


class OutOfTime(Exception):
    """Raised inside a line search when the run's timeout has passed (the Trainer stops there)."""


def trainer_parts(problem: Any, orientation: Any, line_search: Any, monitors: Sequence[Any]) -> tuple:
    """The Trainer's arguments checked, with the defaults LBFGS() and ArmijoWolfe() filled in."""
    where = "Trainer"
    if not isinstance(problem, Problem):
        raise fail_type(where, "problem a train.Problem", type(problem).__name__, value=problem)
    orientation = LBFGS() if orientation is None else orientation
    line_search = ArmijoWolfe() if line_search is None else line_search
    if not isinstance(orientation, Orientation):
        raise fail_type(where, "orientation a train orientation (e.g. train.LBFGS())", repr(orientation),
                        value=orientation)
    if not isinstance(line_search, LineSearch):
        raise fail_type(where, "line_search a train line search (e.g. train.ArmijoWolfe())", repr(line_search),
                        value=line_search)
    if isinstance(monitors, Monitor):
        monitors = (monitors,)  # one monitor given alone
    try:
        monitors = tuple(monitors)
    except TypeError:
        raise fail_type(where, "monitors a sequence of train monitors", f"monitors={monitors!r}",
                        _CALLBACK_HINT if callable(monitors) else None) from None
    for i, m in enumerate(monitors):
        if not isinstance(m, Monitor):
            raise fail_type(where, "monitors a sequence of train monitors", f"monitors[{i}] is {m!r}",
                            _CALLBACK_HINT if callable(m) and not isinstance(m, type) else None, value=m)
    return problem, orientation, line_search, monitors


def run_arguments(max_iterations: Any, epochs: Any, timeout: Any, target_loss: Any, gradient_tolerance: Any,
                  tolerance: Any, patience: Any) -> tuple:
    """``Trainer.run``'s stop arguments, checked (ValueError naming the bad one)."""
    where = "Trainer.run"
    if max_iterations is UNSET:
        max_iterations = 100 if epochs is None else None
    if max_iterations is not None:
        max_iterations = check_nonneg_int(max_iterations, where, "max_iterations")
    if epochs is not None:
        epochs = check_nonneg_int(epochs, where, "epochs")
    return (max_iterations, epochs, check_optional_real(timeout, where, "timeout", positive=True),
            check_optional_real(target_loss, where, "target_loss", signed=True),
            check_optional_real(gradient_tolerance, where, "gradient_tolerance") or 0.0,
            check_optional_real(tolerance, where, "tolerance"), check_positive_int(patience, where, "patience"))


def loss_resolution(problem: Any) -> float:
    """The line search's resolution for ``problem``: a float32 network computes its loss in
    float32, where decreases below ~16 ulps are noise."""
    return 16 * max(float(np.finfo(p.dtype).eps) for p in problem.params)


def limits(trainer: Any, stop_iteration: int | None, stop_epoch: int | None, timeout: float | None,
           started: float) -> tuple[str, str]:
    """``stop_iteration`` and ``stop_epoch`` are totals (this call's budget added to where it began)."""
    if stop_iteration is not None and trainer.iteration >= stop_iteration:
        return "max_iterations", f"reached {stop_iteration} iterations"
    if stop_epoch is not None and trainer.epoch >= stop_epoch:
        return "epochs", f"completed {stop_epoch} epochs ({trainer.iteration} iterations)"
    if timeout is not None and time.perf_counter() - started >= timeout:
        return "timeout", f"ran for more than {timeout:g} s"
    return "", ""


def converged(trainer: Any, target_loss: float | None, gradient_tolerance: float) -> tuple[str, str]:
    loss = trainer.current.loss
    if target_loss is not None and loss <= target_loss:
        return "target_loss", f"loss {loss:.6g} <= target {target_loss:.6g}"
    norm = trainer.orientation.stationarity(trainer.current)
    if norm <= gradient_tolerance:
        return "gradient_tolerance", f"gradient norm {norm:.3g} <= {gradient_tolerance:.3g}"
    return "", ""


def no_progress(history: list, initial_loss: float, tolerance: float, patience: int) -> tuple[str, str]:
    if len(history) < patience:
        return "", ""
    before = history[-patience - 1].loss if len(history) > patience else initial_loss
    after = history[-1].loss
    gain = (before - after) / max(abs(before), np.finfo(np.float64).tiny)
    if gain < tolerance:
        return "no_progress", (f"relative improvement {gain:.3g} over the last {patience} iterations "
                               f"< tolerance {tolerance:.3g}")
    return "", ""


def nonfinite_message(problem: Any, where: str) -> str:
    """The "non_finite" stop message, naming the inputs or targets holding NaN or Inf, if any."""
    bad = problem.nonfinite_data()
    hint = f"; the data holds NaN or Inf in {', '.join(bad)}" if bad else ""
    return f"the loss or its gradient is not finite {where}{hint}; parameters left at the last finite point"


def step_failure(problem: Any, why: str, timeout: float | None) -> tuple[str, str]:
    """(stop_reason, message) for an iteration whose step failed; ``why`` from ``Trainer._step``."""
    if why == "timeout":
        return "timeout", f"ran for more than {timeout:g} s (stopped inside a line search)"
    if why == "non_finite":
        return "non_finite", nonfinite_message(problem, "at every trial step")
    if why == "non_finite_gradient":
        return "non_finite", nonfinite_message(problem, "(the gradient) at the accepted step")
    return ("no_descent" if why.startswith("no descent") else "line_search_failed"), why
