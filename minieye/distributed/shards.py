"""Data that the workers load themselves: a shard index -> ``(inputs, targets)``.

    source = ShardSource(load_month, count=12)             # load_month(i) -> (x_i, y_i), on a worker
    source = ShardSource.files(["part-0.npz", "part-1.npz"])        # arrays "x" and "y" in each file
    source = ShardSource.files([("x0.npy", "y0.npy"), ("x1.npy", "y1.npy")])

    DistributedProblem(net, loss, shards=source)            # the client never holds the rows

A source holds only a recipe (a function, or paths): it travels to the workers, and the
worker that evaluates shard i calls ``source.load(i)`` there. A function must be
importable on the workers (or defined in the ``__main__`` script that starts the run:
Dask ships such functions by value). Paths must be readable from every worker (a shared
file system, or the same files on each host), since a shard moves to another worker
when its worker is lost. Arrays are read with ``allow_pickle=False``.

``load`` must be deterministic: a shard re-loaded on another worker has to give the
same rows, which the problem checks (row count, per-row shapes and dtypes).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np

from ..checks import check_positive_int, fail

__all__ = ["ShardSource"]

Path = str | os.PathLike


class ShardSource:
    """``count`` shards, shard i being ``load(i) -> (inputs, targets)`` as ``train.Problem`` takes them.

    Args:
        load: a picklable callable; ``inputs`` is an array or a tuple of arrays (one per
            network input), ``targets`` an array, a tuple of arrays, or None.
        count: the number of shards (indices 0..count-1).

    Shapes: every array of one shard has the same number of rows (first axis); the rows
    of all shards, in index order, are the problem's rows 0..N-1.
    """

    def __init__(self, load: Callable[[int], tuple[Any, Any]], count: int):
        if not callable(load):
            raise TypeError(str(fail("ShardSource", "load a callable shard index -> (inputs, targets)",
                                     type(load).__name__)))
        self._load = load
        self.count = check_positive_int(count, "ShardSource", "count")

    @classmethod
    def files(cls, paths: Sequence[Path | Sequence[Path]], inputs: Sequence[str] = ("x",),
              targets: Sequence[str] | None = ("y",)) -> "ShardSource":
        """One shard per entry of ``paths``: an ``.npz`` file holding arrays named ``inputs``
        and ``targets``, or a tuple of ``.npy`` files, one per name (inputs, then targets).
        ``targets=None``: a loss without targets. The files are opened by the workers only."""
        where = "ShardSource.files"
        if isinstance(paths, (str, os.PathLike)) or not isinstance(paths, Sequence) or not paths:
            raise fail(where, "paths a non-empty list (one entry per shard)", repr(paths)[:80])
        names_in = _names(inputs, where, "inputs")
        names_out = None if targets is None else _names(targets, where, "targets")
        entries = [_entry(p, i, len(names_in) + len(names_out or ()), where) for i, p in enumerate(paths)]
        return cls(_FileShards(entries, names_in, names_out), len(entries))

    def load(self, index: int) -> tuple[Any, Any]:
        """Shard ``index``'s ``(inputs, targets)`` (called on a worker)."""
        if not 0 <= index < self.count:
            raise fail("ShardSource.load", f"a shard index in [0, {self.count})", repr(index))
        return self._load(index)

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"ShardSource({self._load!r}, count={self.count})"


def _names(names: Any, where: str, argument: str) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    if not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise fail(where, f"{argument} a sequence of array names", repr(names))
    return tuple(names)


def _entry(path: Any, index: int, arrays: int, where: str) -> str | tuple[str, ...]:
    """One shard's file(s), checked for form only (the client need not see the files)."""
    if isinstance(path, (str, os.PathLike)):
        path = os.fspath(path)
        if not path.endswith(".npz"):
            raise fail(where, f"paths[{index}] an .npz file (or a tuple of .npy files)", repr(path))
        return path
    if isinstance(path, Sequence) and all(isinstance(p, (str, os.PathLike)) for p in path):
        group = tuple(os.fspath(p) for p in path)
        if len(group) != arrays or not all(p.endswith(".npy") for p in group):
            raise fail(where, f"paths[{index}] a tuple of {arrays} .npy files (one per input and target)",
                       repr(group))
        return group
    raise TypeError(str(fail(where, f"paths[{index}] a path or a tuple of paths", type(path).__name__)))


class _FileShards:
    """The loader behind ``ShardSource.files``: plain paths and names, so it pickles small."""

    def __init__(self, entries: list[str | tuple[str, ...]], inputs: tuple[str, ...],
                 targets: tuple[str, ...] | None):
        self.entries, self.inputs, self.targets = entries, inputs, targets

    def __call__(self, index: int) -> tuple[tuple[np.ndarray, ...], Any]:
        entry = self.entries[index]
        names = self.inputs + (self.targets or ())
        if isinstance(entry, str):
            with np.load(entry, allow_pickle=False) as stored:
                missing = [n for n in names if n not in stored.files]
                if missing:
                    raise ValueError(f"shard {index}: {entry} has no array named {missing[0]!r} "
                                   f"(it holds {sorted(stored.files)})")
                arrays = [stored[n] for n in names]
        else:
            arrays = [np.load(p, allow_pickle=False) for p in entry]
        inputs, rest = tuple(arrays[:len(self.inputs)]), arrays[len(self.inputs):]
        if self.targets is None:
            return inputs, None
        return inputs, rest[0] if len(rest) == 1 else tuple(rest)

    def __repr__(self) -> str:
        return f"files({len(self.entries)} shards, first {self.entries[0]!r})"
