"""The other checks every layer goes through, and ``check_layer`` that runs them all.

- ``check_no_mutation``: forward and backward leave inputs, dy and parameter values alone;
- ``check_backward_twice``: a backward closure can run again: same dx, deltas doubled;
- ``check_interleaved``: another forward between a forward and its backward changes
  nothing (no per-call state on the layer);
- ``check_noncontiguous``: strided input and dy views give the same results;
- ``check_frozen``: a frozen parameter gets no delta, and nothing else changes;
- ``check_batch_invariance``: a batch of N gives the N single results (outputs, input
  gradients, and parameter gradients summed over samples);
- ``check_float32``: a float32 twin (same parameter values) computes in float32 and
  stays close to float64; a float64 layer fed float32 inputs still computes in float64;
- ``check_config``: ``type(layer)(**layer.config())`` rebuilds an equivalent layer and
  the config is JSON (layers inside containers aside);
- ``check_rejects_bad_dy`` and ``check_empty_batch`` (in ``robustness``): a wrong-shaped
  dy is refused with a ValueError; an empty batch gives empty outputs and gradients.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from ..core import DeltaSet, Layer, walk_layers
from .gradcheck import (as_grads, as_outputs, as_rng, check_gradients, describe_call, inputs64, pack_like, random_dy,
                        run_forward)
from .robustness import check_empty_batch, check_rejects_bad_dy

__all__ = ["check_layer", "check_no_mutation", "check_backward_twice", "check_interleaved", "check_noncontiguous",
           "check_frozen", "check_batch_invariance", "check_float32", "check_config"]


# Tolerances where results should agree to rounding (same arithmetic, maybe in another order).
_EXACT = (1e-12, 1e-15)


def _run(layer: Layer, xs: list[Any], dys: list[np.ndarray] | None, rng: np.random.Generator | None = None):
    """Forward then backward; returns (outputs, dys, input grads, deltas)."""
    y, backward = run_forward(layer, xs)
    ys = as_outputs(y)
    if dys is None:
        dys = random_dy(ys, rng, ys[0].dtype)
    deltas = DeltaSet()
    dxs = as_grads(backward(pack_like(dys, y), deltas), len(xs))
    return ys, dys, dxs, deltas


def _far(a: Any, b: Any, rtol: float, atol: float) -> bool:
    """Norm-wise comparison: ||a - b|| > rtol ||b|| + atol sqrt(size)."""
    if a is None or b is None:
        return (a is None) != (b is None)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return True
    err = np.linalg.norm((a - b).ravel())
    return not err <= rtol * np.linalg.norm(b.ravel()) + atol * np.sqrt(max(b.size, 1))


def _compare(where: str, what: str, got: list, want: list, rtol: float, atol: float, skip=()) -> None:
    for i, (a, b) in enumerate(zip(got, want)):
        if i not in skip and _far(a, b, rtol, atol):
            raise AssertionError(f"{where}: {what} {i} differs (rtol={rtol:g}, atol={atol:g})")


def _compare_deltas(where: str, what: str, got: DeltaSet, want: DeltaSet, rtol: float, atol: float) -> None:
    if set(map(id, got)) != set(map(id, want)):
        names = lambda d: sorted(p.name for p in d)  # noqa: E731
        raise AssertionError(f"{where}: {what} has deltas for {names(got)}, expected {names(want)}")
    for p in want:
        if _far(got[p], want[p], rtol, atol):
            raise AssertionError(f"{where}: {what}: delta of parameter {p.name!r} differs")


def _buffers(layer: Layer, evaluating_only: bool = False) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, array, copy) for the buffers of ``layer`` and the layers inside it."""
    return [(f"{inner.label()} buffer {name!r}", array, array.copy()) for inner in walk_layers(layer)
            if not (evaluating_only and inner.training) for name, array in inner.buffers().items()]


def _check_buffers(where: str, saved: list[tuple[str, np.ndarray, np.ndarray]], when: str) -> None:
    for label, array, before in saved:
        if not np.array_equal(array, before, equal_nan=True):
            raise AssertionError(f"{where}: {label} changed {when}")


