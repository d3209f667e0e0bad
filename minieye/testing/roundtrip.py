"""``check_roundtrip``: does a layer survive ``me.io.save`` and ``me.io.load`` unchanged?

Use it in the tests of your own layers (after ``@minieye.io.register``):

    from minieye.testing.roundtrip import check_roundtrip
    check_roundtrip(MyLayer(3, dtype="float64"), x)

It saves to a temporary file, loads, and raises AssertionError saying which check
failed: the description (classes, configs, structure, parameter names, shapes,
dtypes, frozen flags, sharing) is identical; parameter values are identical bit for
bit but live in new Parameter objects and new memory; outputs on ``inputs`` are
bit-identical; backward gives the same input and parameter gradients; and a step
applied to the loaded copy leaves the original untouched.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from ..core import DeltaSet, Layer, forward_scope
from ..randomness import fixed_noise

__all__ = ["check_roundtrip"]


def _arrays(value: Any) -> list[np.ndarray]:
    """Flatten an output or gradient (array, scalar, tuple of them, None) into a list of arrays."""
    if value is None:
        return []
    if isinstance(value, (tuple, list)):
        return [a for item in value for a in _arrays(item)]
    return [np.asarray(value)]


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    # Gradients are compared with a hair of tolerance: parallel kernels may sum in another order.
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    rtol = 1e-5 if a.dtype == np.float32 else 1e-12
    scale = float(np.max(np.abs(a), initial=0.0))
    return bool(np.allclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True))


def _random_like(value: Any, rng: np.random.Generator) -> Any:
    if isinstance(value, (tuple, list)):
        return type(value)(_random_like(v, rng) for v in value)
    value = np.asarray(value)
    dtype = value.dtype if value.dtype.kind == "f" else np.float64
    return rng.standard_normal(value.shape).astype(dtype)


def _forward_backward(layer: Layer, inputs: tuple, dy_rng_seed: int) -> tuple[Any, Any, DeltaSet]:
    with fixed_noise(0), forward_scope():  # the same Dropout masks for the original and the copy
        y, backward = layer.forward(*inputs)
    dy = _random_like(y, np.random.default_rng(dy_rng_seed))
    deltas = DeltaSet()
    dx = backward(dy, deltas)
    return y, dx, deltas


def check_roundtrip(layer: Layer, *inputs: Any, path: str | os.PathLike | None = None,
                    seed: int = 0) -> Layer:
    """Save ``layer``, load it back, check that nothing was lost (see module doc); return the copy.

    ``inputs`` are what ``layer.forward`` takes (none for a source layer). ``path``:
    where to write (default: a temporary file, removed afterwards). ``seed`` draws the
    output gradient used to compare backward passes.
    """
    from .. import io as me_io  # late: minieye.testing must not need minieye.io at import

    def check(ok: bool, what: str) -> None:
        if not ok:
            raise AssertionError(f"check_roundtrip({layer.label()}): {what}")

    before = [p.value.copy() for p in layer.parameters()]
    with tempfile.TemporaryDirectory() as folder:
        target = os.fspath(path) if path is not None else os.path.join(folder, "layer.minieye")
        me_io.save(layer, target)
        loaded = me_io.load(target)

    check(type(loaded) is type(layer), f"loaded a {type(loaded).__name__}, not a {type(layer).__name__}")
    check(loaded is not layer, "load returned the original object")
    meta_a, arrays_a = me_io.encode(layer)
    meta_b, arrays_b = me_io.encode(loaded)
    for key in ("layers", "parameters", "root"):
        check(meta_a[key] == meta_b[key], f"the loaded description differs in {key!r}:\n"
                                          f"  saved:  {meta_a[key]}\n  loaded: {meta_b[key]}")
    for name in arrays_a:
        check(_same_bits(arrays_a[name], arrays_b[name]), f"array {name} differs after loading")

    params_a, params_b = layer.parameters(), loaded.parameters()
    check(len(params_a) == len(params_b), f"{len(params_a)} parameters saved, {len(params_b)} loaded")
    for p, q in zip(params_a, params_b):
        check(p is not q and not np.shares_memory(p.value, q.value),
              f"parameter {p.name!r} is shared between the original and the loaded copy")
        check(p.frozen == q.frozen, f"parameter {p.name!r} frozen={p.frozen} came back as frozen={q.frozen}")

    ya, dxa, deltas_a = _forward_backward(layer, inputs, seed)
    yb, dxb, deltas_b = _forward_backward(loaded, inputs, seed)
    outs_a, outs_b = _arrays(ya), _arrays(yb)
    check(len(outs_a) == len(outs_b), "the loaded copy returns a different number of outputs")
    for i, (a, b) in enumerate(zip(outs_a, outs_b)):
        check(_same_bits(a, b), f"output {i} is not bit-identical after loading "
                                f"(max |difference| {np.max(np.abs(a - b), initial=0.0) if a.shape == b.shape else 'n/a'})")
    grads_a, grads_b = _arrays(dxa), _arrays(dxb)
    check(len(grads_a) == len(grads_b), "backward returns a different number of input gradients")
    for i, (a, b) in enumerate(zip(grads_a, grads_b)):
        check(_close(a, b), f"input gradient {i} differs after loading")
    for p, q in zip(params_a, params_b):
        check((p in deltas_a) == (q in deltas_b), f"parameter {p.name!r} gets a gradient in only one copy")
        if p in deltas_a:
            check(_close(deltas_a[p], deltas_b[q]), f"the gradient of parameter {p.name!r} differs after loading")

    # Training the copy must leave the original alone.
    as_loaded = [q.value.copy() for q in params_b]
    for q in params_b:
        if not q.frozen:
            q.value += q.value.dtype.type(1.0)
    for p, value in zip(params_a, before):
        check(_same_bits(p.value, value), f"changing the loaded copy changed the original's {p.name!r}")
    for q, value in zip(params_b, as_loaded):  # undo, so that the caller gets the copy as loaded
        np.copyto(q.value, value)
    return loaded
