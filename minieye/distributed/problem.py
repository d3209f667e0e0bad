"""A train.Problem whose loss and gradient are sums over data partitions held by Dask workers.

The rows (first axis of every input and target) are cut into P contiguous partitions
of n_1..n_P rows, scattered once to the workers and kept there; or, with
``shards=ShardSource(...)``, partition i is shard i, which its worker loads itself, so
the client never holds the data. For a batch B of N
rows (all rows, or a mini-batch) with N_i of them in partition i, and a loss that is
a mean over rows,

    L(B) = sum_i (N_i / N) L_i(B_i)        grad L(B) = sum_i (N_i / N) grad L_i(B_i)

(``reduction="sum"``: weights 1). Each partition lives in a Dask actor on its worker
(``worker.PartitionEvaluator``), which rebuilt the network once from minieye's file
format. Each evaluation sends the optimised parameters' values to every actor (one
direct call each, all in flight at once), each evaluates its rows with the ordinary
single-process ``Problem``, and the client adds the weighted results in partition
order (a fixed order, so runs are reproducible, and a partition moved off a lost
worker by ``placement.Placement`` changes no bit of the sum). Everything else, the mini-batch
draws, the orientation, the line search, the monitors, runs on the client exactly as
for a ``Problem``: ``Trainer`` takes this object unchanged.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from ..checks import check_bool, check_nonneg_int, check_positive_int, fail, fail_type
from ..core import DeltaSet, Layer, Parameter
from ..options import get
from ..train.constraints import Box
from ..train.problem import Problem
from .cluster import connect
from .placement import Placement, live_workers
from .shards import ShardSource
from .wire import generators, layer_state, pack_model, partition_states, set_layer_state

__all__ = ["DistributedProblem"]


class DistributedProblem(Problem):
    """``loss(net(*inputs), targets)`` evaluated on Dask workers, partition by partition.

    Args (beyond ``train.Problem``'s net, loss, inputs, targets, batch_size, rng,
    params, constraints):
        shards: a ``ShardSource`` instead of inputs and targets: shard i (rows
            ``source.load(i)``, loaded by the worker that holds it) is partition i, and
            the problem's rows are the shards' rows in index order.
        retries: how many times one evaluation may move partitions off lost workers
            before it gives up (a RuntimeError; the parameters stay unchanged).
        client: an existing ``dask.distributed.Client`` (left open by ``close``).
        address: a scheduler address ("tcp://host:8786") to connect to instead.
        n_workers, threads_per_worker: the LocalCluster of processes started when
            neither client nor address is given (closed by ``close``).
        n_partitions: how many pieces in-memory rows are cut into (default: one per worker),
            placed round-robin over the workers. Each lives in an actor, which runs
            one call at a time, so more than one per worker adds no parallelism.
        reduction: "mean" (the loss is a mean over rows: partitions are weighted by
            their share of the batch) or "sum" (weights 1).
        numba_threads: threads of minieye's kernels in each call (default:
            threads_per_worker on a LocalCluster started here, the workers' own
            setting on a cluster given by client or address).
        direct: the client started here (for address=, or with its LocalCluster) calls
            the workers directly (``Client(direct_to_workers=True)``); False relays
            through the scheduler, for a client that can reach only the scheduler. A
            client passed in keeps its own setting.
        warm_up: evaluate every partition once when the problem is built (and once
            more on batch_size rows spread over the partitions), so that each worker
            compiles its Numba kernels before training starts (``setup_seconds`` says
            how long that took).

    Attributes: ``row_ranges`` and ``workers`` (each partition's rows and worker),
    ``placement`` (its ``moves``: partitions moved off lost workers),
    ``setup_seconds``, and ``last_timing`` of the latest evaluation: ``wall`` (seconds
    on the client), ``compute`` and ``cpu`` (wall and CPU seconds of the slowest
    worker), ``overhead`` (wall - compute: sending, scheduling, gathering, summing).

    Shapes: as ``train.Problem``; every input and target has the same number of rows N.
    Use it as a context manager (or call ``close()``) to release the data on the
    workers and stop a cluster it started.
    """

    def __init__(self, net: Layer, loss: Layer, inputs: Any = (), targets: Any = None,
                 batch_size: int | None = None, rng: np.random.Generator | int | None = None,
                 params: Sequence[Parameter] | None = None, constraints: Sequence[Box] = (), *,
                 client: Any = None, address: str | None = None, n_workers: int = 2,
                 threads_per_worker: int = 1, n_partitions: int | None = None,
                 reduction: str = "mean", warm_up: bool = True, numba_threads: int | None = None,
                 direct: bool = True, shards: ShardSource | None = None, retries: int = 3):
        where = "DistributedProblem"
        self._check_shards(shards, inputs, targets, n_partitions, where)
        super().__init__(net, loss, inputs, targets, batch_size=None if shards is not None else batch_size, rng=rng,
                         params=params, constraints=constraints)
        if reduction not in ("mean", "sum"):
            raise fail(where, "reduction 'mean' or 'sum'", repr(reduction))
        self.reduction = reduction
        self.direct = check_bool(direct, where, "direct")
        self.shards = shards
        self.retries = check_nonneg_int(retries, where, "retries")
        if shards is None:
            self.n_rows = self._row_count(where)
        if n_partitions is not None:
            n_partitions = check_positive_int(n_partitions, where, "n_partitions")
        self._owned: list[Any] = []
        self.placement: Placement | None = None
        self.closed = False
        if numba_threads is not None:
            numba_threads = check_positive_int(numba_threads, where, "numba_threads")
        elif client is None and address is None:
            numba_threads = threads_per_worker
        self.numba_threads = numba_threads
        self.client, self._owned = connect(client, address, n_workers, threads_per_worker, direct)
        try:
            self._place(n_partitions, batch_size, where)
            self.setup_seconds = 0.0
            self.evaluations = 0
            self.last_timing: dict[str, float] = {}
            if warm_up:
                start = time.perf_counter()
                # warming up must not move running statistics nor draw from the layers' generators
                before = layer_state(self.layers())
                drawn = [g.bit_generator.state for g in generators(self.layers())]
                self.evaluate_vector(None)
                if self.batch_size is not None:  # mini-batch sizes may take other kernel paths
                    spread = np.unique(np.linspace(0, self.n_rows - 1, self.batch_size).round().astype(int))
                    self.evaluate_vector(spread)  # (a fixed set of rows: the problem's rng is untouched)
                set_layer_state(self.layers(), before)
                for g, state in zip(generators(self.layers()), drawn):
                    g.bit_generator.state = state
                self.evaluations = 0
                self.setup_seconds = time.perf_counter() - start
        except BaseException:
            self.close()
            raise

    # -- setup -------------------------------------------------------------------------------
    @staticmethod
    def _check_shards(shards: Any, inputs: Any, targets: Any, n_partitions: Any, where: str) -> None:
        if shards is None:
            return
        if not isinstance(shards, ShardSource):
            raise fail_type(where, "shards a minieye.distributed.ShardSource", type(shards).__name__, value=shards)
        if (inputs is not None and not (isinstance(inputs, (tuple, list)) and not inputs)) or targets is not None:
            raise fail(where, "either shards= or inputs and targets, not both", "both",
                       "the workers load every row from the shard source")
        if n_partitions is not None:
            raise fail(where, "no n_partitions with shards= (each shard is one partition)",
                       f"n_partitions={n_partitions!r}")

    def _row_count(self, where: str) -> int:
        counts = self.row_counts()
        if not counts:
            raise fail(where, "inputs or targets to split into partitions", "no data",
                       "a source-only network (learning an image) has nothing to distribute: use train.Problem")
        n = next(iter(counts.values()))
        if any(c != n for c in counts.values()) or n == 0:
            raise fail(where, "the same, non-zero number of rows (first axis) in every input and target",
                       ", ".join(f"{k}: {v}" for k, v in counts.items()))
        return n

    def _place(self, n_partitions: int | None, batch_size: int | None, where: str) -> None:
        """Start one actor per partition (placement.Placement): rows cut from the client's data
        and scattered to the actor's worker, or a shard the worker loads."""
        pack = lambda: pack_model(self.net, self.loss, self.params)  # noqa: E731
        workers = live_workers(self.client)  # none: place_all explains
        if self.shards is not None:
            count = len(self.shards)
        else:
            count = min(n_partitions or len(workers) or 1, self.n_rows)
            bounds = np.linspace(0, self.n_rows, count + 1).round().astype(int)
            self.row_ranges = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        hint = (" If the client cannot reach the workers directly, pass direct=False."
                if self.direct and self._owned else "")
        self.placement = Placement(self.client, count, self._payload, pack, self.numba_threads, self.retries, hint)
        self.placement.place_all(workers)
        if self.shards is not None:
            self._shard_rows(batch_size, where)

    def _payload(self, i: int, address: str) -> tuple[Any, Any, list[Any]]:
        """Partition i's data arguments for an actor on ``address`` (see Placement)."""
        if self.shards is not None:
            return None, (self.shards, i), []
        a, b = self.row_ranges[i]
        part = self._select(np.arange(a, b)) if (a, b) != (0, self.n_rows) else self._select(None)
        data = self.client.scatter([part], workers=[address], hash=False)[0]
        return data, None, [data]

    def _shard_rows(self, batch_size: int | None, where: str) -> None:
        """Rows of each shard, as its worker loaded them; every shard laid out as the first."""
        layouts = self.placement.layout
        for i, (rows, layout) in enumerate(layouts):
            if rows == 0 or layout != layouts[0][1]:
                raise fail(where, f"every shard with rows laid out as shard 0's (row shapes and dtypes "
                           f"{layouts[0][1]})", f"shard {i}: {rows} rows, {layout}")
        bounds = np.concatenate([[0], np.cumsum([rows for rows, _ in layouts])]).astype(int)
        self.row_ranges = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        self.n_rows = int(bounds[-1])
        if batch_size is not None:  # train.Problem's mini-batch draws, over the shards' rows
            self.batch_size = check_positive_int(batch_size, where, "batch_size")
            if self.batch_size > self.n_rows:
                raise fail(where, f"batch_size <= the number of rows in the shards ({self.n_rows})",
                           f"batch_size={self.batch_size}")
            self.n_samples = self.n_rows

    @property
    def workers(self) -> list[str]:
        """The worker holding each partition, in partition order."""
        return list(self.placement.workers)

    def refresh(self) -> None:
        """Resend the whole network (needed only after changing parameters the problem does
        not optimise, e.g. frozen ones: the optimised ones travel with every evaluation)."""
        self._check_open()
        packed = pack_model(self.net, self.loss, self.params)
        self.placement.call([(i, "reload", (packed,)) for i in range(len(self.row_ranges))])

    @property
    def partition_sizes(self) -> list[int]:
        """Rows in each partition, in partition order."""
        return [b - a for a, b in self.row_ranges]

    # -- evaluation --------------------------------------------------------------------------
    def _rows(self, batch: np.ndarray | None) -> list[tuple[int, np.ndarray | None, int]]:
        """``(partition, local rows or None for all, row count)`` for each partition the batch touches."""
        if batch is None:
            return [(i, None, b - a) for i, (a, b) in enumerate(self.row_ranges)]
        batch = self._checked_batch(batch, self.n_rows)
        out = []
        for i, (a, b) in enumerate(self.row_ranges):
            local = batch[(batch >= a) & (batch < b)] - a  # keeps the batch's order within the partition
            if local.size:
                out.append((i, local, int(local.size)))
        return out

    def evaluate_vector(self, batch: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Loss (a float) and flat float64 gradient over ``batch`` (None: all rows), computed on the workers."""
        self._check_open()
        start = time.perf_counter()
        values = [np.array(p.value, copy=True) for p in self.params]  # the client may overwrite p.value next
        self.placement.rebalance()  # workers that joined since take partitions (placement.py)
        jobs = self._rows(batch)
        total_rows = sum(n for _, _, n in jobs)
        layers = self.layers()
        states = partition_states(layers, len(jobs))
        # One direct call per partition's actor, all in flight at once.
        results = self.placement.call([(i, "evaluate", (values, rows, state))
                                       for (i, rows, _), state in zip(jobs, states)])
        self.evaluations += 1
        loss, grad = 0.0, np.zeros(self.size)
        for (_, _, n), (part_loss, part_grad, *_) in zip(jobs, results):
            weight = n / total_rows if self.reduction == "mean" else 1.0
            loss += weight * part_loss
            grad += weight * part_grad.astype(np.float64)  # float32 parameters send float32 gradients
        self._gather_buffers(layers, states[0][1], [n / total_rows for _, _, n in jobs], [r[4] for r in results])
        wall = time.perf_counter() - start
        compute = max(r[2] for r in results)
        self.last_timing = {"wall": wall, "compute": compute, "overhead": wall - compute,
                            "cpu": max(r[3] for r in results)}
        return float(loss), grad

    @staticmethod
    def _gather_buffers(layers: list[Layer], sent: list[np.ndarray], shares: list[float],
                        partition_buffers: list[list[np.ndarray]]) -> None:
        """The client's buffers after an evaluation: each float buffer the row-weighted mean of
        what the partitions left (a running mean moved by a batch mean then moves by the whole
        batch's mean, as in one process; a running variance by the mean of the partitions'
        variances); integer ones (batch counters) as the first partition left them (every
        partition counted the same batch). Buffers no partition changed (evaluation mode) stay
        as they were, bit for bit."""
        targets = [value for layer in layers for value in layer.buffers().values()]
        for k, target in enumerate(targets):
            if all(np.array_equal(buffers[k], sent[k]) for buffers in partition_buffers):
                continue
            if np.issubdtype(target.dtype, np.floating):
                mean = sum(share * buffers[k].astype(np.float64) for share, buffers in zip(shares, partition_buffers))
                np.copyto(target, mean, casting="same_kind")
            else:
                np.copyto(target, partition_buffers[0][k])

    def evaluate(self, batch: np.ndarray | None = None) -> tuple[float, DeltaSet]:
        """``evaluate_vector`` with the gradient as a DeltaSet over ``params``."""
        loss, grad = self.evaluate_vector(batch)
        return loss, DeltaSet.from_vector(self.params, grad)

    def forward(self, batch: np.ndarray | None = None) -> tuple[float, Callable[[], DeltaSet]]:
        """``train.Problem.forward``'s contract, computed on the workers. The workers run the
        backward pass at once (a deferred one would need the actors to keep activations and
        parameter values per trial), so ``gradient()`` only unpacks the result."""
        loss, grad = self.evaluate_vector(batch)
        return loss, lambda: DeltaSet.from_vector(self.params, grad)

    # -- lifetime ----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise fail("DistributedProblem", "an open problem", "one that was closed",
                       "build a new DistributedProblem")

    def close(self) -> None:
        """Release the data and models on the workers; stop the client and cluster this problem started."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.placement is not None:
                self.placement.release()  # the actors go, with the network and the data
        finally:
            for thing in self._owned:
                thing.close()
            self._owned = []

    def __enter__(self) -> "DistributedProblem":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        batch = "full batch" if self.batch_size is None else f"batch_size={self.batch_size}"
        return (f"DistributedProblem({self.net.label()}, {self.loss.label()}, {len(self.params)} params, "
                f"{batch}, {len(self.row_ranges)} {'shards' if self.shards else 'partitions'} on "
                f"{len(set(self.workers))} workers)")