def check_no_mutation(layer: Layer, *inputs: Any, nondiff: Sequence[int] = (), rng: Any = None) -> None:
    """Forward and backward must not write into inputs, dy or parameter values; buffers
    (running statistics) may change only in the forward of a layer in training mode."""
    rng = as_rng(rng)
    xs = inputs64(inputs, nondiff)
    saved = [np.array(x, copy=True) for x in xs]
    params = [(p, p.value.copy()) for p in layer.parameters()]
    frozen_buffers = _buffers(layer, evaluating_only=True)
    y, backward = run_forward(layer, xs)
    where = describe_call(layer, xs)
    _check_buffers(where, frozen_buffers, "in a forward pass in evaluation mode")
    after_forward = _buffers(layer)
    ys = as_outputs(y)
    dys = random_dy(ys, rng, ys[0].dtype)
    dys_saved = [d.copy() for d in dys]
    backward(pack_like(dys, y), DeltaSet())
    _check_buffers(where, after_forward, "in backward")
    for i, (x, s) in enumerate(zip(xs, saved)):
        if not np.array_equal(np.asarray(x), s, equal_nan=True):
            raise AssertionError(f"{where}: input {i} was modified by forward or backward")
    for i, (d, s) in enumerate(zip(dys, dys_saved)):
        if not np.array_equal(d, s, equal_nan=True):
            raise AssertionError(f"{where}: dy {i} was modified by backward")
    for p, s in params:
        if not np.array_equal(p.value, s, equal_nan=True):
            raise AssertionError(f"{where}: parameter {p.name!r} was modified by forward or backward")


def check_backward_twice(layer: Layer, *inputs: Any, nondiff: Sequence[int] = (), rng: Any = None) -> None:
    """Running one backward closure twice gives the same dx and doubles every delta."""
    rng = as_rng(rng)
    xs = inputs64(inputs, nondiff)
    y, backward = run_forward(layer, xs)
    dy = pack_like(random_dy(as_outputs(y), rng, as_outputs(y)[0].dtype), y)
    deltas = DeltaSet()
    first = as_grads(backward(dy, deltas), len(xs))
    once = deltas.copy()
    second = as_grads(backward(dy, deltas), len(xs))
    where = describe_call(layer, xs)
    _compare(where, "second backward: gradient of input", list(second), list(first), *_EXACT, nondiff)
    _compare_deltas(where, "second backward (deltas / 2)", deltas.scale(0.5), once, *_EXACT)


def _strided(x: Any) -> Any:
    """The same values in a non-contiguous, column-major view (every other element of a doubled array)."""
    x = np.asarray(x)
    if x.ndim == 0 or x.size == 0:
        return x
    return np.asfortranarray(np.repeat(x, 2, axis=-1))[..., ::2]


def check_noncontiguous(layer: Layer, *inputs: Any, nondiff: Sequence[int] = (), rng: Any = None) -> None:
    """Non-contiguous (strided) inputs give the same output and gradients as contiguous ones."""
    rng = as_rng(rng)
    xs = inputs64(inputs, nondiff)
    if not xs:
        return
    ys, dys, dxs, deltas = _run(layer, xs, None, rng)
    views = [_strided(x) for x in xs]
    ys2, _, dxs2, deltas2 = _run(layer, views, [_strided(d) for d in dys])
    where = describe_call(layer, xs)
    _compare(where, "non-contiguous inputs: output", ys2, ys, *_EXACT)
    _compare(where, "non-contiguous inputs: gradient of input", list(dxs2), list(dxs), *_EXACT, nondiff)
    _compare_deltas(where, "non-contiguous inputs", deltas2, deltas, *_EXACT)


