"""What a run returns: a Result with one Record per iteration, and the stop reasons."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["Record", "Result", "STOP_REASONS"]

STOP_REASONS = ("max_iterations", "epochs", "timeout", "target_loss", "gradient_tolerance", "no_descent", "no_progress",
                "line_search_failed", "non_finite", "monitor", "interrupted")


@dataclass
class Record:
    """One iteration: the loss after the step, the step t, the gradient norm there,
    seconds since the run started and the number of loss evaluations so far."""

    iteration: int
    loss: float
    step: float
    gradient_norm: float
    time: float
    evaluations: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class Result:
    """What ``Trainer.run`` returns.

    ``loss``: the loss at the last accepted point (the parameters hold that point; on
    its batch with mini-batches); ``iterations``: iterations done in total (a resumed
    run counts the earlier ones); ``history``: one Record per iteration; ``stop_reason``:
    one of ``STOP_REASONS``, explained by ``message``; ``initial_loss``; ``evaluations``:
    loss evaluations (forward passes); ``elapsed``: seconds; ``notes``: what monitors
    add (``notes["validation"]``); ``epoch_history``: one dict per completed epoch
    (``epoch``, ``iteration``, mean training ``loss``, and ``val_loss``, ``val_accuracy``...
    from ``Validation(every="epoch")``).
    """

    loss: float
    iterations: int
    history: list[Record]
    stop_reason: str
    message: str
    initial_loss: float
    evaluations: int
    elapsed: float
    notes: dict[str, Any] = field(default_factory=dict)
    epoch_history: list[dict[str, float]] = field(default_factory=list)

    def curve(self, name: str) -> np.ndarray:
        """One entry of every epoch summary as an array (e.g. "loss", "val_loss", "val_accuracy"); NaN where absent."""
        return np.array([e.get(name, np.nan) for e in self.epoch_history], dtype=np.float64)

    @property
    def losses(self) -> np.ndarray:
        return np.array([r.loss for r in self.history])
