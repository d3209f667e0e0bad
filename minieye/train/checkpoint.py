"""Trainer checkpoints: everything needed to continue a run exactly.

A checkpoint is a minieye archive (``minieye.archive``: a zip of ``meta.json`` and
``arrays.npz``, written atomically) with ``meta["format"] == "minieye-checkpoint"``
and ``meta["version"] == 1``. It holds

    params        by position in problem.params: index, name, shape, dtype (values in
                  arrays "param.000", ... at their own dtype)
    current       the last accepted point: arrays "current.x" (float64 master copy),
                  "current.grad", "current.raw_grad", meta loss
    orientation   class, settings (config and what depends on the problem: the positions of
                  AdamW's decaying params) and state (L-BFGS pairs "orientation.s"/"orientation.y",
                  Adam moments and step count, momentum velocity)
    line_search   class and config
    rng           problem.rng.bit_generator.state (JSON), so mini-batches continue the same
    trainer       iteration, evaluations, elapsed time, last step/slope (initial step guess),
                  whether a new batch is due, the history (array "history", one row per Record)
    epochs        completed epochs, their summaries, where the current epoch began
    sampler       the problem's epoch permutation (array "sampler.order") and position in it
    problem       batch_size and n_samples (None for full batch), checked on resume (absent
                  from checkpoints written before it: not checked)
    layers        by position in the network (then the loss): buffers such as BatchNorm's running
                  statistics (arrays "layer.003.running_mean", ...) and the state of every
                  np.random.Generator a layer holds (Dropout's masks)
    monitors      by position: class and state (Validation's best point)

Resuming (``trainer.run(..., resume_from=path)``) with the same problem, orientation,
line search and monitors reproduces the uninterrupted run bit for bit: same steps,
same losses, same parameters. A mismatch (other parameter shapes, another
orientation or configuration, parameters of another dtype: a float64 run is not resumed
in float32 or back) is refused with a ValueError saying which.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..archive import array_header, check_writable, open_archive, write_archive
from ..checks import check_bool, check_positive_int, fail
from ..randomness import layer_generators
from .monitor import Monitor
from .settings import loss_resolution

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "FORMAT", "VERSION"]

FORMAT = "minieye-checkpoint"
VERSION = 1
_HISTORY_FIELDS = ("iteration", "loss", "step", "gradient_norm", "time", "evaluations")


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays inside RNG states as plain JSON types."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if "__array__" in value:
            return np.array(value["__array__"], dtype=value["dtype"])
        return {k: _from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value


def _split(state: dict[str, Any], prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Move the ndarrays of a state dict into ``arrays``; the rest stays as JSON."""
    meta: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            name = f"{prefix}.{key}"
            arrays[name] = value
            meta[key] = {"__stored__": name}
        else:
            meta[key] = _jsonable(value)
    return meta