def check_interleaved(layer: Layer, *inputs: Any, nondiff: Sequence[int] = (), rng: Any = None) -> None:
    """A second forward (other inputs) between a forward and its backward changes nothing:
    layers keep no per-call state, so a line search may evaluate many points first."""
    rng = as_rng(rng)
    xs = inputs64(inputs, nondiff)
    ys, dys, dxs, deltas = _run(layer, xs, None, rng)
    y, backward = run_forward(layer, xs)
    others = [x if i in nondiff else x + rng.standard_normal(np.shape(x)) for i, x in enumerate(xs)]
    run_forward(layer, others)
    deltas2 = DeltaSet()
    dxs2 = as_grads(backward(pack_like(dys, y), deltas2), len(xs))
    where = describe_call(layer, xs)
    _compare(where, "forward on other inputs before backward: gradient of input", list(dxs2), list(dxs),
             *_EXACT, nondiff)
    _compare_deltas(where, "forward on other inputs before backward", deltas2, deltas, *_EXACT)


def check_frozen(layer: Layer, *inputs: Any, nondiff: Sequence[int] = (), rng: Any = None) -> None:
    """Freezing a parameter removes its delta and changes nothing else (output, dx, other deltas)."""
    rng = as_rng(rng)
    xs = inputs64(inputs, nondiff)
    params = [p for p in layer.parameters() if not p.frozen]
    if not params:
        return
    ys, dys, dxs, deltas = _run(layer, xs, None, rng)
    where = describe_call(layer, xs)
    for chosen in [[p] for p in params] + ([params] if len(params) > 1 else []):
        try:
            for p in chosen:
                p.frozen = True
            ys2, _, dxs2, deltas2 = _run(layer, xs, dys)
        finally:
            for p in chosen:
                p.frozen = False
        names = ", ".join(repr(p.name) for p in chosen)
        for p in chosen:
            if p in deltas2:
                raise AssertionError(f"{where}: frozen parameter {p.name!r} received a gradient")
        expected = DeltaSet((p, d) for p, d in deltas.items() if all(p is not q for q in chosen))
        _compare(where, f"with {names} frozen: output", ys2, ys, *_EXACT)
        _compare(where, f"with {names} frozen: gradient of input", list(dxs2), list(dxs), *_EXACT, nondiff)
        _compare_deltas(where, f"with {names} frozen", deltas2, expected, *_EXACT)


def check_batch_invariance(layer: Layer, *inputs: Any, nondiff: Sequence[int] = (), rng: Any = None,
                           rtol: float = 1e-9, atol: float = 1e-12) -> None:
    """A batch of N (axis 0 of every input and output) equals N single-sample evaluations.

    Outputs and input gradients are compared sample by sample; parameter deltas of the
    batch must equal the sum of the single-sample deltas.
    """
    rng = as_rng(rng)
    xs = inputs64(inputs, nondiff)
    where = describe_call(layer, xs)
    sizes = {np.shape(x)[0] if np.ndim(x) else None for x in xs}
    if not xs or len(sizes) != 1 or None in sizes:
        raise ValueError(f"{where}: batch invariance needs inputs sharing a batch axis 0")
    n = sizes.pop()
    ys, dys, dxs, deltas = _run(layer, xs, None, rng)
    for a in ys:
        if a.ndim == 0 or a.shape[0] != n:
            raise AssertionError(f"{where}: output of shape {a.shape} has no batch axis of size {n}")
    total = DeltaSet()
    for k in range(n):
        single = [np.asarray(x)[k:k + 1] for x in xs]
        ys1, _, dxs1, deltas1 = _run(layer, single, [d[k:k + 1] for d in dys])
        _compare(where, f"sample {k} alone: output", ys1, [a[k:k + 1] for a in ys], rtol, atol)
        _compare(where, f"sample {k} alone: gradient of input", list(dxs1),
                 [None if d is None else np.asarray(d)[k:k + 1] for d in dxs], rtol, atol, nondiff)
        total = total + deltas1
    _compare_deltas(where, "sum of single-sample deltas vs batch", total, deltas, rtol, atol)


def _copy_state(layer: Layer, twin: Layer) -> Layer:
    """Give ``twin`` (rebuilt from ``layer``'s config) the mode and buffers of ``layer``."""
    twin.train(layer.training)
    for name, array in layer.buffers().items():
        np.copyto(twin.buffers()[name], array)
    return twin


