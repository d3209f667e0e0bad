"""The worker side: a Dask actor holding the rebuilt network and one partition of the data.

Each partition lives in one ``PartitionEvaluator`` on the worker that holds the
partition (its rows sent by the client, or loaded there from a ``ShardSource``): a
Dask actor, so the client calls its methods directly on that worker, one round trip,
without going through the scheduler. It rebuilds the network from the
packed model once, wraps its rows in an ordinary single-process ``train.Problem``, and
on each call writes the parameter values it is given and runs that Problem's
forward and backward pass, so the arithmetic is exactly the single-process one.

This module imports no Dask: Dask builds the actor from a reference to this class,
so workers need minieye installed (and any user layer registered with
``me.io.register`` importable), nothing more.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator, Sequence

import numpy as np

from ..train.problem import Problem
from .wire import LayerState, buffer_copies, set_layer_state, unpack_model

__all__ = ["PartitionEvaluator"]


@contextlib.contextmanager
def _numba_threads(count: int | None) -> Iterator[None]:
    """Numba's thread count (a per-thread setting) at ``count`` for the block, then as it was:
    the worker thread runs other tasks afterwards, which must not inherit the cap."""
    if count is None:
        yield
        return
    import numba
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(count, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


class PartitionEvaluator:
    """The network and one partition of the rows, on a worker.

    Args:
        model: ``wire.pack_model``'s output (the network and loss in minieye's format).
        part: ``(inputs, targets)`` of this partition, as ``train.Problem`` takes them.
        numba_threads: cap on the threads of minieye's kernels during a call
            (Numba's setting is per thread: it is applied for each call and restored after it).
        shard: ``(source, index)`` instead of ``part``: the rows are
            ``source.load(index)``, read here on the worker.

    Shapes: ``values[k]`` of ``evaluate`` has the shape of the k-th optimised parameter;
    the returned gradient has one entry per scalar of them, in their order.
    """

    def __init__(self, model: dict[str, Any], part: tuple[tuple, Any] | None = None,
                 numba_threads: int | None = None, shard: tuple[Any, int] | None = None):
        self.numba_threads = numba_threads
        if shard is not None:
            source, index = shard
            part = source.load(index)
            if not isinstance(part, tuple) or len(part) != 2:
                raise TypeError(f"shard {index}: the shard source's load returned {type(part).__name__}; "
                                f"expected a tuple (inputs, targets)")
        self.part = part
        self.problem = self._build(model)

    def describe(self) -> tuple[int, list[tuple[tuple[int, ...], str]]]:
        """``(rows, [(row shape, dtype) of each input and target])``: what the client checks
        across partitions (the same layout) and when a shard is re-loaded (the same rows)."""
        named = self.problem.named_arrays()
        counts = set(self.problem.row_counts().values())
        if not named:
            raise ValueError("this partition holds no inputs and no targets")
        if len(counts) != 1:
            raise ValueError("rows (first axis) differ between the arrays of this partition: " +
                             ", ".join(f"{name}: {a.shape}" for name, a in named))
        return counts.pop(), [(tuple(a.shape[1:]), a.dtype.str) for _, a in named]

    def _build(self, model: dict[str, Any]) -> Problem:
        net, loss, params = unpack_model(model)
        inputs, targets = self.part
        return Problem(net, loss, inputs, targets, params=params)

    def reload(self, model: dict[str, Any]) -> None:
        """Rebuild the network from a newly packed model (``DistributedProblem.refresh``)."""
        self.problem = self._build(model)

    def evaluate(self, values: Sequence[np.ndarray], rows: np.ndarray | None,
                 state: LayerState | None = None) -> tuple[float, np.ndarray, float, float, list[np.ndarray] | None]:
        """Loss and flat gradient at ``values`` on ``rows`` of this partition (None: all of them).

        ``state``: the client's ``(modes, buffers, seeds)`` for this partition
        (``wire.partition_states``), written into this network first, so that the workers run
        in the client's modes, from the client's running statistics, with masks of their own.

        Returns ``(loss, gradient, seconds, cpu_seconds, buffers)``: the gradient in the
        parameters' dtype (float64 when they mix dtypes), the wall and CPU time of
        the computation here, so that the client can tell communication from
        computation, and work from waiting for a busy CPU, and the buffers as this
        evaluation left them (None when ``state`` was None).
        """
        start, cpu = time.perf_counter(), time.process_time()
        params = self.problem.params
        for p, value in zip(params, values):
            p.value[...] = value
        if state is not None:
            set_layer_state(self.problem.layers(), state)
        with _numba_threads(self.numba_threads):
            loss, deltas = self.problem.evaluate(rows)
        # The gradient in the parameters' own dtype: the client's float64 sum is then the
        # same as with to_vector's float64 copy, and float32 networks send half the bytes.
        dtype = np.result_type(*[p.dtype for p in params])
        grad = np.concatenate([deltas[p].ravel() if p in deltas else np.zeros(p.size, dtype)
                               for p in params]).astype(dtype, copy=False)
        buffers = None if state is None else buffer_copies(self.problem.layers())
        return loss, grad, time.perf_counter() - start, time.process_time() - cpu, buffers
