"""Which worker holds each partition's actor, and moving partitions off a lost worker.

Partition i lives in one ``PartitionEvaluator`` actor on one worker. The first placement
is round-robin over the workers (sorted by address). A call to the actors that fails
because a worker was lost (its process died, the machine went away: the call raises,
and the scheduler drops the worker or marks the actor's task as erred) re-starts each of
that worker's partitions on the surviving worker holding the fewest, where the actor
rebuilds the network and gets its rows again (re-loaded from the shard source, or sent
again from the client's copy), then repeats only the failed calls. The caller adds the
results in partition order, so a re-placement changes no bit of the sum.

Workers that join later (a nanny's replacement for a lost one, a worker started after the
problem) take partitions at the start of an evaluation (``rebalance``, looked for at most
every ``rebalance_every`` seconds, ``minieye.options``) while one worker holds two or more
partitions more than another: the run is back to full speed after a loss, and, as after a
loss, no bit changes. The new actors are built before the old ones go, so a move that fails
leaves the placement as it was.

Failures that are not a lost worker (an error raised by the evaluation itself, an actor
cancelled by someone) are raised at once. A call is re-tried at most ``retries`` times;
with no worker left (after waiting ``worker_wait`` seconds, ``minieye.options``) the
error says so.
"""
from __future__ import annotations

import time
import uuid
import warnings
from collections import Counter
from typing import Any, Callable

from ..checks import fail
from ..options import get
from .cluster import worker_addresses
from .worker import PartitionEvaluator

__all__ = ["Placement", "WorkerLost", "live_workers"]

POLL = 0.5  # seconds between checks that the worker of a call still in flight is alive


class WorkerLost(OSError):
    """The worker holding a partition left the cluster while the client waited on it."""


# (part, shard, futures to hold) for partition i on a worker: the actor's data arguments
Payload = Callable[[int, str], tuple[Any, Any, list[Any]]]


def live_workers(client: Any, exclude: set[str] = frozenset(), wait: bool = True) -> list[str]:
    """The scheduler's workers not in ``exclude``, sorted by address; with ``wait``, waits up to
    ``worker_wait`` seconds for one (a cluster starting, a worker its nanny restarts)."""
    deadline = time.monotonic() + get("worker_wait")
    while True:
        workers = [a for a in worker_addresses(client) if a not in exclude]
        if workers or not wait or time.monotonic() > deadline:
            return workers
        time.sleep(0.05)


