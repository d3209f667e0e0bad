"""Directional finite-difference check of a layer's backward, in float64.

For a layer ``y = f(x_1, ..., x_k; p_1, ..., p_m)``, a random output gradient ``dy``
and random directions ``v`` (one array per differentiable input and per unfrozen
parameter), the chain rule says

    <dx, v_x> + sum_p <deltas[p], v_p>  ==  d/dt <dy, f(x + t v_x; p + t v_p)> at t = 0

and the right side is estimated by a central difference,
``<dy, f(+eps) - f(-eps)> / (2 eps)``: two forward passes per direction whatever the
size, with truncation error O(eps^2). The tolerance mixes an absolute part, a
relative part and an estimate of the rounding error of the difference quotient
(``machine eps * sum |dy| (|f(+)| + |f(-)|) / (2 eps)``). Each input and parameter is
also perturbed alone, so that a wrong gradient too small to show in the sum (a bias
beside a large weight) is still caught, and a failure names the culprit(s).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..core import DeltaSet, Layer, Parameter, forward_scope
from ..randomness import fixed_noise

__all__ = ["check_gradients", "run_forward", "as_outputs", "as_grads", "random_dy", "as_rng", "inputs64"]


def as_rng(rng: Any) -> np.random.Generator:
    """A Generator as it is; a seed (or None) made into one."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def inputs64(inputs: Sequence[Any], nondiff: Sequence[int]) -> list[Any]:
    """Differentiable inputs as float64 copies; ``nondiff`` ones (labels) as they are."""
    return [x if i in nondiff else np.array(x, dtype=np.float64) for i, x in enumerate(inputs)]


def run_forward(layer: Layer, inputs: Sequence[Any]) -> tuple[Any, Any]:
    """``layer.forward(*inputs)`` inside a forward scope (partner layers need one), with
    ``fixed_noise``: a stochastic layer (Dropout) draws the same masks on every call, so
    that the checks compare one function (docs/core.md, "Modes")."""
    with fixed_noise(0), forward_scope():
        return layer.forward(*inputs)


def as_outputs(y: Any) -> list[np.ndarray]:
    """A layer's output as a list of arrays (a Graph with several outputs gives a tuple)."""
    return [np.asarray(a) for a in y] if isinstance(y, tuple) else [np.asarray(y)]


def pack_like(parts: list[np.ndarray], y: Any) -> Any:
    """The inverse of ``as_outputs``: one array, or a tuple when ``y`` was a tuple."""
    return tuple(parts) if isinstance(y, tuple) else parts[0]


def as_grads(dx: Any, n_inputs: int) -> tuple[Any, ...]:
    """A backward's return value as a tuple with one entry per input."""
    if n_inputs == 0:
        return ()
    if n_inputs == 1:
        return (dx,)
    if not isinstance(dx, (tuple, list)) or len(dx) != n_inputs:
        raise AssertionError(f"backward should return a tuple of {n_inputs} input gradients; got {type(dx).__name__}")
    return tuple(dx)


def random_dy(ys: list[np.ndarray], rng: np.random.Generator, dtype: Any = np.float64) -> list[np.ndarray]:
    return [rng.standard_normal(a.shape).astype(dtype) for a in ys]


def describe_call(layer: Layer, inputs: Sequence[Any]) -> str:
    shapes = ", ".join(str(np.shape(x)) for x in inputs) or "no inputs"
    params = ", ".join(f"{p.name}{p.shape}{' frozen' if p.frozen else ''}" for p in layer.parameters())
    return f"{layer.label()} on inputs {shapes}" + (f" with parameters {params}" if params else "")


@dataclass
class _Variable:
    """One thing the check perturbs: an input (index) or a parameter."""

    name: str
    base: np.ndarray
    grad: np.ndarray
    index: int | None = None
    param: Parameter | None = None


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)))


def _numeric(layer: Layer, inputs: list[Any], dys: list[np.ndarray], moves: list[tuple[_Variable, np.ndarray]],
             eps: float) -> tuple[float, float]:
    """Central difference of <dy, f> along ``moves``; returns (estimate, rounding-error bound)."""
    outs = []
    for sign in (1.0, -1.0):
        xs = list(inputs)
        try:
            for var, v in moves:
                if var.param is not None:
                    var.param.value[...] = var.base + sign * eps * v
                else:
                    xs[var.index] = var.base + sign * eps * v
            outs.append(as_outputs(run_forward(layer, xs)[0]))
        finally:
            for var, _ in moves:
                if var.param is not None:
                    var.param.value[...] = var.base
    plus, minus = outs
    estimate = sum(_dot(dy, a - b) for dy, a, b in zip(dys, plus, minus)) / (2 * eps)
    rounding = sum(float(np.sum(np.abs(dy) * (np.abs(a) + np.abs(b)))) for dy, a, b in zip(dys, plus, minus))
    return estimate, rounding * np.finfo(np.float64).eps / (2 * eps)


