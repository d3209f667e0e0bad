"""The training loop: orientation + line search + monitors + stop conditions.

One iteration (MindsEye's iterator, orienter, stepper and monitor):

1. with mini-batches, draw a batch and evaluate loss and gradient at the current point;
2. the orientation turns the gradient into a path p(t) (a line, or QQN's curve),
   projected onto the constraints (Box, Simplex) when there are any;
3. the line search picks t, evaluating ``phi(t) = loss(x + p(t))`` on the same batch;
4. the orientation learns from the accepted step (L-BFGS pairs), a Record is
   appended to the history and the monitors see it.

If the line search finds no acceptable step, a stateful orientation is reset and the
iteration retried once from steepest descent; a second failure stops the run
("line_search_failed": usually converged to machine precision). A non-finite loss or
gradient at the start of an iteration stops the run ("non_finite") and every
non-finite trial inside a line search is rejected; the parameters are always left
at the last point whose loss and gradient were finite.
"""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

import numpy as np

from ..checks import check_nonneg_int, check_positive_int, check_real, fail
from ._linalg import norm
from .linesearch import ArmijoWolfe, LineSearch, Trial
from .monitor import Monitor
from .orient import GradientDescent, Iterate, Orientation
from .paths import ProjectedPath
from .problem import Problem
from .quasinewton import LBFGS
from .result import STOP_REASONS, Record, Result

__all__ = ["Trainer", "Result", "Record", "STOP_REASONS"]

def _optional_number(value: Any, where: str, name: str, **sign: bool) -> float | None:
    return None if value is None else check_real(value, where, name, **sign)