class Placement:
    """The actors of ``count`` partitions on the client's workers, re-placed when a worker is lost.

    Args:
        client: the ``dask.distributed.Client``.
        count: the number of partitions.
        payload: ``payload(i, address) -> (part, shard, futures)``, the actor's data arguments.
        pack: returns the packed model (``wire.pack_model``) each new actor rebuilds.
        numba_threads: passed to every actor.
        retries: re-placements allowed within one call.
        hint: appended to the error of a failed call (e.g. how to reach the workers).

    Attributes: ``workers`` (the address holding each partition), ``layout`` (each
    partition's ``describe()``: rows and per-row shapes), ``moves`` (``(partition, from,
    to)`` of every re-placement and every move by ``rebalance``), ``refused`` (workers that
    failed to build partitions ``rebalance`` moved to them: not offered any again).
    """

    def __init__(self, client: Any, count: int, payload: Payload, pack: Callable[[], dict],
                 numba_threads: int | None, retries: int, hint: str = ""):
        self.client, self.count, self.payload, self.pack = client, count, payload, pack
        self.numba_threads, self.retries, self.hint = numba_threads, retries, hint
        self.workers: list[str] = [""] * count
        self.actors: list[Any] = [None] * count
        self.layout: list[Any] = [None] * count
        self.moves: list[tuple[int, str, str]] = []
        self._held: list[list[Any]] = [[] for _ in range(count)]  # each partition's futures, its actor's last
        self._last_look = time.monotonic()
        self.refused: set[str] = set()  # workers that failed to build moved partitions (rebalance)

    # -- placing --------------------------------------------------------------------------------
    def place_all(self, workers: list[str] | None = None) -> None:
        """Every partition on ``workers`` (default: the live ones), round-robin, and its
        ``describe()`` in ``layout``."""
        workers = live_workers(self.client) if workers is None else workers
        if not workers:  # a cluster that is starting, or a worker the nanny is restarting
            raise fail("DistributedProblem", f"at least one Dask worker connected to the scheduler "
                       f"(waited {get('worker_wait'):g} s)", "none",
                       "start workers (dask worker <scheduler address>) before building the problem")
        self._start({i: workers[i % len(workers)] for i in range(self.count)})
        self.layout = self.call([(i, "describe", ()) for i in range(self.count)])

    def _start(self, targets: dict[int, str]) -> None:
        """Start partition i's actor on ``targets[i]``, for each i, and wait until all are built."""
        addresses = sorted(set(targets.values()))
        model = self.client.scatter([self.pack()], workers=addresses, broadcast=True, hash=False)[0]
        try:
            pending = {}
            for i, address in targets.items():
                part, shard, held = self.payload(i, address)
                actor = self.client.submit(PartitionEvaluator, model, part, self.numba_threads, shard,
                                           actor=True, workers=[address], allow_other_workers=False,
                                           key=f"minieye-partition-{i}-{uuid.uuid4().hex}")
                self._held[i], self.workers[i] = held + [actor], address
                pending[i] = actor
            lost = None
            for i, actor in pending.items():
                try:
                    self.actors[i] = self._wait(actor, targets[i])
                except WorkerLost as exc:  # the others' actors still count: only this one is re-placed
                    lost = lost or exc
                except Exception as exc:
                    raise RuntimeError(f"DistributedProblem: building partition {i} on worker {targets[i]} "
                                       f"failed ({type(exc).__name__}: {exc})") from exc
            if lost is not None:
                raise lost
        finally:
            model.release()  # every actor has rebuilt its network: the bytes are no longer needed

    # -- calling --------------------------------------------------------------------------------
    def call(self, calls: list[tuple[int, str, tuple]]) -> list[Any]:
        """``method(*args)`` on partition i's actor for each ``(i, method, args)``, all in flight at
        once; calls that fail with a lost worker are repeated after re-placing its partitions."""
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(self.retries + 1):
            failed = self._round(calls, todo, results)
            if not failed:
                return results
            lost = self._lost({calls[k][0]: exc for k, exc in failed.items()})
            if attempt == self.retries:
                break
            try:
                self._replace(lost)
            except WorkerLost:  # the new worker went too: the next round finds its partitions lost
                pass
            todo = sorted(failed)
        raise RuntimeError(f"DistributedProblem: partitions {lost} lost their worker after {self.retries} "
                           f"re-placements in this evaluation (retries={self.retries}); the parameters are "
                           f"unchanged") from next(iter(failed.values()))

    def _round(self, calls: list[tuple[int, str, tuple]], todo: list[int], results: list[Any]) -> dict[int, Exception]:
        pending, failed = {}, {}
        for k in todo:
            i, method, args = calls[k]
            try:
                if self.actors[i] is None:
                    raise WorkerLost(f"partition {i} has no actor (its worker {self.workers[i]} was lost)")
                pending[k] = getattr(self.actors[i], method)(*args)
            except Exception as exc:
                failed[k] = exc
        for k, call in pending.items():
            try:
                results[k] = self._wait(call, self.workers[calls[k][0]])
            except Exception as exc:
                failed[k] = exc
        return failed

    def _wait(self, future: Any, address: str) -> Any:
        """``future.result()``, or WorkerLost as soon as the scheduler no longer lists ``address``.
        (Dask waits for ever on an actor, or a task pinned to a worker, whose worker left
        without its task being marked as failed.)"""
        while True:
            try:
                return future.result(timeout=POLL)
            except TimeoutError:
                try:
                    gone = address not in live_workers(self.client, wait=False)
                except OSError:  # the scheduler did not answer: no news, keep waiting
                    gone = False
                if gone:
                    raise WorkerLost(f"worker {address} left the cluster during the call") from None

    def _lost(self, failures: dict[int, Exception]) -> list[int]:
        """The failed partitions whose worker was lost; the error itself when none was."""
        deadline = time.monotonic() + get("worker_wait")
        while True:
            try:
                live = set(live_workers(self.client, wait=False))
            except OSError:  # the scheduler did not answer: no worker is known to be lost
                live = set(self.workers)
            states = {i: self._held[i][-1].status if self._held[i] else "lost" for i in failures}
            lost = sorted(i for i in failures if self.workers[i] not in live or states[i] in ("error", "lost"))
            settled = (len(lost) == len(failures) or "cancelled" in states.values()
                       or not all(isinstance(e, (OSError, RuntimeError)) for e in failures.values()))
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.05)  # the scheduler notices a dead worker within milliseconds to seconds
        if lost:
            return lost
        exc = next(iter(failures.values()))
        raise RuntimeError(f"DistributedProblem: evaluation on the workers failed ({type(exc).__name__}: "
                           f"{exc}); the parameters are unchanged.{self.hint if isinstance(exc, OSError) else ''}"
                           ) from exc

    def _replace(self, lost: list[int]) -> None:
        """Start the lost partitions again on the surviving workers holding the fewest, and check
        that each got the same rows back."""
        dead = {self.workers[i] for i in lost}
        for i in lost:
            self._release(i)
        workers = live_workers(self.client, exclude=dead)
        if not workers:
            raise RuntimeError(f"DistributedProblem: worker(s) {sorted(dead)} were lost with partitions {lost} "
                               f"and no Dask worker is left to take them (waited {get('worker_wait'):g} s); "
                               f"the parameters are unchanged. Start workers, or resume from a checkpoint")
        load = Counter(w for j, w in enumerate(self.workers) if j not in lost and w in workers)
        targets = {}
        for i in lost:
            address = min(workers, key=lambda w: (load[w], w))
            load[address] += 1
            targets[i] = address
        self._move(targets)

    def rebalance(self, force: bool = False) -> None:
        """Move partitions to the workers holding the fewest while one worker holds two or more
        more than another (workers that joined since the placement hold none). Call between
        evaluations; at most one look at the scheduler every ``rebalance_every`` seconds
        (``minieye.options``; None: never) unless ``force``."""
        every, now = get("rebalance_every"), time.monotonic()
        if not force and (every is None or now - self._last_look < every):
            return
        self._last_look = now
        try:
            workers = [w for w in live_workers(self.client, wait=False) if w not in self.refused]
        except OSError:  # the scheduler did not answer: look again next time
            return
        if not workers:
            return
        load = Counter({w: 0 for w in workers})
        load.update(w for w in self.workers if w in load)
        targets: dict[int, str] = {}
        while True:
            most = max(workers, key=lambda w: (load[w], w))
            least = min(workers, key=lambda w: (load[w], w))
            if load[most] - load[least] < 2:
                break
            i = max(j for j, w in enumerate(self.workers) if w == most and j not in targets)
            targets[i] = least
            load[most] -= 1
            load[least] += 1
        if targets:
            self._swap(targets)

    def _swap(self, targets: dict[int, str]) -> None:
        """rebalance's moves: the new actors are built and checked while the old ones still hold
        their partitions, which go only once that succeeded. If it fails (a worker that cannot
        build them, one lost meanwhile), every partition stays where it was, with a warning, and
        a worker that failed to build is not offered partitions again (``refused``)."""
        old = {i: (self._held[i], self.actors[i], self.workers[i]) for i in targets}
        recorded = len(self.moves)
        try:
            self._move(targets)
        except Exception as exc:
            for i, (held, actor, address) in old.items():
                if self._held[i] is not held and self._held[i] and self.client.status == "running":
                    self.client.cancel(self._held[i])
                self._held[i], self.actors[i], self.workers[i] = held, actor, address
            del self.moves[recorded:]
            if not isinstance(exc, WorkerLost):
                self.refused |= set(targets.values())
            warnings.warn(f"DistributedProblem: moving partitions {sorted(targets)} to worker(s) "
                          f"{sorted(set(targets.values()))} failed ({type(exc).__name__}: {exc}); they stay "
                          f"where they were", RuntimeWarning, stacklevel=4)
            return
        for held, _, _ in old.values():
            if held and self.client.status == "running":
                self.client.cancel(held)

    def _move(self, targets: dict[int, str]) -> None:
        """Start partition i's actor on ``targets[i]``, record the move, and check that each got the
        same rows back; when another worker is lost while the actors are built, the ones built
        are checked before the loss is passed on (the next round uses them as they are)."""
        self.moves.extend((i, self.workers[i], address) for i, address in targets.items())
        before = {i: self.actors[i] for i in targets}  # rebalance keeps the old actors until the move succeeds
        try:
            self._start(targets)
        except WorkerLost:
            self._check_rows([i for i in targets if self.actors[i] is not None and self.actors[i] is not before[i]],
                             targets)
            raise
        self._check_rows(list(targets), targets)

    def _check_rows(self, moved: list[int], targets: dict[int, str]) -> None:
        again = self.call([(i, "describe", ()) for i in moved])
        for i, layout in zip(moved, again):
            if layout != self.layout[i]:
                raise RuntimeError(f"DistributedProblem: partition {i} re-loaded on {targets[i]} has (rows, "
                                   f"layout) {layout}, not {self.layout[i]} as first loaded: a shard source "
                                   f"must return the same rows every time")

    def actor_futures(self) -> list[Any]:
        """The Dask futures of the partitions' actors (their keys start with "minieye-partition")."""
        return [held[-1] for held in self._held if held]

    # -- lifetime -------------------------------------------------------------------------------
    def _release(self, i: int) -> None:
        held, self._held[i], self.actors[i] = self._held[i], [], None
        if held and self.client.status == "running":
            self.client.cancel(held)

    def release(self) -> None:
        """Drop every partition's data and actor from the workers."""
        held = [f for futures in self._held for f in futures]
        self._held = [[] for _ in range(self.count)]
        self.actors = [None] * self.count
        if held and self.client.status == "running":
            self.client.cancel(held)
