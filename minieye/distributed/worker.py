"""The worker side: one cached model per problem, one plain Problem per data partition.

A task receives the packed model (a scattered future, resolved by Dask to the same
object each time on a worker), its partition of the data (scattered once and kept on
that worker) and the parameter values of this evaluation. The model is rebuilt once
per worker thread and problem and kept in ``_MODELS``; each evaluation writes the
values into it and runs the ordinary ``train.Problem.evaluate_vector`` on the
partition's rows, so the forward/backward logic is the single-process one.

This module imports no Dask: Dask calls these functions by reference, so workers
need minieye installed (and any user layer registered with ``me.io.register``
importable), nothing more.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Sequence

import numpy as np

from ..core import Layer, Parameter
from ..train.problem import Problem
from .wire import unpack_model

__all__ = ["evaluate_partition", "forget", "cached_models"]

# (problem token, worker thread) -> (net, loss, chosen params). Keyed by thread so that
# a worker with several threads never writes parameters under a running evaluation.
_MODELS: dict[tuple[str, int], tuple[Layer, Layer, list[Parameter]]] = {}
# (problem token, partition index, worker thread) -> the Problem over that partition.
_PARTS: dict[tuple[str, int, int], Problem] = {}
_LOCK = threading.Lock()


def _problem(token: str, model: dict[str, Any], index: int, part: tuple[tuple, Any]) -> Problem:
    thread = threading.get_ident()
    key = (token, index, thread)
    problem = _PARTS.get(key)
    if problem is None:
        with _LOCK:
            built = _MODELS.get((token, thread))
        if built is None:
            built = unpack_model(model)
            with _LOCK:
                _MODELS[(token, thread)] = built
        net, loss, params = built
        inputs, targets = part
        problem = Problem(net, loss, inputs, targets, params=params)
        with _LOCK:
            _PARTS[key] = problem
    return problem


def evaluate_partition(token: str, model: dict[str, Any], index: int, part: tuple[tuple, Any],
                       values: Sequence[np.ndarray], rows: np.ndarray | None,
                       numba_threads: int | None = None) -> tuple[float, np.ndarray, float]:
    """Loss and flat gradient on ``rows`` of partition ``index`` (None: all its rows).

    ``numba_threads`` caps the threads of Numba's parallel kernels for this call (the
    setting is per thread in Numba, so it is applied in the task itself; an environment
    variable set by the nanny comes too late when the worker re-imports a ``__main__``
    that imported minieye, hence numba, first).

    Returns ``(loss, gradient, seconds)``: the gradient flat, in the parameters' dtype
    (float64 when they mix dtypes); seconds is the compute time on the
    worker (so that the client can tell communication from computation).

    Shapes: ``values[k]`` has the shape of the k-th chosen parameter; the gradient has
    one entry per scalar of the chosen parameters, in their order.
    """
    start = time.perf_counter()
    if numba_threads is not None:
        import numba
        numba.set_num_threads(max(1, min(numba_threads, numba.config.NUMBA_NUM_THREADS)))
    problem = _problem(token, model, index, part)
    for p, value in zip(problem.params, values):
        p.value[...] = value
    loss, deltas = problem.evaluate(rows)
    # The gradient in the parameters' own dtype: the client's float64 sum is the same as
    # with to_vector's float64 copy, and float32 networks send half the bytes back.
    dtype = np.result_type(*[p.dtype for p in problem.params])
    grad = np.concatenate([deltas[p].ravel() if p in deltas else np.zeros(p.size, dtype)
                           for p in problem.params]).astype(dtype, copy=False)
    return loss, grad, time.perf_counter() - start


def forget(token: str) -> int:
    """Drop every cached model and partition problem of ``token``; returns how many entries went."""
    with _LOCK:
        models = [k for k in _MODELS if k[0] == token]
        parts = [k for k in _PARTS if k[0] == token]
        for k in models:
            del _MODELS[k]
        for k in parts:
            del _PARTS[k]
    return len(models) + len(parts)


def cached_models() -> list[str]:
    """Tokens of the problems whose models this process holds (for tests and diagnostics)."""
    with _LOCK:
        return sorted({k[0] for k in _MODELS})