def _close(analytic: float, numeric: float, rounding: float, rtol: float, atol: float) -> bool:
    if not (np.isfinite(analytic) and np.isfinite(numeric)):
        return False
    return abs(analytic - numeric) <= atol + rtol * max(abs(analytic), abs(numeric)) + 10 * rounding


def check_gradients(layer: Layer, *inputs: Any, nondiff: Sequence[int] = (), rng: Any = None,
                    directions: int = 3, eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7) -> None:
    """Compare ``layer``'s backward with central differences along random directions.

    ``layer`` must compute in float64 (build it with ``dtype="float64"``); inputs are
    cast to float64 except those listed in ``nondiff`` (e.g. integer labels), which are
    passed through and whose gradients are ignored. Every unfrozen parameter is
    checked. Raises AssertionError naming the culprit input(s)/parameter(s) with the
    analytic and numeric directional derivatives.
    """
    rng = as_rng(rng)
    if not isinstance(layer, Layer):
        raise TypeError(f"check_gradients needs a layer instance; got {layer!r}"
                        + (f": pass {layer.__name__}(...)" if isinstance(layer, type) else ""))
    wrong = [p for p in layer.parameters() if p.dtype != np.float64]
    if wrong:
        raise ValueError(f"check_gradients needs a float64 layer; {layer.label()} has "
                         f"{', '.join(f'{p.name} ({p.dtype})' for p in wrong)}: build it with dtype='float64'")
    xs = inputs64(inputs, nondiff)
    y, backward = run_forward(layer, xs)
    ys = as_outputs(y)
    where = describe_call(layer, xs)
    for a in ys:
        if a.dtype != np.float64:
            raise AssertionError(f"{where}: float64 inputs and parameters gave an output of dtype {a.dtype}")
    dys = random_dy(ys, rng)
    deltas = DeltaSet()
    dxs = as_grads(backward(pack_like(dys, y), deltas), len(xs))

    variables: list[_Variable] = []
    for i, (x, dx) in enumerate(zip(xs, dxs)):
        if i in nondiff:
            continue
        if dx is None:
            dx = np.zeros_like(x)
        dx = np.asarray(dx)
        if dx.shape != x.shape:
            raise AssertionError(f"{where}: gradient of input {i} has shape {dx.shape}, input has {x.shape}")
        variables.append(_Variable(f"input {i} {x.shape}", x, dx, index=i))
    for p in layer.parameters():
        if not p.frozen:
            grad = deltas.get(p)
            grad = np.zeros_like(p.value) if grad is None else np.asarray(grad)
            variables.append(_Variable(f"parameter {p.name!r} {p.shape}", p.value.copy(), grad, param=p))
    if not variables:
        return

    failed = None
    for _ in range(directions):
        moves = [(var, rng.standard_normal(var.base.shape)) for var in variables]
        analytic = sum(_dot(var.grad, v) for var, v in moves)
        numeric, rounding = _numeric(layer, xs, dys, moves, eps)
        if not _close(analytic, numeric, rounding, rtol, atol):
            failed = (analytic, numeric)
            break
    # Each part alone too: a wrong gradient that is small beside the others (a bias next to a
    # large weight) would hide inside the relative tolerance of the combined sum.
    lines, culprits = _one_at_a_time(layer, xs, dys, variables, eps, rtol, atol, rng)
    if failed is None and not culprits:
        return
    head = [f"{where}: backward disagrees with central differences (eps={eps:g}, rtol={rtol:g}, atol={atol:g})"]
    if failed is not None:
        head.append(f"  all together: analytic {failed[0]:.10g}, numeric {failed[1]:.10g}")
    if not culprits:
        lines.append("  (no single input or parameter fails alone: check interactions or non-determinism)")
    raise AssertionError("\n".join(head + lines))


def _one_at_a_time(layer: Layer, xs: list[Any], dys: list[np.ndarray], variables: list[_Variable], eps: float,
                   rtol: float, atol: float, rng: np.random.Generator) -> tuple[list[str], int]:
    """Perturb each input and parameter alone; one report line each, culprits marked."""
    lines, culprits = [], 0
    for var in variables:
        v = rng.standard_normal(var.base.shape)
        a = _dot(var.grad, v)
        n, rounding = _numeric(layer, xs, dys, [(var, v)], eps)
        ok = _close(a, n, rounding, rtol, atol)
        culprits += not ok
        lines.append(f"  {var.name}: analytic {a:.10g}, numeric {n:.10g}" + ("" if ok else "   <-- culprit"))
    return lines, culprits
