"""Epoch bookkeeping for the Trainer: which epoch a run is in, and one summary per epoch.

An epoch ends with the iteration whose mini-batch was the last of its permutation
(``Problem.draw_batch``), or with a stop on that batch that drops it (its loss or gradient
not finite: a later run draws the next batch); with full batches every iteration is an epoch. The summary
of an epoch is a dict: ``epoch`` (1-based), ``iteration`` (the last one of the epoch),
``loss`` (the mean of that epoch's ``Record.loss`` values) and what monitors add in
their ``epoch`` hook (``Validation(every="epoch")`` adds ``val_loss`` and ``val_<metric>``).
"""
from __future__ import annotations

import math
from typing import Any

__all__ = ["EpochTracker"]


class EpochTracker:
    """Completed epochs, the iteration the current one began at, and the summaries so far."""

    def __init__(self) -> None:
        self.completed = 0
        self.first_iteration = 0
        self.history: list[dict[str, float]] = []
        # whether the batch the current point was evaluated on, and the one drawn ahead, end an epoch
        self.current_ends = False
        self.next_ends = False

    def iteration_done(self, trainer: Any, ends_epoch: bool) -> str | None:
        """Close the epoch when the iteration just recorded used its last batch; call the
        monitors' ``epoch`` hooks; return the first stop message one of them gave."""
        if not ends_epoch:
            return None
        count = trainer.iteration - self.first_iteration
        losses = [r.loss for r in trainer.history[len(trainer.history) - count:]] if count > 0 else []
        self.completed += 1
        self.first_iteration = trainer.iteration
        summary: dict[str, float] = {"epoch": self.completed, "iteration": trainer.iteration,
                                     "loss": math.fsum(losses) / len(losses) if losses else math.nan}
        self.history.append(summary)
        stop = None
        for monitor in trainer.monitors:  # every monitor sees every epoch, even after one asked to stop
            note = monitor.epoch(trainer, summary)
            if note and stop is None:
                stop = str(note)
        return stop

    def batch_dropped(self, trainer: Any) -> None:
        """The current point's batch is dropped (its loss or gradient is not finite, and a later run
        draws the next one): when it was the last of its epoch, that epoch ends here, with the
        iterations it had, so that a continued run counts the next epoch as the next one."""
        if self.current_ends:
            self.current_ends = False
            self.iteration_done(trainer, True)  # the run stops on the batch: a monitor's stop note adds nothing

    def state_dict(self) -> dict[str, Any]:
        # JSON holds no NaN: a missing value is stored as None
        rows = [{k: (v if math.isfinite(v) else None) for k, v in row.items()} for row in self.history]
        return {"completed": self.completed, "first_iteration": self.first_iteration,
                "current_ends": self.current_ends, "next_ends": self.next_ends, "history": rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.completed = int(state.get("completed", 0))
        self.first_iteration = int(state.get("first_iteration", 0))
        self.current_ends = bool(state.get("current_ends", False))
        self.next_ends = bool(state.get("next_ends", False))
        self.history = [{k: (math.nan if v is None else (int(v) if k in ("epoch", "iteration") else float(v)))
                         for k, v in row.items()} for row in state.get("history", [])]
