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
at the last good point (for a step checked ahead on the next mini-batch, see ahead.py).

An iteration uses the next batch of the problem's epoch (``Problem.draw_batch``). A second
``run`` continues where the first stopped: runs of 23 and 23 iterations equal one of 46.
"""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

import numpy as np

from .ahead import AheadSteps, evaluates_ahead, needs_gradient
from .buffers import LayerBuffers
from .epochs import EpochTracker
from .linesearch import LineSearch, Trial
from .monitor import Monitor
from .orient import GradientDescent, Iterate, Orientation
from .paths import ProjectedPath, first_trial_step
from .problem import Problem
from .result import STOP_REASONS, Record, Result
from .settings import (UNSET, OutOfTime, converged, limits, loss_resolution, no_progress, nonfinite_message,
                       run_arguments, step_failure, trainer_parts)

__all__ = ["Trainer", "Result", "Record", "STOP_REASONS"]


class Trainer(AheadSteps):
    """Minimise ``problem`` with ``orientation`` (default LBFGS()) and ``line_search`` (default ArmijoWolfe()).

    Shapes: the parameters keep their shapes; internally they are one float64 vector.
    """

    def __init__(self, problem: Problem, orientation: Orientation | None = None,
                 line_search: LineSearch | None = None, monitors: Sequence[Monitor] = ()):
        problem, orientation, line_search, monitors = trainer_parts(problem, orientation, line_search, monitors)
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
        self._batch: Any = None  # the current point's mini-batch (row indices); None: full batch
        self._next_batch: Any = None  # see ahead.py
        self._behind = False  # this iteration's ahead trial was not finite: _next_batch still to evaluate
        self._step_start: Any = None  # the layers' buffers before the last step (see ahead.py)
        self.last_step: float | None = None
        self.last_slope: float | None = None
        self.elapsed_before = 0.0
        self._constrained = bool(self.problem.constraints)
        self._loaded: np.ndarray | None = None  # the vector the parameters hold, when the trainer wrote it
        self.epochs = EpochTracker()
        self._left: np.ndarray | None = None  # the parameters as the last run left them (see run)
        self._deadline: float | None = None
        self._kept_path: Any = None  # the path of a line search cut short by the timeout
        self._buffers = LayerBuffers(self.problem.layers())

    @property
    def epoch(self) -> int:
        """Epochs completed so far."""
        return self.epochs.completed

    def reset(self) -> None:
        """Forget the run so far (iteration 0, no current point, no history or epochs): the next
        ``run()`` starts afresh from the parameters' values, or a checkpoint loads into it."""
        self._clear()

    @property
    def batches(self) -> tuple[Any, Any]:
        """(the current point's mini-batch, the next one drawn ahead and not yet evaluated); None when absent."""
        return self._batch, (self._next_batch if self.stale else None)

    @batches.setter
    def batches(self, value: tuple[Any, Any]) -> None:
        self._batch, self._next_batch = value

    def _draw(self) -> tuple[Any, bool]:
        """The problem's next batch, and whether it is the last of its epoch."""
        return self.problem.draw_batch(), self.problem.epoch_ended

    def _evaluate(self, x: np.ndarray, batch: np.ndarray | None, gradient: bool = True) -> tuple[Iterate, bool]:
        """The loss at ``x`` (and its gradient unless ``gradient`` is False); whether both are finite.
        A non-finite or interrupted evaluation leaves the layers' buffers as they were (buffers.py)."""
        self.problem.set_vector(x)
        self._loaded = x
        saved = self._buffers.snapshot()
        try:
            loss, pending = self.problem.forward_vector(batch)
        except BaseException:  # Ctrl-C or an error: a run continued later evaluates this batch again
            self._buffers.restore(saved)
            raise
        self.evaluations += 1
        total = loss + self.orientation.penalty(x) if math.isfinite(loss) else loss
        point = Iterate(x, total, None, None, pending)
        finite = math.isfinite(total) and (not gradient or self._complete(point))
        if not finite:
            self._buffers.restore(saved)
        return point, finite

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
        self.line_search.resolution = loss_resolution(self.problem)
        x = self.problem.get_vector()
        x = self.problem.project(x)
        self._batch, self.epochs.current_ends = self._draw()
        current, finite = self._evaluate(x, self._batch)
        self.initial_loss = current.loss
        if not finite:
            return nonfinite_message(self.problem, "at the starting point")
        self.current = current
        return None

    # -- one iteration ------------------------------------------------------------------------
    def _phi(self, path: Any, x: np.ndarray, batch: np.ndarray | None, tally: list[int], before: Any):
        """phi(t) on ``batch``; every trial starts from the buffers ``before`` the search (buffers.py)."""
        def phi(t: float) -> Trial:
            if tally[0] and self._deadline is not None and time.perf_counter() >= self._deadline:
                raise OutOfTime
            if isinstance(path, ProjectedPath):
                x_t = path.point(t)  # P(x + (P - x)): x + (P - x) may round one ulp outside
            else:
                x_t = x + path.displacement(t)
            self._buffers.restore(before)
            point, finite = self._evaluate(x_t, batch, gradient=self.line_search.uses_slope)
            point.buffers = self._buffers.snapshot()
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
        if self._kept_path is not None:  # the orientation already advanced its state for this path
            path, self._kept_path = self._kept_path, None
            return path
        path = self.orientation.direction(current)
        if self._constrained:
            path = ProjectedPath(path, current.x, self.problem)
        return path

    def _step(self) -> tuple[Trial | None, str]:
        current = self.current
        tally = [0, 0]  # trials, finite trials
        before = self._step_start = self._buffers.snapshot()
        self.line_search.at_step(self.iteration, self.epoch)  # a scheduled learning rate
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
            t0 = first_trial_step(path, slope0, current.grad, self.last_step, self.last_slope)
            phi = self._phi(path, current.x, self._batch, tally, before)
            if evaluates_ahead(self.problem, self.line_search, self.orientation):
                phi = self._phi_ahead(phi, self._phi(path, current.x, self._upcoming(), tally, before))
            try:
                trial = self.line_search.search(phi, current.loss, slope0, t0)
            except BaseException as stop:  # the timeout, Ctrl-C or an error: rejected trials leave no trace
                self._buffers.restore(before)
                if not isinstance(stop, OutOfTime):
                    raise
                self._kept_path = path
                return None, "timeout"
            self._buffers.restore(before if trial is None else trial.point.buffers)
            if trial is not None:
                self.last_step, self.last_slope = trial.t, slope0
                if needs_gradient(self.problem, self.orientation) and not self._complete(trial.point):
                    self._buffers.restore(before)  # the run stops at the current point: its buffers
                    return None, "non_finite_gradient"
                return trial, ""
            if isinstance(self.orientation, GradientDescent):
                break
            self.orientation.reset()  # forget a misleading curvature model and retry once
        if tally[0] and not tally[1]:
            return None, "non_finite"
        return None, (f"the line search found no acceptable step after {tally[0]} evaluations "
                      "(converged to machine precision, or a gradient that does not match the loss)")

    # -- the loop -------------------------------------------------------------------------------
    def run(self, max_iterations: int | None = UNSET, timeout: float | None = None,
            target_loss: float | None = None, gradient_tolerance: float = 0.0,
            tolerance: float | None = None, patience: int = 10,
            resume_from: Any = None, epochs: int | None = None) -> Result:
        """Train until a stop condition holds; return a Result.

        A second call continues where the last one stopped (orientation memory, batch order,
        iteration and epoch counts, history) when the parameters still hold the point it
        left them at; if they were changed since (or after ``reset()``) it starts afresh from
        their values. ``resume_from`` names a checkpoint, which restores all of that state.

        Args:
            max_iterations: iterations for this call (default 100, or no limit when ``epochs``
                is given); with ``resume_from``, the total including the checkpoint's; None: no limit.
            epochs: epochs for this call (with ``resume_from``: in total): every row is used
                once per epoch, the last batch of an epoch holding what is left.
            timeout: stop after this many seconds, checked between iterations and between the
                trial steps of a line search (the parameters stay at the last accepted point).
            target_loss: stop once the loss is at or below this value.
            gradient_tolerance: stop once the gradient norm (projected, or OWL-QN's
                pseudo-gradient) is at or below this value.
            tolerance, patience: stop when the relative improvement of the loss over the
                last ``patience`` iterations is below ``tolerance`` (None: never).
            resume_from: a checkpoint path (see ``train.Checkpoint``) to continue from.
        """
        max_iterations, epochs, timeout, target_loss, gradient_tolerance, tolerance, patience = run_arguments(
            max_iterations, epochs, timeout, target_loss, gradient_tolerance, tolerance, patience)
        started = time.perf_counter()
        problem_message = None
        if resume_from is not None:
            from .checkpoint import load_checkpoint
            load_checkpoint(self, resume_from)
            base = (0, 0)  # limits count from the start of the checkpointed run
        else:
            continues = self.current is not None and self._left is not None \
                and np.array_equal(self.problem.get_vector(), self._left)  # the parameters are where we left them
            problem_message = None if continues else self._start()
            base = (self.iteration, self.epoch)
        stop_iteration = None if max_iterations is None else base[0] + max_iterations
        stop_epoch = None if epochs is None else base[1] + epochs
        self.limits = {"max_iterations": stop_iteration, "epochs": stop_epoch, "timeout": timeout,
                       "target_loss": target_loss}
        self._deadline = None if timeout is None else started + timeout
        for m in self.monitors:
            m.start(self)
        try:
            if problem_message:
                reason, message = "non_finite", problem_message
            else:
                try:
                    reason, message = self._loop(stop_iteration, stop_epoch, timeout, target_loss,
                                                 gradient_tolerance, tolerance, patience, started)
                except KeyboardInterrupt:  # Ctrl-C: keep the last good point and report, like any other stop
                    reason, message = "interrupted", f"interrupted by the user after {self.iteration} iterations"
        except BaseException as error:  # a monitor's or the problem's error: the monitors release what they hold
            for m in self.monitors:
                m.abort(self, error)
            raise
        finally:  # also when a monitor raised: the state stays that of the last iteration, which run() continues
            if self.current is not None:
                self.problem.set_vector(self.current.x)  # the last good point, even after a failed trial
            self.elapsed_before += time.perf_counter() - started
            self._left = self.problem.get_vector() if self.current is not None else None
        result = Result(
            loss=self.current.loss if self.current is not None else self.initial_loss,
            iterations=self.iteration, history=list(self.history), stop_reason=reason, message=message,
            initial_loss=self.initial_loss, evaluations=self.evaluations, elapsed=self.elapsed_before,
            epoch_history=[dict(e) for e in self.epochs.history])
        for m in self.monitors:
            m.finish(self, result)
        return result

    def _loop(self, stop_iteration: int | None, stop_epoch: int | None, timeout: float | None,
              target_loss: float | None, gradient_tolerance: float, tolerance: float | None, patience: int,
              started: float) -> tuple[str, str]:
        """Iterate until a stop condition holds; return (stop_reason, message)."""
        while True:
            self._loaded = None  # monitors may have touched the parameters
            reason, message = limits(self, stop_iteration, stop_epoch, timeout, started)
            if reason:
                return reason, message
            if self.stale:  # a new mini-batch: re-evaluate the current point on it
                self._behind = False
                batch = self._upcoming()  # stays queued until evaluated: Ctrl-C here does not skip it
                current, finite = self._evaluate(self.current.x, batch)
                self._batch, self._next_batch, self.epochs.current_ends = batch, None, self.epochs.next_ends
                if not finite:  # the batch is used up: a later run draws the next one
                    self.epochs.batch_dropped(self)
                    return "non_finite", nonfinite_message(self.problem,
                                                           f"on the mini-batch of iteration {self.iteration + 1}")
                self.current, self.stale = current, False
            elif self.current.grad is None and not self._complete(self.current):  # evaluated ahead
                self._drop_ahead_gradient()
                self.epochs.batch_dropped(self)
                return "non_finite", nonfinite_message(
                    self.problem, f"(the gradient) on the mini-batch of iteration {self.iteration + 1}")
            reason, message = converged(self, target_loss, gradient_tolerance)
            if reason:
                return reason, message
            trial, why = self._step()
            if trial is None:
                return step_failure(self.problem, why, timeout)
            self.orientation.accepted(self.current, trial.point)
            start, self.current = self.current, trial.point
            ends_epoch = self.epochs.current_ends  # of the batch this step was computed on
            if self._next_batch is not None and not self._behind:  # evaluated on the next batch: keep its backward
                self._batch, self._next_batch, self.stale = self._next_batch, None, False
                self.epochs.current_ends = self.epochs.next_ends
            else:
                self.current.pending = None  # free the activations kept for a backward pass
                self.stale = self.problem.batch_size is not None
            self.iteration += 1
            # the gradient norm at the new point, or at the start when that was not computed
            measured = self.current if self.current.grad is not None else start
            record = Record(self.iteration, self.current.loss, trial.t, self.orientation.stationarity(measured),
                            self.elapsed_before + time.perf_counter() - started, self.evaluations)
            self.history.append(record)
            failure = None  # a monitor's error (or Ctrl-C) is raised once the iteration is fully recorded,
            for m in self.monitors:  # so that the next run() continues exactly: every monitor sees every iteration
                try:
                    note = m.iteration(self, record)
                except BaseException as error:
                    failure, note = failure or error, None
                if note and not reason:
                    reason, message = "monitor", str(note)
            note = self.epochs.iteration_done(self, ends_epoch)
            if failure is not None:
                raise failure
            if note and not reason:
                reason, message = "monitor", note
            if not reason and tolerance is not None:
                reason, message = no_progress(self.history, self.initial_loss, tolerance, patience)
            if reason:
                return reason, message

    def resume(self, path: Any, **run_kwargs: Any) -> Result:
        """``run(resume_from=path, ...)``: continue a checkpointed run exactly where it stopped."""
        return self.run(resume_from=path, **run_kwargs)

    def save_checkpoint(self, path: Any) -> None:
        """Write the whole training state (parameters, optimizer, RNG, history) to ``path`` atomically."""
        from .checkpoint import save_checkpoint
        save_checkpoint(self, path)
