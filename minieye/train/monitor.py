"""Monitors: watch a run without taking part in the optimisation.

A monitor gets ``start(trainer)`` before the first iteration, ``iteration(trainer,
record)`` after each one (returning a non-empty string stops the run with
stop_reason "monitor" and that message), ``epoch(trainer, summary)`` after the last
iteration of each epoch (the summary is a dict it may add entries to; a string return
stops the run too) and ``finish(trainer, result)`` at the end.
Monitors whose state matters for an exact resume (Validation) expose
``state_dict``/``load_state_dict``; checkpoints store it.

Nothing prints unless a monitor is asked to: the library is quiet by default.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..archive import atomic_file, check_writable
from ..checks import check_bool, check_positive_int, fail, fail_type
from ..core import Layer
from ..progress import progress_bar
from .evaluate import evaluate, metric_name

__all__ = ["Monitor", "ProgressBar", "History", "Callback", "Validation"]


class Monitor:
    """Base class: every hook does nothing."""

    def start(self, trainer: Any) -> None:
        pass

    def iteration(self, trainer: Any, record: Any) -> str | None:
        return None

    def epoch(self, trainer: Any, summary: dict[str, float]) -> str | None:
        return None

    def finish(self, trainer: Any, result: Any) -> None:
        pass

    def abort(self, trainer: Any, error: BaseException) -> None:
        """The run stops with ``error`` (a monitor's or the problem's), which ``run`` then raises: release
        what the run holds open (``finish`` is not called, and the next ``run()`` continues exactly)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class ProgressBar(Monitor):
    """A tqdm progress bar showing the loss (tqdm comes with the ``demo`` extra).

    A run with ``epochs`` gets one bar per epoch ("epoch 2/8"), ending with the epoch's
    summary (mean loss, and ``val_loss``, ``val_accuracy``... from a Validation monitor);
    otherwise one bar over the iterations.
    """

    def __init__(self, description: str = "training", leave: bool = True):
        self.description, self.leave = description, leave
        self._bar = None
        self._summary: dict[str, float] | None = None  # the finished epoch, shown when its bar closes

    def _open(self, trainer: Any) -> None:
        epochs = trainer.limits.get("epochs")
        if epochs is None:
            self._bar = progress_bar("train.ProgressBar", total=trainer.limits.get("max_iterations"),
                                     initial=trainer.iteration, desc=self.description, leave=self.leave)
        else:
            done = trainer.iteration - trainer.epochs.first_iteration
            self._bar = progress_bar("train.ProgressBar", total=trainer.problem.batches_per_epoch, initial=done,
                                     leave=self.leave, desc=f"{self.description}: epoch {trainer.epoch + 1}/{epochs}")

    def _close(self, text: str = "") -> None:
        if self._bar is not None:
            if self._summary is not None:
                text = "  ".join(f"{k}={v:.4g}" for k, v in self._summary.items()
                                 if k not in ("epoch", "iteration")) + text
            self._bar.set_postfix_str(text)
            self._bar.close()
        self._bar, self._summary = None, None

    def start(self, trainer: Any) -> None:
        self._open(trainer)

    def iteration(self, trainer: Any, record: Any) -> str | None:
        if self._summary is not None:  # the last epoch ended: its summary is complete now
            self._close()
            self._open(trainer)  # counting this iteration already
        elif self._bar is not None:
            self._bar.update(1)
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{record.loss:.4g}", refresh=False)
        return None

    def epoch(self, trainer: Any, summary: dict[str, float]) -> str | None:
        if trainer.limits.get("epochs") is not None:
            self._summary = summary  # later monitors may still add to it (Validation: val_loss)
        return None

    def finish(self, trainer: Any, result: Any) -> None:
        stop = f" ({result.stop_reason})"
        self._close(stop if self._summary is not None else f"loss={result.loss:.4g}{stop}")

    def abort(self, trainer: Any, error: BaseException) -> None:
        self._close(f" ({type(error).__name__})")


