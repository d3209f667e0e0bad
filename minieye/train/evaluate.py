"""Inference over a data set: ``predict`` and ``evaluate`` in evaluation mode, in batches; metrics.

    probabilities = train.predict(net, x, batch_size=256)
    scores = train.evaluate(net, losses.SoftmaxCrossEntropy(), x, labels, metrics=[train.Accuracy()])
    scores["loss"], scores["accuracy"]

Both switch the network to evaluation mode (``net.eval()``: Dropout off, BatchNorm on its
running statistics) for the pass and put every layer back in its mode. The loss and the
metrics are computed once on all the predictions, so the batch size changes nothing
but memory (and float rounding in layers that reduce over the batch, none in eval mode).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..checks import as_float_array, check_input_count, check_positive_int, fail, fail_type, numbers_only
from ..core import Layer
from ..network import evaluation_mode

__all__ = ["predict", "evaluate", "evaluation_mode", "Metric", "Accuracy", "metric_name"]


def _inputs(x: Any, where: str) -> tuple[np.ndarray, ...]:
    items = tuple(x) if isinstance(x, (tuple, list)) and not numbers_only(x) else () if x is None else (x,)
    arrays = tuple(as_float_array(a, where, f"x[{i}]" if len(items) > 1 else "x") for i, a in enumerate(items))
    rows = {a.shape[0] if a.ndim else 0 for a in arrays}
    if len(rows) > 1:
        raise fail(where, "the same number of rows (first axis) in every input",
                   ", ".join(str(a.shape) for a in arrays))
    return arrays


def predict(net: Layer, x: Any, batch_size: int | None = None) -> Any:
    """``net(x)`` in evaluation mode, ``batch_size`` rows at a time (None: all at once).

    ``x``: an array (N, ...), a tuple of arrays for a network with several inputs, or ``()``
    for a network that starts with a Source.
    Returns the outputs (N, ...) concatenated over the batches (a tuple for several outputs).
    """
    where = "train.predict"
    if not isinstance(net, Layer):
        raise fail_type(where, "net a minieye Layer", type(net).__name__, value=net)
    arrays = _inputs(x, where)
    check_input_count(net, len(arrays), where, "inputs in x")
    size = None if batch_size is None else check_positive_int(batch_size, where, "batch_size")
    if not arrays or size is None:  # a source network (no inputs), or all rows at once
        with evaluation_mode(net):
            return net(*arrays)
    n = arrays[0].shape[0] if arrays[0].ndim else 0
    pieces: list[Any] = []
    with evaluation_mode(net):
        for start in range(0, max(n, 1), size):
            pieces.append(net(*(a[start:start + size] for a in arrays)))
    if isinstance(pieces[0], tuple):
        return tuple(np.concatenate([p[k] for p in pieces]) for k in range(len(pieces[0])))
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def metric_name(metric: Any) -> str:
    return getattr(metric, "name", None) or getattr(metric, "__name__", type(metric).__name__)


def evaluate(net: Layer, loss: Layer | None, x: Any, y: Any = None, metrics: Sequence[Callable] = (),
             batch_size: int | None = None) -> dict[str, float]:
    """The loss and ``metrics`` of ``net`` on ``(x, y)``, in evaluation mode.

    Returns ``{"loss": ..., "<metric name>": ...}`` ("loss" left out when ``loss`` is None).
    A metric is a ``train.Metric`` (``train.Accuracy()``) or any ``fn(prediction, y) -> float``,
    named by its ``name`` attribute or ``__name__``.
    """
    where = "train.evaluate"
    if loss is not None and not isinstance(loss, Layer):
        raise fail_type(where, "loss a minieye loss layer (e.g. losses.MSE()) or None", type(loss).__name__,
                        value=loss)
    metrics = (metrics,) if callable(metrics) else tuple(metrics)  # one metric given alone
    for i, m in enumerate(metrics):
        if not callable(m) or isinstance(m, type):
            raise fail_type(where, "metrics a list of metric instances or functions fn(prediction, y)",
                            f"metrics[{i}] is {m!r}", "pass an instance, e.g. train.Accuracy()")
    prediction = predict(net, x, batch_size)
    outputs = prediction if isinstance(prediction, tuple) else (prediction,)
    targets = () if y is None else tuple(y) if isinstance(y, (tuple, list)) and not numbers_only(y) else (y,)
    scores: dict[str, float] = {}
    if loss is not None:
        check_input_count(loss, len(outputs) + len(targets), where,
                          f"inputs to the loss ({len(outputs)} prediction(s), then the targets in y)",
                          "give the targets as y (None only for a loss on the prediction alone)")
        with evaluation_mode(loss):
            scores["loss"] = float(loss(*outputs, *targets))
    for m in metrics:
        value = m(prediction, y)
        if np.ndim(value) != 0 or isinstance(value, (str, bytes)):
            raise fail(where, f"metric {metric_name(m)!r} to return one number", f"{type(value).__name__} of shape "
                       f"{np.shape(value)}", "reduce it, e.g. with .mean()")
        scores[metric_name(m)] = float(value)
    return scores


class Metric:
    """A score of predictions against targets: ``metric(prediction, targets) -> float``.

    ``name`` keys it in ``evaluate``'s dict and (as ``val_<name>``) in the epoch summaries;
    ``greater_is_better`` tells ``Validation(watch=name)`` which way is an improvement.
    """

    name = "metric"
    greater_is_better = True

    def __call__(self, prediction: np.ndarray, targets: np.ndarray) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Accuracy(Metric):
    """The fraction of rows (and pixels) whose highest class score is the target class.

    Shapes: prediction (N, C) or (N, C, *spatial) class scores (logits or probabilities);
    targets integer labels (N,) or (N, *spatial), or one-hot / probabilities of the
    prediction's shape (compared by their argmax).
    """

    name = "accuracy"

    def __call__(self, prediction: np.ndarray, targets: np.ndarray) -> float:
        where = "Accuracy"
        prediction, targets = np.asarray(prediction), np.asarray(targets)
        if prediction.ndim < 2 or prediction.shape[1] < 2:
            raise fail(where, "prediction of class scores (N, C) or (N, C, ...) with C >= 2 classes",
                       f"shape {prediction.shape}", None if prediction.ndim < 2 else
                       "the argmax of one score is always class 0: Accuracy is for classifiers")
        if targets.shape == prediction.shape:
            _check_one_hot(targets, where)
            targets = targets.argmax(axis=1)
        expected = prediction.shape[:1] + prediction.shape[2:]
        if targets.shape != expected:
            raise fail(where, f"targets of shape {expected} (labels) or {prediction.shape} (one-hot)",
                       f"shape {targets.shape}")
        if targets.dtype.kind not in "iu":
            if targets.dtype.kind != "f" or not np.array_equal(targets, np.round(targets)):
                raise fail(where, "integer class labels", f"targets.dtype == {targets.dtype}")
        if targets.size == 0:
            raise fail(where, "at least one target", "an empty batch")
        return float(np.mean(prediction.argmax(axis=1) == targets))


def _check_one_hot(targets: np.ndarray, where: str) -> None:
    """Refuse targets of the prediction's shape that are not one-hot or class probabilities
    (regression targets, say): their argmax would be compared as if they were labels."""
    if targets.size == 0:
        return
    if targets.dtype.kind not in "biuf" or targets.min() < 0 or \
            not np.allclose(targets.sum(axis=1, dtype=np.float64), 1.0, rtol=0, atol=1e-3):
        raise fail(where, "targets of the prediction's shape to be one-hot or class probabilities "
                   "(non-negative, summing to 1 over axis 1)", f"values in [{targets.min():.3g}, {targets.max():.3g}]",
                   "give integer labels (N,) instead")