def _twin32(layer: Layer) -> Layer | None:
    """A float32 copy of ``layer`` (a layer with a dtype) with the same parameter values, mode and
    buffers; the layer itself when it has neither dtype nor parameters; None when it cannot say dtype."""
    params = layer.parameters()
    config = layer.config()
    if "dtype" not in config:  # parameter-free layers follow their inputs' dtype
        return None if params else layer
    twin = _copy_state(layer, type(layer)(**{**config, "dtype": "float32"}))
    for p, q in zip(params, twin.parameters()):
        if q.dtype != np.float32:
            raise AssertionError(f"{layer.label()}: built with dtype='float32', parameter {q.name!r} is {q.dtype}")
        q.value[...] = p.value
        q.frozen = p.frozen
    return twin


def check_float32(layer: Layer, *inputs: Any, nondiff: Sequence[int] = (), rng: Any = None,
                  rtol: float = 1e-3, atol: float = 1e-4) -> bool:
    """float32 results close to float64 ones, dtypes following the layer.

    Layers with a ``dtype`` are rebuilt with ``dtype="float32"`` (parameter values, mode and
    buffers copied); the others get float32 inputs. Outputs, input gradients and deltas must
    be float32 and within ``rtol``/``atol`` (norm-wise) of float64. Also checks that a
    float64 layer given float32 inputs computes in float64. Returns False when skipped
    (a container whose config has no dtype).
    """
    rng = as_rng(rng)
    xs = inputs64(inputs, nondiff)
    twin = _twin32(layer)
    if twin is None:
        return False
    where = describe_call(layer, xs)
    ys, dys, dxs, deltas = _run(layer, xs, None, rng)
    xs32 = [x if i in nondiff else x.astype(np.float32) for i, x in enumerate(xs)]
    ys32, _, dxs32, deltas32 = _run(twin, xs32, [d.astype(np.float32) for d in dys])
    for i, a in enumerate(ys32):
        if a.dtype != np.float32:
            raise AssertionError(f"{where}: float32 version gave output {i} of dtype {a.dtype}")
    for i, d in enumerate(dxs32):
        if i not in nondiff and d is not None and np.asarray(d).dtype != np.float32:
            raise AssertionError(f"{where}: float32 version gave input gradient {i} of dtype {np.asarray(d).dtype}")
    _compare(where, "float32 vs float64: output", ys32, ys, rtol, atol)
    _compare(where, "float32 vs float64: gradient of input", list(dxs32), list(dxs), rtol, atol, nondiff)
    by_index = {i: p for i, p in enumerate(layer.parameters())}
    mapped = DeltaSet((by_index[i], deltas32[q]) for i, q in enumerate(twin.parameters()) if q in deltas32)
    _compare_deltas(where, "float32 vs float64", mapped, deltas, rtol, atol)
    if twin is not layer:  # a float64 layer computes in float64 whatever its inputs
        ys_mixed = as_outputs(run_forward(layer, xs32)[0])
        if any(a.dtype != np.float64 for a in ys_mixed):
            raise AssertionError(f"{where}: float64 layer fed float32 inputs gave {[str(a.dtype) for a in ys_mixed]}")
    return True


def _json_default(value: Any) -> Any:
    if isinstance(value, Layer):  # containers (WeightedSum) hold layers; io serializes them recursively
        return {"layer": type(value).__name__, "config": value.config()}
    if isinstance(value, np.ndarray):  # io stores config arrays in arrays.npz (docs/io.md): compare by value
        return {"ndarray": value.dtype.str, "shape": list(value.shape), "values": value.tolist()}
    raise TypeError(f"{type(value).__name__} is not JSON")