def _strict(value: Any) -> Any:
    """``value`` with NaN and infinite floats as None: strict JSON (``null``), which every reader
    takes, where Python's default writes the non-standard ``NaN`` (a run stopped on NaN data has one)."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _atomic_write_text(path: Path, text: str) -> None:
    with atomic_file(path) as handle:
        handle.write(text.encode("utf-8"))


class History(Monitor):
    """Keep every Record; with ``path`` also write them as CSV (``.csv``) or JSON (``.json``).

    The file is rewritten atomically every ``every`` iterations and at the end. ``epochs``
    keeps the epoch summaries (JSON: under "epochs").
    """

    def __init__(self, path: str | os.PathLike | None = None, every: int = 10):
        self.path = None if path is None else Path(path)
        if self.path is not None and self.path.suffix.lower() not in (".csv", ".json"):
            raise fail("History", "path ending in .csv or .json", repr(str(path)))
        self.every = check_positive_int(every, "History", "every")
        self.records: list[Any] = []
        self.epochs: list[dict[str, float]] = []

    def start(self, trainer: Any) -> None:
        if self.path is not None:
            check_writable(self.path, "History")  # fail before training, not at the first write
        self.records = list(trainer.history)
        self.epochs = list(trainer.epochs.history)

    def epoch(self, trainer: Any, summary: dict[str, float]) -> str | None:
        self.epochs.append(summary)  # the same dict: what later monitors add is kept
        return None

    def iteration(self, trainer: Any, record: Any) -> str | None:
        self.records.append(record)
        if self.path is not None and record.iteration % self.every == 0:
            self.write()
        return None

    def finish(self, trainer: Any, result: Any) -> None:
        if self.path is not None:
            self.write(result)

    def abort(self, trainer: Any, error: BaseException) -> None:
        if self.path is not None:  # the iterations so far are kept on disk
            self.write()

    def write(self, result: Any = None) -> None:
        rows = [r.as_dict() for r in self.records]
        if self.path.suffix.lower() == ".json":
            doc: dict[str, Any] = {"history": rows, "epochs": self.epochs}
            if result is not None:
                doc.update(stop_reason=result.stop_reason, message=result.message, loss=result.loss)
            _atomic_write_text(self.path, json.dumps(_strict(doc), indent=1, allow_nan=False))
            return
        out = io.StringIO()
        fields = ["iteration", "loss", "step", "gradient_norm", "time", "evaluations"]
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        _atomic_write_text(self.path, out.getvalue())


class Callback(Monitor):
    """Call ``fn(trainer, record)`` every ``every`` iterations; a truthy return value stops the run."""

    def __init__(self, fn: Callable[[Any, Any], Any], every: int = 1):
        if not callable(fn):
            raise fail("Callback", "fn a callable fn(trainer, record)", repr(fn))
        self.fn = fn
        self.every = check_positive_int(every, "Callback", "every")

    def iteration(self, trainer: Any, record: Any) -> str | None:
        if record.iteration % self.every:
            return None
        answer = self.fn(trainer, record)
        if answer:
            return answer if isinstance(answer, str) else f"stopped by callback {getattr(self.fn, '__name__', self.fn)}"
        return None


class Validation(Monitor):
    """Early stopping on held-out data (MindsEye's ValidatingTrainer; Keras's validation data
    with EarlyStopping).

    Every ``every`` iterations, or after every epoch with ``every="epoch"``, or with
    ``every="auto"`` (the default) after every epoch when the problem draws mini-batches and
    every iteration when it is full-batch (where an iteration is an epoch), the network is
    evaluated on ``inputs``/``targets`` in evaluation mode (``train.evaluate``, ``batch_size``
    rows at a time): the loss (the problem's, unless ``loss`` is given) and ``metrics``
    (e.g. ``[train.Accuracy()]``). With ``every="epoch"`` the values join the epoch summary as
    ``val_loss`` and ``val_<name>``, so the ProgressBar shows them and ``result.epoch_history``
    keeps them. ``watch`` is the value that decides: "loss" (lower is better) or a metric's
    name (its ``greater_is_better`` says which way). After ``patience`` checks without
    improvement the run stops; at the end the parameters are set to the best point seen
    (the starting point is checked too). ``best_loss`` (the validation loss there),
    ``best_score`` (the watched value), ``best_iteration``, ``losses`` ((iteration, loss) per
    check) and ``scores`` (one dict per check) stay on the monitor; ``result.notes["validation"]``
    has the best values.
    """

    def __init__(self, inputs: Any = (), targets: Any = None, every: int | str = "auto", patience: int = 5,
                 loss: Any = None, restore_best: bool = True, metrics: Sequence[Any] = (),
                 watch: str = "loss", batch_size: int | None = None):
        where = "Validation"
        self.inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        self.targets = targets
        if isinstance(every, str) and every not in ("auto", "epoch"):
            raise fail(where, "every 'auto', 'epoch' or a positive integer", repr(every))
        self.auto = every == "auto"
        self.per_epoch = every == "epoch"
        self.every = 1 if self.per_epoch or self.auto else check_positive_int(every, where, "every")
        self.patience = check_positive_int(patience, where, "patience")
        if loss is not None and not isinstance(loss, Layer):
            raise fail_type(where, "loss a minieye loss layer or None (the problem's)", repr(loss), value=loss)
        self.loss = loss
        self.restore_best = check_bool(restore_best, where, "restore_best")
        self.metrics = (metrics,) if callable(metrics) else tuple(metrics)  # one metric given alone
        names = ["loss", *(metric_name(m) for m in self.metrics)]
        if watch not in names:
            raise fail(where, f"watch one of {names}", repr(watch), "add the metric to metrics=[...]")
        self.watch = watch
        watched = self.metrics[names.index(watch) - 1] if watch != "loss" else None
        self._sign = -1.0 if watched is not None and getattr(watched, "greater_is_better", True) else 1.0
        self.batch_size = None if batch_size is None else check_positive_int(batch_size, where, "batch_size")
        self._clear()

    def _clear(self) -> None:
        self.best_loss = math.inf
        self.best_score = self._sign * math.inf
        self.best_iteration = -1
        self.best_x: np.ndarray | None = None
        self.bad_checks = 0
        self.losses: list[tuple[int, float]] = []
        self.scores: list[dict[str, float]] = []

    def measure(self, trainer: Any) -> dict[str, float]:
        """The validation loss and metrics at the trainer's current parameters."""
        problem = trainer.problem
        loss = self.loss if self.loss is not None else problem.loss
        return evaluate(problem.net, loss, self.inputs, self.targets, self.metrics, self.batch_size)

    def start(self, trainer: Any) -> None:
        if self.auto:
            self.per_epoch = getattr(trainer.problem, "batch_size", None) is not None
        if trainer.iteration == 0:
            self._clear()
            self._check(trainer, 0)

    def _check(self, trainer: Any, iteration: int) -> str | None:
        scores = self.measure(trainer)
        self.losses.append((iteration, scores["loss"]))
        self.scores.append(scores)
        value = scores[self.watch]
        if self._sign * value < self._sign * self.best_score:
            self.best_score, self.best_loss, self.best_iteration = value, scores["loss"], iteration
            self.bad_checks = 0
            self.best_x = trainer.problem.get_vector()
            return None
        self.bad_checks += 1
        if self.bad_checks >= self.patience:
            return (f"validation {self.watch} has not improved for {self.patience} checks "
                    f"(best {self.best_score:.6g} at iteration {self.best_iteration})")
        return None

    def iteration(self, trainer: Any, record: Any) -> str | None:
        if self.per_epoch or record.iteration % self.every:
            return None
        return self._check(trainer, record.iteration)

    def epoch(self, trainer: Any, summary: dict[str, float]) -> str | None:
        if not self.per_epoch:
            return None
        note = self._check(trainer, trainer.iteration)
        summary.update({f"val_{name}": value for name, value in self.scores[-1].items()})
        return note

    def finish(self, trainer: Any, result: Any) -> None:
        if self.restore_best and self.best_x is not None:
            trainer.problem.set_vector(self.best_x)
        result.notes["validation"] = {"best_loss": self.best_loss, "best_iteration": self.best_iteration,
                                      "watch": self.watch, "best_score": self.best_score,
                                      "restored": self.restore_best and self.best_x is not None}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"best_loss": self.best_loss if math.isfinite(self.best_loss) else None,
                                 "best_score": self.best_score if math.isfinite(self.best_score) else None,
                                 "best_iteration": self.best_iteration, "bad_checks": self.bad_checks,
                                 "losses": np.array(self.losses, dtype=np.float64).reshape(-1, 2),
                                 "scores": self.scores}
        if self.best_x is not None:
            state["best_x"] = self.best_x
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        best = state.get("best_loss")
        self.best_loss = math.inf if best is None else float(best)
        score = state.get("best_score", best)
        self.best_score = self._sign * math.inf if score is None else float(score)
        self.best_iteration = int(state.get("best_iteration", -1))
        self.bad_checks = int(state.get("bad_checks", 0))
        self.losses = [(int(i), float(v)) for i, v in np.reshape(state.get("losses", []), (-1, 2))]
        self.scores = [{k: float(v) for k, v in row.items()} for row in state.get("scores", [])]
        x = state.get("best_x")
        self.best_x = None if x is None else np.array(x, dtype=np.float64)