class Trainer:
    """Minimise ``problem`` with ``orientation`` (default LBFGS()) and ``line_search`` (default ArmijoWolfe()).

    Shapes: the parameters keep their shapes; internally they are one float64 vector.
    """

    def __init__(self, problem: Problem, orientation: Orientation | None = None,
                 line_search: LineSearch | None = None, monitors: Sequence[Monitor] = ()):
        where = "Trainer"
        if not isinstance(problem, Problem):
            raise fail(where, "problem a train.Problem", type(problem).__name__)
        orientation = LBFGS() if orientation is None else orientation
        line_search = ArmijoWolfe() if line_search is None else line_search
        if not isinstance(orientation, Orientation):
            raise fail(where, "orientation a train orientation (e.g. train.LBFGS())", repr(orientation),
                       "pass an instance, not the class" if isinstance(orientation, type) else None)
        if not isinstance(line_search, LineSearch):
            raise fail(where, "line_search a train line search (e.g. train.ArmijoWolfe())", repr(line_search),
                       "pass an instance, not the class" if isinstance(line_search, type) else None)
        monitors = tuple(monitors)
        for i, m in enumerate(monitors):
            if not isinstance(m, Monitor):
                raise fail(where, "monitors a sequence of train monitors", f"monitors[{i}] is {m!r}")
        self.problem, self.orientation, self.line_search, self.monitors = problem, orientation, line_search, monitors
        self.limits: dict[str, Any] = {}
        self._clear()

    # -- state ----------------------------------------------------------------------------
    def _clear(self) -> None:
        self.iteration = 0
        self.evaluations = 0
        self.history: list[Record] = []
        self.current: Iterate | None = None
        self.initial_loss = math.nan
        self.stale = False  # the current evaluation belongs to an old mini-batch
        self._next_batch: Any = None  # see _ahead
        self._behind = False  # this iteration's ahead trial was not finite: _next_batch still to evaluate
        self.last_step: float | None = None
        self.last_slope: float | None = None
        self.elapsed_before = 0.0
        self._constrained = bool(self.problem.constraints)
        self._loaded: np.ndarray | None = None  # the vector the parameters hold, when the trainer wrote it

    def _evaluate(self, x: np.ndarray, batch: np.ndarray | None, gradient: bool = True) -> tuple[Iterate, bool]:
        """The loss at ``x`` (and its gradient unless ``gradient`` is False); whether both are finite."""
        self.problem.set_vector(x)
        self._loaded = x
        loss, pending = self.problem.forward_vector(batch)
        self.evaluations += 1
        total = loss + self.orientation.penalty(x) if math.isfinite(loss) else loss
        point = Iterate(x, total, None, None, pending)
        if not gradient or not math.isfinite(total):
            return point, math.isfinite(total)
        return point, self._complete(point)

    def _complete(self, point: Iterate) -> bool:
        """Run the pending backward pass of ``point``; whether its gradient is finite."""
        if point.grad is not None:
            return True
        if self._loaded is not point.x:  # layers read their parameters during backward
            self.problem.set_vector(point.x)
            self._loaded = point.x
        grad = point.pending()
        point.pending, point.grad = None, grad
        if not np.isfinite(grad).all():
            return False
        if self._constrained:  # only feasible directions reach the orientation
            point.grad, point.raw_grad = self.problem.reduce_gradient(point.x, grad), grad
        return True

    def _start(self) -> str | None:
        self._clear()
        self.orientation.reset()
        self.line_search.reset()
        self.orientation.start(self.problem)
        self._set_resolution()
        x = self.problem.get_vector()
        x = self.problem.project(x)
        self._batch = self.problem.draw_batch()
        current, finite = self._evaluate(x, self._batch)
        self.initial_loss = current.loss
        if not finite:
            return self._nonfinite_message("at the starting point")
        self.current = current
        return None

    def _set_resolution(self) -> None:
        # a float32 network computes its loss in float32: decreases below ~16 ulps are noise
        eps = max(float(np.finfo(p.dtype).eps) for p in self.problem.params)
        self.line_search.resolution = 16 * eps

    def _nonfinite_message(self, where: str) -> str:
        bad = self.problem.nonfinite_data()
        hint = f"; the data holds NaN or Inf in {', '.join(bad)}" if bad else ""
        return f"the loss or its gradient is not finite {where}{hint}; parameters left at the last finite point"

    # -- one iteration ------------------------------------------------------------------------
    def _phi(self, path: Any, x: np.ndarray, batch: np.ndarray | None, tally: list[int]):
        def phi(t: float) -> Trial:
            if isinstance(path, ProjectedPath):
                x_t = path.point(t)  # P(x + (P - x)): x + (P - x) may round one ulp outside
            else:
                x_t = x + path.displacement(t)
            point, finite = self._evaluate(x_t, batch, gradient=self.line_search.uses_slope)
            tally[0] += 1
            if not finite:
                return Trial(t, math.inf, math.nan, False, point)
            if point.grad is None:  # a values-only search: the backward pass waits for acceptance
                tally[1] += 1
                return Trial(t, point.loss, math.nan, True, point)
            with np.errstate(over="ignore", invalid="ignore"):
                slope = path.slope(t, x_t, point.full_grad)
            if not math.isfinite(slope):
                return Trial(t, math.inf, math.nan, False, point)
            tally[1] += 1
            return Trial(t, point.loss, slope, True, point)
        return phi

    def _path(self, current: Iterate) -> Any:
        path = self.orientation.direction(current)
        if self._constrained:
            path = ProjectedPath(path, current.x, self.problem)
        return path

    def _initial_step(self, path: Any, slope0: float, current: Iterate) -> float:
        if path.initial_step is not None:
            t0 = path.initial_step
        elif self.last_step is not None and self.last_slope:
            t0 = self.last_step * self.last_slope / slope0  # N&W (3.60): same first-order change
        else:
            size = norm(current.grad)
            t0 = 1.0 / size if size > 0 else 1.0
        return t0 if math.isfinite(t0) and t0 > 0 else 1.0

    def _step(self) -> tuple[Trial | None, str]:
        current = self.current
        tally = [0, 0]  # trials, finite trials
        for attempt in range(2):
            path = self._path(current)
            slope0 = path.slope(0.0, current.x, current.full_grad)
            if self.line_search.needs_descent and not slope0 < 0:
                if attempt == 0 and not isinstance(self.orientation, GradientDescent):
                    self.orientation.reset()
                    continue
                return None, (f"no descent direction (slope {slope0:.3g} along the path, gradient norm "
                              f"{self.orientation.stationarity(current):.3g}): a gradient too small to show "
                              "a slope, a constrained corner, or a gradient that is not finite along it")
            t0 = self._initial_step(path, slope0, current)
            phi = self._phi(path, current.x, self._batch, tally)
            if self._ahead():
                phi = self._phi_ahead(phi, self._phi(path, current.x, self._upcoming(), tally))
            trial = self.line_search.search(phi,
                                            current.loss, slope0, t0)
            if trial is not None:
                self.last_step, self.last_slope = trial.t, slope0
                if self._needs_gradient() and not self._complete(trial.point):
                    return None, "non_finite_gradient"
                return trial, ""
            if isinstance(self.orientation, GradientDescent):
                break
            self.orientation.reset()  # forget a misleading curvature model and retry once
        if tally[0] and not tally[1]:
            return None, "non_finite"
        return None, (f"the line search found no acceptable step after {tally[0]} evaluations "
                      "(converged to machine precision, or a gradient that does not match the loss)")

    def _ahead(self) -> bool:
        """Whether trial steps are evaluated on the next mini-batch: when the line search
        only checks that the loss stays finite (FixedStep) and the orientation needs no
        gradient at the new point on the old batch, the check and the next iteration's
        evaluation are one forward pass (one forward and one backward per iteration)."""
        return (self.problem.batch_size is not None and not self.line_search.compares_values
                and not self.orientation.learns_from_steps)

    def _upcoming(self) -> Any:
        if self._next_batch is None:  # drawn once per iteration, kept across a retried search
            self._next_batch = self.problem.draw_batch()
        return self._next_batch

    def _phi_ahead(self, on_old: Any, on_next: Any) -> Any:
        """The first trial on the next batch; if it is not finite there (a bad row in the new
        batch, or a step too long), fall back to the old batch for this search, as without
        ``_ahead``: the next iteration then evaluates the new batch itself and says which."""
        def phi(t: float) -> Trial:
            if not self._behind:
                trial = on_next(t)
                if trial.finite:
                    return trial
                self._behind = True
            return on_old(t)
        return phi

    def _needs_gradient(self) -> bool:
        """Whether the accepted point's gradient is used: always with full batches (the next
        iteration starts from it), with mini-batches only for L-BFGS-like orientations."""
        return self.problem.batch_size is None or self.orientation.learns_from_steps

    # -- the loop -------------------------------------------------------------------------------
    def run(self, max_iterations: int | None = 100, timeout: float | None = None,
            target_loss: float | None = None, gradient_tolerance: float = 0.0,
            tolerance: float | None = None, patience: int = 10,
            resume_from: Any = None) -> Result:
        """Train until a stop condition holds; return a Result.

        Each call starts afresh from the parameters' current values (orientation memory,
        history and counters cleared; the problem's RNG continues where it was), unless
        ``resume_from`` names a checkpoint, which restores all of that state.

        Args:
            max_iterations: stop after this many iterations in total (those before a
                resumed checkpoint count); None: no limit.
            timeout: stop after this many seconds (checked between iterations).
            target_loss: stop once the loss is at or below this value.
            gradient_tolerance: stop once the gradient norm (projected, or OWL-QN's
                pseudo-gradient) is at or below this value.
            tolerance, patience: stop when the relative improvement of the loss over the
                last ``patience`` iterations is below ``tolerance`` (None: never).
            resume_from: a checkpoint path (see ``train.Checkpoint``) to continue from.
        """
        where = "Trainer.run"
        if max_iterations is not None:
            max_iterations = check_nonneg_int(max_iterations, where, "max_iterations")
        timeout = _optional_number(timeout, where, "timeout", positive=True)
        target_loss = _optional_number(target_loss, where, "target_loss", signed=True)
        gradient_tolerance = _optional_number(gradient_tolerance, where, "gradient_tolerance") or 0.0
        tolerance = _optional_number(tolerance, where, "tolerance")
        patience = check_positive_int(patience, where, "patience")
        self.limits = {"max_iterations": max_iterations, "timeout": timeout, "target_loss": target_loss}
        started = time.perf_counter()
        if resume_from is not None:
            from .checkpoint import load_checkpoint
            load_checkpoint(self, resume_from)
            problem_message = None
        else:
            problem_message = self._start()
        for m in self.monitors:
            m.start(self)
        if problem_message:
            reason, message = "non_finite", problem_message
        else:
            try:
                reason, message = self._loop(max_iterations, timeout, target_loss, gradient_tolerance,
                                             tolerance, patience, started)
            except KeyboardInterrupt:  # Ctrl-C: keep the last good point and report, like any other stop
                reason, message = "interrupted", f"interrupted by the user after {self.iteration} iterations"
            finally:
                if self.current is not None:
                    self.problem.set_vector(self.current.x)  # the last good point, even after a failed trial
        self.elapsed_before += time.perf_counter() - started
        result = Result(
            loss=self.current.loss if self.current is not None else self.initial_loss,
            iterations=self.iteration, history=list(self.history), stop_reason=reason, message=message,
            initial_loss=self.initial_loss, evaluations=self.evaluations, elapsed=self.elapsed_before)
        for m in self.monitors:
            m.finish(self, result)
        return result

    def _loop(self, max_iterations: int | None, timeout: float | None, target_loss: float | None,
              gradient_tolerance: float, tolerance: float | None, patience: int,
              started: float) -> tuple[str, str]:
        """Iterate until a stop condition holds; return (stop_reason, message)."""
        while True:
            self._loaded = None  # monitors may have touched the parameters
            reason, message = self._limits(max_iterations, timeout, started)
            if reason:
                return reason, message
            if self.stale:  # a new mini-batch: re-evaluate the current point on it
                drawn, self._next_batch, self._behind = self._next_batch, None, False
                self._batch = self.problem.draw_batch() if drawn is None else drawn
                current, finite = self._evaluate(self.current.x, self._batch)
                if not finite:
                    return "non_finite", self._nonfinite_message(f"on the mini-batch of iteration {self.iteration + 1}")
                self.current, self.stale = current, False
            elif self.current.grad is None and not self._complete(self.current):  # evaluated ahead
                return "non_finite", self._nonfinite_message(f"(the gradient) on the mini-batch of iteration "
                                                             f"{self.iteration + 1}")
            reason, message = self._converged(target_loss, gradient_tolerance)
            if reason:
                return reason, message
            trial, why = self._step()
            if trial is None:
                if why == "non_finite":
                    return "non_finite", self._nonfinite_message("at every trial step")
                if why == "non_finite_gradient":
                    return "non_finite", self._nonfinite_message("(the gradient) at the accepted step")
                return ("no_descent" if why.startswith("no descent") else "line_search_failed"), why
            self.orientation.accepted(self.current, trial.point)
            start, self.current = self.current, trial.point
            if self._next_batch is not None and not self._behind:  # evaluated on the next batch: keep its backward
                self._batch, self._next_batch, self.stale = self._next_batch, None, False
            else:
                self.current.pending = None  # free the activations kept for a backward pass
                self.stale = self.problem.batch_size is not None
            self.iteration += 1
            # the gradient norm at the new point, or at the start when that was not computed
            measured = self.current if self.current.grad is not None else start
            record = Record(self.iteration, self.current.loss, trial.t, self.orientation.stationarity(measured),
                            self.elapsed_before + time.perf_counter() - started, self.evaluations)
            self.history.append(record)
            for m in self.monitors:  # every monitor sees every iteration, even after one asked to stop
                note = m.iteration(self, record)
                if note and not reason:
                    reason, message = "monitor", str(note)
            if not reason and tolerance is not None:
                reason, message = self._no_progress(tolerance, patience)
            if reason:
                return reason, message

    def resume(self, path: Any, **run_kwargs: Any) -> Result:
        """``run(resume_from=path, ...)``: continue a checkpointed run exactly where it stopped."""
        return self.run(resume_from=path, **run_kwargs)

    def save_checkpoint(self, path: Any) -> None:
        """Write the whole training state (parameters, optimizer, RNG, history) to ``path`` atomically."""
        from .checkpoint import save_checkpoint
        save_checkpoint(self, path)

    # -- what train.checkpoint saves and restores ---------------------------------------------------
    def reset(self) -> None:
        """Forget the run: iteration 0, no current point, no history (a checkpoint then loads into it)."""
        self._clear()

    @property
    def batches(self) -> tuple[Any, Any]:
        """(the current point's mini-batch, the next one drawn ahead and not yet evaluated); None when absent."""
        return getattr(self, "_batch", None), (self._next_batch if self.stale else None)

    @batches.setter
    def batches(self, value: tuple[Any, Any]) -> None:
        self._batch, self._next_batch = value

    # -- stop tests ---------------------------------------------------------------------------------
    def _limits(self, max_iterations: int | None, timeout: float | None, started: float) -> tuple[str, str]:
        if max_iterations is not None and self.iteration >= max_iterations:
            return "max_iterations", f"reached {max_iterations} iterations"
        if timeout is not None and time.perf_counter() - started >= timeout:
            return "timeout", f"ran for more than {timeout:g} s"
        return "", ""

    def _converged(self, target_loss: float | None, gradient_tolerance: float) -> tuple[str, str]:
        loss = self.current.loss
        if target_loss is not None and loss <= target_loss:
            return "target_loss", f"loss {loss:.6g} <= target {target_loss:.6g}"
        norm = self.orientation.stationarity(self.current)
        if norm <= gradient_tolerance:
            return "gradient_tolerance", f"gradient norm {norm:.3g} <= {gradient_tolerance:.3g}"
        return "", ""

    def _no_progress(self, tolerance: float, patience: int) -> tuple[str, str]:
        if len(self.history) < patience:
            return "", ""
        before = self.history[-patience - 1].loss if len(self.history) > patience else self.initial_loss
        after = self.history[-1].loss
        gain = (before - after) / max(abs(before), np.finfo(np.float64).tiny)
        if gain < tolerance:
            return "no_progress", (f"relative improvement {gain:.3g} over the last {patience} iterations "
                                   f"< tolerance {tolerance:.3g}")
        return "", ""