def check_config(layer: Layer, *inputs: Any, nondiff: Sequence[int] = ()) -> bool:
    """``type(layer)(**layer.config())`` rebuilds the layer: same config, same output with the
    same parameter values. Networks (no config of their own) are skipped: returns False."""
    from ..network import Graph, Sequential
    if isinstance(layer, (Sequential, Graph)):
        return False
    config = layer.config()
    try:
        text = json.dumps(config, default=_json_default, sort_keys=True)
    except TypeError as exc:
        raise AssertionError(f"{layer.label()}: config() is not JSON: {exc}") from None
    try:
        rebuilt = type(layer)(**config)
    except TypeError as exc:  # usually a constructor argument that config() does not return
        raise AssertionError(f"{layer.label()}: type(layer)(**layer.config()) fails ({exc}); config() must return "
                             f"the constructor's keyword arguments as a dict (docs/core.md)") from None
    twin = _copy_state(layer, rebuilt)
    if json.dumps(twin.config(), default=_json_default, sort_keys=True) != text:
        raise AssertionError(f"{layer.label()}: rebuilt from config() it reports {twin.config()}, not {config}")
    if layer.label() != twin.label():
        raise AssertionError(f"{layer.label()}: rebuilt layer is labelled {twin.label()}")
    params, twin_params = layer.parameters(), twin.parameters()
    if [(p.shape, p.dtype) for p in params] != [(q.shape, q.dtype) for q in twin_params]:
        raise AssertionError(f"{layer.label()}: rebuilt layer has different parameter shapes or dtypes")
    for p, q in zip(params, twin_params):
        q.value[...] = p.value
    if inputs or layer.n_inputs == 0:
        xs = inputs64(inputs, nondiff)
        _compare(describe_call(layer, xs), "rebuilt from config: output",
                 as_outputs(run_forward(twin, xs)[0]), as_outputs(run_forward(layer, xs)[0]), *_EXACT)
    return True


def check_layer(layer: Layer, *inputs: Any, nondiff: Sequence[int] = (), batch_invariant: bool = True,
                rng: Any = None, directions: int = 3, eps: float = 1e-6, rtol: float = 1e-5,
                atol: float = 1e-7, float32: bool = True, float32_rtol: float = 1e-3,
                float32_atol: float = 1e-4, roundtrip: bool = False, empty_batch: bool = True) -> None:
    """Every check on one float64 layer and its inputs; raises AssertionError on the first failure.

    ``nondiff``: indices of inputs that get no gradient (integer labels).
    ``batch_invariant``: also check that a batch equals its single samples.
    ``directions``/``eps``/``rtol``/``atol``: the finite-difference check (see check_gradients).
    ``float32``: also compare a float32 version (tolerances ``float32_rtol``/``float32_atol``).
    ``roundtrip``: also save and load it with ``minieye.io`` (``check_roundtrip``).
    ``empty_batch``: also check a batch of N = 0 (batch-invariant layers only; turn off only
    for a known bug, named in a comment where it is turned off).
    """
    rng = as_rng(rng)
    nondiff = tuple(nondiff)
    check_config(layer, *inputs, nondiff=nondiff)
    check_no_mutation(layer, *inputs, nondiff=nondiff, rng=rng)
    check_gradients(layer, *inputs, nondiff=nondiff, rng=rng, directions=directions, eps=eps, rtol=rtol, atol=atol)
    check_backward_twice(layer, *inputs, nondiff=nondiff, rng=rng)
    check_interleaved(layer, *inputs, nondiff=nondiff, rng=rng)
    check_noncontiguous(layer, *inputs, nondiff=nondiff, rng=rng)
    check_frozen(layer, *inputs, nondiff=nondiff, rng=rng)
    check_rejects_bad_dy(layer, *inputs, nondiff=nondiff, rng=rng)
    if batch_invariant and inputs:
        check_batch_invariance(layer, *inputs, nondiff=nondiff, rng=rng)
        if empty_batch:
            check_empty_batch(layer, *inputs, nondiff=nondiff, rng=rng)
    if float32:
        check_float32(layer, *inputs, nondiff=nondiff, rng=rng, rtol=float32_rtol, atol=float32_atol)
    if roundtrip:
        from .roundtrip import check_roundtrip
        check_roundtrip(layer, *inputs64(inputs, nondiff))