def _join(meta: dict[str, Any], arrays: dict[str, np.ndarray], where: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for key, value in meta.items():
        if isinstance(value, dict) and "__stored__" in value:
            if value["__stored__"] not in arrays:
                raise ValueError(f"{where}: array {value['__stored__']!r} is missing")
            state[key] = arrays[value["__stored__"]]
        else:
            state[key] = _from_jsonable(value)
    return state


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _save_layers(problem: Any, arrays: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """What the layers keep besides parameters: buffers into ``arrays``, generator states as JSON."""
    entries = []
    for j, layer in enumerate(problem.layers()):
        buffers = layer.buffers() if hasattr(layer, "buffers") else {}
        for name, value in buffers.items():
            arrays[f"layer.{j:03d}.{name}"] = np.array(value)
        entries.append({"class": type(layer).__name__, "buffers": sorted(buffers),
                        "generators": {k: _jsonable(g.bit_generator.state) for k, g in layer_generators(layer).items()}})
    return entries


def _load_layers(problem: Any, entries: list[dict[str, Any]], arrays: dict[str, np.ndarray], where: str) -> None:
    found = problem.layers()
    _expect(len(entries) == len(found), where, f"{len(found)} layers as in the network",
            f"{len(entries)} in the checkpoint")
    for j, (entry, layer) in enumerate(zip(entries, found)):
        _expect(entry["class"] == type(layer).__name__, where, f"layer {j} a {type(layer).__name__}",
                f"a {entry['class']}")
        buffers = layer.buffers() if hasattr(layer, "buffers") else {}
        for name in entry["buffers"]:
            saved = arrays[f"layer.{j:03d}.{name}"]
            _expect(name in buffers and buffers[name].shape == saved.shape, where,
                    f"layer {j} ({layer.label()}) buffer {name!r} of shape {saved.shape}", "another shape or none")
            buffers[name][...] = saved  # in place: layers hold on to these arrays
        generators = layer_generators(layer)
        for name, state in entry["generators"].items():
            generators[name].bit_generator.state = _from_jsonable(state)


def save_checkpoint(trainer: Any, path: str | os.PathLike) -> None:
    """Write the trainer's full state to ``path`` (atomically; an existing file is replaced)."""
    problem, current = trainer.problem, trainer.current
    if current is None:
        raise fail("Trainer.save_checkpoint", "a trainer that has evaluated a finite starting point",
                   "no current point", "call run() first")
    trainer.complete_gradient()  # a step evaluated ahead on the next batch: its gradient is needed next
    arrays: dict[str, np.ndarray] = {"current.x": current.x}
    if current.grad is not None:  # None: a mini-batch step whose gradient was never needed
        arrays["current.grad"] = current.grad
    if current.raw_grad is not None:
        arrays["current.raw_grad"] = current.raw_grad
    params = []
    for i, (p, s) in enumerate(zip(problem.params, problem.slices)):
        arrays[f"param.{i:03d}"] = current.x[s].reshape(p.shape).astype(p.dtype)
        params.append({"index": i, "name": p.name, "shape": list(p.shape), "dtype": str(p.dtype)})
    arrays["history"] = np.array([[getattr(r, f) for f in _HISTORY_FIELDS] for r in trainer.history],
                                 dtype=np.float64).reshape(-1, len(_HISTORY_FIELDS))
    batch, next_batch = trainer.batches
    if batch is not None:
        arrays["batch"] = np.asarray(batch)
    if next_batch is not None:  # drawn, not yet evaluated (see train/ahead.py)
        arrays["next_batch"] = np.asarray(next_batch)
    orientation, search = trainer.orientation, trainer.line_search
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "params": params,
        "current": {"loss": current.loss},
        "orientation": {"class": type(orientation).__name__, "config": _jsonable(orientation.settings(problem)),
                        "state": _split(orientation.state_dict(), "orientation", arrays)},
        "line_search": {"class": type(search).__name__, "config": _jsonable(search.config())},
        "rng": _jsonable(problem.rng.bit_generator.state),
        "trainer": {"iteration": trainer.iteration, "evaluations": trainer.evaluations,
                    "elapsed": trainer.elapsed_before, "initial_loss": _finite_or_none(trainer.initial_loss),
                    "stale": trainer.stale, "last_step": _finite_or_none(trainer.last_step),
                    "last_slope": _finite_or_none(trainer.last_slope)},
        "monitors": [{"class": type(m).__name__, "state": _split(m.state_dict(), f"monitor{j}", arrays)}
                     for j, m in enumerate(trainer.monitors)],
        "epochs": trainer.epochs.state_dict(),
        "sampler": _split(problem.sampler_state(), "sampler", arrays),
        "problem": {"batch_size": problem.batch_size, "n_samples": problem.n_samples},
        "layers": _save_layers(problem, arrays),
    }
    write_archive(path, meta, arrays)


def _expect(condition: bool, where: str, expected: str, got: str, hint: str | None = None) -> None:
    if not condition:
        raise fail(where, expected, got, hint)


def load_checkpoint(trainer: Any, path: str | os.PathLike) -> None:
    """Restore the state written by ``save_checkpoint`` into ``trainer`` (and its problem's parameters and RNG)."""
    where = f"checkpoint {str(path)!r}"
    with open_archive(path) as (meta, arrays):
        _expect(meta.get("format") == FORMAT, where, f"format {FORMAT!r}", repr(meta.get("format")),
                "is this a network file? load it with minieye.io.load")
        _expect(meta.get("version") == VERSION, where, f"version {VERSION}", repr(meta.get("version")),
                "written by another minieye version")
        try:
            _restore(trainer, meta, arrays, where)
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"{where}: malformed checkpoint ({type(exc).__name__}: {exc})") from None


