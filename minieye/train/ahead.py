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
later ``run`` draws the next one and goes on. The stop reason is ``non_finite``, as for a
non-finite loss.
"""
from __future__ import annotations

from typing import Any

__all__ = ["evaluates_ahead", "needs_gradient"]


def evaluates_ahead(problem: Any, line_search: Any, orientation: Any) -> bool:
    """Whether trial steps are evaluated on the next mini-batch (see the module docstring)."""
    return problem.batch_size is not None and not line_search.compares_values and not orientation.learns_from_steps


def needs_gradient(problem: Any, orientation: Any) -> bool:
    """Whether the accepted point's gradient is used: always with full batches (the next
    iteration starts from it), with mini-batches only for L-BFGS-like orientations."""
    return problem.batch_size is None or orientation.learns_from_steps
