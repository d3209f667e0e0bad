"""Checks that a layer's backward is safe at the edges: a wrong ``dy`` and an empty batch.

- ``check_rejects_bad_dy``: a ``dy`` one longer or one shorter than the output along any
  axis must raise ``ValueError`` (``checks.ShapeError``) naming the layer. Backward
  closures hand dy to Numba kernels that trust shapes, so an unchecked one gives wrong
  gradients silently, NaN from memory it should not read, or a crash.
- ``check_empty_batch``: a batch of N = 0 gives N = 0 outputs and input gradients, and
  zero (or no) parameter gradients, as NumPy's sums over an empty axis do.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core import DeltaSet, Layer
from .gradcheck import (as_grads, as_outputs, as_rng, describe_call, inputs64, pack_like, random_dy,
                        run_forward)

__all__ = ["check_rejects_bad_dy", "check_empty_batch"]


def _wrong_shapes(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """``shape`` off by one along each axis (one longer, and one shorter where possible);
    a 0-d output (a loss) gets a vector of 2."""
    if not shape:
        return [(2,)]
    wrong = []
    for axis, size in enumerate(shape):
        for new in (size + 1, size - 1):
            if new >= 0:
                wrong.append(shape[:axis] + (new,) + shape[axis + 1:])
    return wrong


def check_rejects_bad_dy(layer: Layer, *inputs: Any, nondiff: Sequence[int] = (), rng: Any = None) -> None:
    """Backward refuses a dy whose shape is off by one along any axis, with a ValueError.

    Returning normally (a gradient computed from a wrong dy) or raising anything else
    (a NumPy IndexError, an AssertionError) fails the check.
    """
    rng = as_rng(rng)
    xs = inputs64(inputs, nondiff)
    y, backward = run_forward(layer, xs)
    ys = as_outputs(y)
    dys = random_dy(ys, rng, ys[0].dtype)
    where = describe_call(layer, xs)
    for i, a in enumerate(ys):
        for shape in _wrong_shapes(a.shape):
            bad = list(dys)
            bad[i] = rng.standard_normal(shape).astype(a.dtype)
            try:
                backward(pack_like(bad, y), DeltaSet())
            except ValueError:
                continue
            except Exception as exc:  # noqa: BLE001 - any other error is the failure being reported
                raise AssertionError(f"{where}: backward given dy {i} of shape {shape} (output {a.shape}) raised "
                                     f"{type(exc).__name__} ({exc}), not a ValueError naming the layer") from exc
            raise AssertionError(f"{where}: backward accepted dy {i} of shape {shape} for an output of shape "
                                 f"{a.shape}; check it with checks.check_gradient")


def check_empty_batch(layer: Layer, *inputs: Any, nondiff: Sequence[int] = (), rng: Any = None) -> None:
    """Inputs with N = 0 samples (axis 0) give outputs and input gradients with N = 0, and
    parameter gradients that are zero (or absent). For batch-invariant layers only."""
    xs = inputs64(inputs, nondiff)
    where = describe_call(layer, xs)
    full = as_outputs(run_forward(layer, xs)[0])
    empty = [np.asarray(x)[:0] for x in xs]
    try:
        y, backward = run_forward(layer, empty)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"{where}: forward on an empty batch raised {type(exc).__name__} ({exc})") from exc
    ys = as_outputs(y)
    for i, (a, b) in enumerate(zip(ys, full)):
        if a.shape != (0,) + b.shape[1:] or a.dtype != b.dtype:
            raise AssertionError(f"{where}: empty batch gave output {i} of shape {a.shape} and dtype {a.dtype}; "
                                 f"expected {(0,) + b.shape[1:]} and {b.dtype}")
    deltas = DeltaSet()
    try:
        dxs = as_grads(backward(pack_like([np.zeros_like(a) for a in ys], y), deltas), len(xs))
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"{where}: backward on an empty batch raised {type(exc).__name__} ({exc})") from exc
    for i, (dx, x) in enumerate(zip(dxs, empty)):
        if i not in nondiff and dx is not None and np.shape(dx) != x.shape:
            raise AssertionError(f"{where}: empty batch gave input gradient {i} of shape {np.shape(dx)}, "
                                 f"expected {x.shape}")
    for p in deltas:
        d = np.asarray(deltas[p])
        if d.shape != p.shape or np.any(d != 0):
            raise AssertionError(f"{where}: empty batch gave parameter {p.name!r} a non-zero gradient "
                                 f"(or one of shape {d.shape}, not {p.shape})")
