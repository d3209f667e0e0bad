"""Losses: layers whose forward returns a 0-d array. The Loss base class and the basic losses.

    MSE                  mean((p - t)^2)          dp = 2 (p - t) / n,  dt = -dp
    L1                   mean(|p - t|)            dp = sign(p - t) / n, dt = -dp
    SoftmaxCrossEntropy  mean over samples (and pixels) of -log softmax(z)[label]
                         dz = (softmax(z) - onehot(label)) / m; labels get no gradient
    WeightedSum          sum_k w_k * loss_k(first n_k inputs)

Each gradient above is multiplied by the scalar ``dy`` that backward receives (1.0 when
the loss is the objective). Losses compute in the prediction's float dtype.

Arithmetic builds weighted sums: ``MSE() + 0.1 * TotalVariation()`` is
``WeightedSum([(1.0, MSE()), (0.1, TotalVariation())])``; the regularizer, taking one
input, receives only the prediction.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..checks import as_float_array, check_real, fail
from ..checks import where as where_of
from ..core import Backward, DeltaSet, Layer, Parameter, unique_parameters

__all__ = ["Loss", "MSE", "L1", "SoftmaxCrossEntropy", "WeightedSum"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


class Loss(Layer):
    """Base class of losses and regularizers: ``forward(*inputs)`` returns ``(value, backward)``
    where ``value`` is a 0-d array and ``backward(dy, deltas)`` takes a scalar ``dy``.

    Subclasses set ``n_inputs`` (2 by default: prediction, target; 1 for a regularizer
    on the prediction alone) and implement ``forward``; ``self.scalar_dy(dy)`` turns the
    backward argument into a float. ``+``, ``-``, ``*`` and ``/`` by numbers build a
    WeightedSum.

    Shapes: inputs (any, usually equal) -> value ().
    """

    n_inputs: int | None = 2

    def scalar_dy(self, dy: Any) -> float:
        """The backward argument as a float; refuses anything that is not a single real number."""
        a = np.asarray(dy)
        if a.size != 1 or a.dtype.kind not in "fiu":
            raise fail(f"{self.label()} backward", "a scalar dy (float or 0-d array)",
                       f"dy of shape {a.shape} and dtype {a.dtype}")
        return float(a.reshape(()))

    # -- arithmetic -------------------------------------------------------------------
    def terms(self) -> list[tuple[float, "Layer"]]:
        """This loss as (weight, loss) terms: [(1.0, self)] (WeightedSum: its own terms)."""
        return [(1.0, self)]

    def __add__(self, other: Any) -> "WeightedSum":
        if not isinstance(other, Layer):
            return NotImplemented
        other_terms = other.terms() if isinstance(other, Loss) else [(1.0, other)]
        return WeightedSum([*self.terms(), *other_terms])

    def __radd__(self, other: Any) -> "Loss":
        if _is_number(other) and other == 0:  # sum([loss_a, loss_b]) starts from 0
            return self
        if isinstance(other, Layer):  # a plain layer returning a scalar, on the left
            return WeightedSum([(1.0, other), *self.terms()])
        return NotImplemented

    def __mul__(self, weight: Any) -> "WeightedSum":
        if not _is_number(weight):
            return NotImplemented
        return WeightedSum([(float(weight) * w, term) for w, term in self.terms()])

    __rmul__ = __mul__

    def __truediv__(self, divisor: Any) -> "WeightedSum":
        if not _is_number(divisor):
            return NotImplemented
        return self * (1.0 / float(divisor))

    def __neg__(self) -> "WeightedSum":
        return self * -1.0

    def __sub__(self, other: Any) -> "WeightedSum":
        if not isinstance(other, Loss):
            return NotImplemented
        return self + (-other)


def _pair(loss: Loss, prediction: Any, target: Any) -> tuple[np.ndarray, np.ndarray, str]:
    where = f"{loss.label()} forward"
    p = as_float_array(prediction, where, "prediction")
    t = as_float_array(target, where, "target", dtype=p.dtype)
    if p.shape != t.shape:  # NumPy would broadcast (N, 1) against (N,) to (N, N): refused, with the fix if any
        raise fail(where, "prediction and target of the same shape",
                   f"prediction.shape == {p.shape}, target.shape == {t.shape}",
                   f"reshape one: target.reshape({p.shape})" if p.size == t.size else None)
    if p.size == 0:
        raise fail(where, "non-empty arrays", f"prediction.shape == {p.shape}")
    return p, t, where


class MSE(Loss):
    """Mean of squared differences ``mean((prediction - target) ** 2)``.

    Shapes: prediction (any), target (same) -> ().
    """

    def forward(self, prediction: Any, target: Any) -> tuple[np.ndarray, Backward]:
        p, t, _ = _pair(self, prediction, target)
        diff = p - t
        value = np.asarray(np.vdot(diff, diff) / diff.size, dtype=p.dtype)

        def backward(dy: Any, deltas: DeltaSet) -> tuple[np.ndarray, np.ndarray]:
            dp = diff * p.dtype.type(2.0 * self.scalar_dy(dy) / diff.size)
            return dp, -dp

        return value, backward


class L1(Loss):
    """Mean absolute difference ``mean(|prediction - target|)`` (gradient 0 where equal).

    Shapes: prediction (any), target (same) -> ().
    """

    def forward(self, prediction: Any, target: Any) -> tuple[np.ndarray, Backward]:
        p, t, _ = _pair(self, prediction, target)
        diff = p - t
        value = np.asarray(np.abs(diff).sum() / diff.size, dtype=p.dtype)

        def backward(dy: Any, deltas: DeltaSet) -> tuple[np.ndarray, np.ndarray]:
            dp = np.sign(diff) * p.dtype.type(self.scalar_dy(dy) / diff.size)
            return dp, -dp

        return value, backward


class SoftmaxCrossEntropy(Loss):
    """Cross-entropy of softmax(logits) against integer class labels, averaged.

    Shapes: logits (N, C) with labels (N,), or per pixel logits (N, C, H, W) (any
    number of trailing axes) with labels (N, H, W) -> (). Labels are integers in
    [0, C) (integral floats are accepted) and get no gradient (backward returns None
    for them).
    """

    def forward(self, logits: Any, labels: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        z = as_float_array(logits, where, "logits")
        if z.ndim < 2:
            raise fail(where, "logits of shape (N, C) or (N, C, H, W)", f"logits.shape == {z.shape}")
        if z.size == 0:  # the mean over no samples is undefined, as in MSE
            raise fail(where, "non-empty logits (at least one sample and one class)", f"logits.shape == {z.shape}")
        lab = np.asarray(labels)
        expected = (z.shape[0], *z.shape[2:])
        if lab.shape != expected:
            raise fail(where, f"labels of shape {expected} for logits of shape {z.shape}",
                       f"labels.shape == {lab.shape}", "for one-hot targets give labels.argmax(axis=1)"
                       if lab.shape == z.shape else f"give labels.reshape({expected})"
                       if lab.size == np.prod(expected) else None)
        if lab.dtype.kind == "f" and not np.array_equal(lab, np.round(lab)):
            raise fail(where, "integer class labels", "non-integral float labels")
        if lab.dtype.kind not in "fiu":
            raise fail(where, "integer class labels", f"labels.dtype == {lab.dtype}")
        n_classes = z.shape[1]
        lab = lab.astype(np.intp, copy=False)
        if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
            raise fail(where, f"labels in [0, {n_classes})", f"labels in [{lab.min()}, {lab.max()}]")
        # one row per sample or pixel (already so for (N, C): no moveaxis, whose checks cost more than the loss)
        flat = z if z.ndim == 2 else np.moveaxis(z, 1, -1).reshape(-1, n_classes)
        index = lab.reshape(-1)
        shifted = flat - flat.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1))
        m = flat.shape[0]
        rows = np.arange(m)
        value = np.asarray((log_norm - shifted[rows, index]).sum() / m, dtype=z.dtype)

        def backward(dy: Any, deltas: DeltaSet) -> tuple[np.ndarray, None]:
            g = np.exp(shifted - log_norm[:, None])
            g[rows, index] -= 1
            g *= z.dtype.type(self.scalar_dy(dy) / m)
            if z.ndim == 2:
                return g, None
            moved = g.reshape(z.shape[0], *z.shape[2:], n_classes)
            return np.ascontiguousarray(np.moveaxis(moved, -1, 1)), None

        return value, backward


class WeightedSum(Loss):
    """``sum_k weight_k * term_k(*inputs[:term_k.n_inputs])``: a loss made of weighted terms.

    ``terms`` is a list of ``(weight, loss)`` pairs; each term receives the first
    ``term.n_inputs`` inputs (all of them when that is None), so a regularizer on the
    prediction sits beside a fidelity term on (prediction, target). The sum takes as
    many inputs as its hungriest term. An input that no term differentiates gets
    ``None`` as its gradient. Usually built by arithmetic: ``MSE() + 0.1 * TotalVariation()``.

    ``config()`` holds the term layers themselves (``{"terms": [[w, loss], ...]}``):
    a WeightedSum is a container, like Sequential, for serialization.

    Shapes: inputs as the terms take them -> ().
    """

    def __init__(self, terms: Sequence[tuple[float, Layer]], name: str | None = None):
        super().__init__(name)
        where = where_of("WeightedSum", name)
        checked: list[tuple[float, Layer]] = []
        for i, term in enumerate(terms):
            if not (isinstance(term, (tuple, list)) and len(term) == 2 and isinstance(term[1], Layer)):
                raise fail(where, "terms as (weight, loss) pairs", f"term {i} is {term!r}")
            checked.append((check_real(term[0], where, f"term {i}'s weight", signed=True), term[1]))
        if not checked:
            raise fail(where, "at least one (weight, loss) term", "none")
        self._terms = checked
        counts = [t.n_inputs for _, t in checked]
        self.n_inputs = None if None in counts else max(counts)  # type: ignore[assignment]

    def terms(self) -> list[tuple[float, Layer]]:
        return list(self._terms)

    @property
    def layers(self) -> list[Layer]:
        """The term losses, in order."""
        return [t for _, t in self._terms]

    @property
    def weights(self) -> list[float]:
        return [w for w, _ in self._terms]

    def parameters(self) -> list[Parameter]:
        return unique_parameters(*self.layers)

    def config(self) -> dict[str, Any]:
        return {"terms": [[w, t] for w, t in self._terms], **super().config()}

    def describe(self) -> str:
        return "WeightedSum(" + " + ".join(f"{w:g}*{t.label()}" for w, t in self._terms) + ")"

    def forward(self, *inputs: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        if self.n_inputs is not None and len(inputs) != self.n_inputs:
            raise fail(where, f"{self.n_inputs} inputs", f"{len(inputs)}")
        parts = []
        total = None
        for weight, term in self._terms:
            k = len(inputs) if term.n_inputs is None else term.n_inputs
            value, backward = term.forward(*inputs[:k])
            value = np.asarray(value)
            if value.shape != ():
                raise fail(where, "each term to return a 0-d array", f"{term.label()} gave shape {value.shape}")
            total = weight * value if total is None else total + weight * value
            parts.append((weight, k, backward))
        dtype = np.result_type(*[np.asarray(x).dtype for x in inputs if np.asarray(x).dtype.kind == "f"] or
                               [np.float64])
        result = np.asarray(total, dtype=dtype)
        n = len(inputs)

        def backward(dy: Any, deltas: DeltaSet) -> Any:
            g = self.scalar_dy(dy)
            grads: list[Any] = [None] * n
            for weight, k, term_backward in parts:
                dx = term_backward(weight * g, deltas)
                dx = (dx,) if k == 1 else tuple(dx)
                for i, d in enumerate(dx):
                    if d is not None:
                        grads[i] = d if grads[i] is None else grads[i] + d
            return grads[0] if n == 1 else tuple(grads)

        return result, backward