def _restore(trainer: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray], where: str) -> None:
    from .orient import Iterate
    from .result import Record

    problem = trainer.problem
    saved = meta["params"]
    _expect(len(saved) == len(problem.params), where, f"{len(problem.params)} parameters as in the problem",
            f"{len(saved)} in the checkpoint")
    for i, (entry, p) in enumerate(zip(saved, problem.params)):
        _expect(tuple(entry["shape"]) == p.shape, where,
                f"params[{i}] ({p.name!r}) of shape {p.shape}",
                f"shape {tuple(entry['shape'])} (saved as {entry['name']!r})")
        _expect(entry["dtype"] == str(p.dtype), where, f"params[{i}] ({p.name!r}) of dtype {p.dtype}",
                f"dtype {entry['dtype']} (saved as {entry['name']!r})",
                f"build the network with dtype={entry['dtype']!r} to resume this run: a resumed run repeats "
                f"the saved one exactly, which another precision cannot")
    batching = meta.get("problem")  # the batch order saved refers to rows of data of this size
    if batching is not None:
        ours = {"batch_size": problem.batch_size, "n_samples": problem.n_samples}
        _expect(ours == batching, where, f"a problem with batch_size={batching['batch_size']} and "
                f"{batching['n_samples']} rows as in the checkpoint (None: full batch)",
                f"batch_size={ours['batch_size']} and {ours['n_samples']} rows",
                "resume with the same data and batch size")
    orientation, search = trainer.orientation, trainer.line_search
    for key, obj, config in (("orientation", orientation, orientation.settings(problem)),
                             ("line_search", search, search.config())):
        info = meta[key]
        ours = {"class": type(obj).__name__, "config": _jsonable(config)}
        theirs = {"class": info["class"], "config": info["config"]}
        _expect(ours == theirs, where, f"{key} {info['class']}({info['config']}) as in the checkpoint",
                f"{ours['class']}({ours['config']})", "resume with the same optimizer settings"
                + (" (AdamW's params: positions in problem.params of the parameters that decay)"
                   if "params" in ours["config"] or "params" in theirs["config"] else ""))
    x_shape = array_header(arrays, "current.x")[0]  # checked before the values are read
    _expect(x_shape == (problem.size,), where, f"current.x of shape ({problem.size},)", f"{x_shape}")
    x = np.array(arrays["current.x"], dtype=np.float64)
    raw = arrays.get("current.raw_grad")
    trainer.reset()
    trainer.orientation.reset()
    trainer.orientation.start(problem)
    trainer.orientation.load_state_dict(_join(meta["orientation"]["state"], arrays, where))
    trainer.line_search.reset()
    trainer.line_search.resolution = loss_resolution(problem)
    grad = arrays.get("current.grad")
    _expect(grad is not None or bool(meta["trainer"]["stale"]), where, "array 'current.grad'", "none")
    trainer.current = Iterate(x, float(meta["current"]["loss"]), None if grad is None else np.array(grad),
                              None if raw is None else np.array(raw))
    problem.set_vector(x)
    info = meta["trainer"]
    trainer.iteration = int(info["iteration"])
    trainer.evaluations = int(info["evaluations"])
    trainer.elapsed_before = float(info["elapsed"])
    trainer.initial_loss = math.nan if info["initial_loss"] is None else float(info["initial_loss"])
    trainer.stale = bool(info["stale"])
    trainer.last_step = info["last_step"]
    trainer.last_slope = info["last_slope"]
    trainer.batches = arrays.get("batch"), arrays.get("next_batch")
    trainer.history = [Record(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), int(r[5]))
                       for r in arrays["history"]]
    problem.rng.bit_generator.state = _from_jsonable(meta["rng"])
    trainer.epochs.load_state_dict(meta.get("epochs", {}))  # absent from checkpoints written before epochs
    problem.load_sampler_state(_join(meta.get("sampler", {}), arrays, where))
    if "layers" in meta:
        _load_layers(problem, meta["layers"], arrays, where)
    for monitor, entry in zip(trainer.monitors, meta["monitors"]):
        if entry["class"] == type(monitor).__name__:
            monitor.load_state_dict(_join(entry["state"], arrays, where))


class Checkpoint(Monitor):
    """Save the training state to ``path`` every ``every`` iterations and when the run ends.

    Continue with ``trainer.run(..., resume_from=path)`` (or ``trainer.resume(path, ...)``).
    """

    def __init__(self, path: str | os.PathLike, every: int = 10, at_end: bool = True):
        self.path = path
        self.every = check_positive_int(every, "Checkpoint", "every")
        self.at_end = check_bool(at_end, "Checkpoint", "at_end")

    def start(self, trainer: Any) -> None:
        check_writable(self.path, "Checkpoint")  # a typo in the path fails now, not after the first `every` iterations

    def iteration(self, trainer: Any, record: Any) -> str | None:
        if record.iteration % self.every == 0:
            save_checkpoint(trainer, self.path)
        return None

    def finish(self, trainer: Any, result: Any) -> None:
        if self.at_end and trainer.current is not None:
            save_checkpoint(trainer, self.path)
