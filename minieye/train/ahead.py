"""Steps checked ahead, on the next mini-batch.

When the line search only checks that the loss stays finite (``FixedStep``) and the
orientation needs no gradient at the new point on the old batch (Adam, SGD), the trainer
evaluates a trial step on the *next* mini-batch: the check and the next iteration's
evaluation are one forward pass, and that pass's backward waits for the next iteration
(one forward and one backward per iteration, as in PyTorch's loop).

A finite loss does not promise a finite gradient. When the deferred backward pass gives a
non-finite gradient, the run stops at the accepted point, its last good state: the
gradient is dropped rather than kept (a later run would turn it into a NaN direction), the
layers' buffers go back to where they were before that batch's forward pass (a non-finite
evaluation leaves no trace, as in ``buffers.py``), and the batch counts as used, so that a
later ``run`` draws the next one and goes on (the last batch of an epoch ends it, epochs.py). The stop reason is ``non_finite``, as for a
non-finite loss. When a monitor runs that backward pass early (``complete_gradient``, as a
checkpoint does), the same happens one step later: the batch is queued to be evaluated
again, and the next iteration stops on it (a checkpoint saved meanwhile resumes to that
stop too).

``AheadSteps`` holds the Trainer's methods for this; it is a part of ``Trainer``, not a class
of its own use.
"""
from __future__ import annotations

from typing import Any, Callable

from .linesearch import Trial

__all__ = ["evaluates_ahead", "needs_gradient", "AheadSteps"]


def evaluates_ahead(problem: Any, line_search: Any, orientation: Any) -> bool:
    """Whether trial steps are evaluated on the next mini-batch (see the module docstring)."""
    return problem.batch_size is not None and not line_search.compares_values and not orientation.learns_from_steps


def needs_gradient(problem: Any, orientation: Any) -> bool:
    """Whether the accepted point's gradient is used: always with full batches (the next
    iteration starts from it), with mini-batches only for L-BFGS-like orientations."""
    return problem.batch_size is None or orientation.learns_from_steps


class AheadSteps:
    """The Trainer's methods for steps checked ahead (a mixin: they use the Trainer's state)."""

    def complete_gradient(self) -> None:
        """Run the current point's backward pass if it is still pending (a step evaluated ahead on
        the next mini-batch defers it to the next iteration), so that ``current.grad`` is set.
        A non-finite gradient is not set: its batch is queued again, and the next iteration
        evaluates it and stops there (see the module docstring)."""
        current = self.current
        if current is not None and current.grad is None and current.pending is not None \
                and not self._complete(current):
            self._drop_ahead_gradient()
            self._next_batch, self.epochs.next_ends = self._batch, self.epochs.current_ends

    def _upcoming(self) -> Any:
        if self._next_batch is None:  # drawn once per iteration, kept across a retried search
            self._next_batch, self.epochs.next_ends = self._draw()
        return self._next_batch

    def _phi_ahead(self, on_old: Callable[[float], Trial], on_next: Callable[[float], Trial]) -> Callable:
        """The first trial on the next batch; if it is not finite there (a bad row in the new
        batch, or a step too long), fall back to the old batch for this search, as without
        evaluating ahead: the next iteration then evaluates the new batch itself and says which."""
        def phi(t: float) -> Trial:
            if not self._behind:
                trial = on_next(t)
                if trial.finite:
                    return trial
                self._behind = True
            return on_old(t)
        return phi

    def _drop_ahead_gradient(self) -> None:
        """The deferred gradient of the step checked ahead is not finite: keep the accepted point
        without it, the buffers as before that batch's forward pass, the batch used."""
        self.current.grad = self.current.raw_grad = None
        self._buffers.restore(self._step_start)
        self.stale = True
