"""Describing a layer tree as (meta, arrays): the write side of the network format.

Each distinct layer object becomes one record in ``meta["layers"]``, each distinct
Parameter one entry in ``meta["parameters"]`` whose value is the array ``p<k>``. A
record also keeps the layer's mode (``training``) and its buffers (running statistics,
arrays ``b<k>``).
Records are written dependencies first (a Sequential's children, a Graph's layers,
layers named in a config), so a reader builds them in file order and every reference
points backwards. A layer placed at several places is stored once and referenced by
its record index each time. docs/io.md describes the layout.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..checks import fail_type
from ..core import Layer, Parameter
from ..network import Graph, Sequential
from .registry import name_for

__all__ = ["FORMAT", "VERSION", "encode"]

FORMAT = "minieye-network"
VERSION = 2


class _Encoder:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.records: list[dict[str, Any]] = []
        self.index: dict[int, int] = {}          # id(layer) -> record index
        self.keep: list[Layer] = []              # keeps ids valid while encoding
        self.in_progress: set[int] = set()
        self.params: list[dict[str, Any]] = []
        self.param_index: dict[int, int] = {}    # id(Parameter) -> entry index
        self.arrays: dict[str, np.ndarray] = {}

    # -- layers ------------------------------------------------------------------------
    def layer(self, layer: Layer, path: str) -> int:
        key = id(layer)
        if key in self.index:
            return self.index[key]
        if key in self.in_progress:
            raise ValueError(f"minieye.io.save: {path} refers back to {layer.label()}, which contains it; "
                             f"a layer cannot (indirectly) configure itself")
        self.in_progress.add(key)
        record: dict[str, Any] = {"class": name_for(layer)}
        if isinstance(layer, Sequential):
            record["children"] = [self.layer(child, f"{path}[{i}]") for i, child in enumerate(layer.layers)]
        elif isinstance(layer, Graph):
            structure = layer.structure()
            record["graph"] = {"layers": [self.layer(child, f"{path}.layers[{i}]")
                                          for i, child in enumerate(layer.layers)], **structure}
        try:
            config = layer.config()
        except Exception as exc:
            raise ValueError(f"minieye.io.save: {layer.label()}.config() failed ({type(exc).__name__}: {exc})") from exc
        if not isinstance(config, dict):
            raise ValueError(f"minieye.io.save: {layer.label()}.config() must return a dict; "
                             f"got {type(config).__name__}")
        record["config"] = self.value(config, f"{layer.label()}.config()")
        record["params"] = [self.parameter(p) for p in layer.parameters()]
        record["training"] = bool(layer.training)
        buffers = layer.buffers()
        if buffers:
            record["buffers"] = {name: self.buffer(array, f"{layer.label()} buffer {name!r}")
                                 for name, array in buffers.items()}
        self.in_progress.discard(key)
        self.index[key] = len(self.records)
        self.keep.append(layer)
        self.records.append(record)
        return self.index[key]

    def parameter(self, p: Parameter) -> int:
        key = id(p)
        if key not in self.param_index:
            name = f"{self.prefix}p{len(self.params)}"
            value = np.array(p.value, order="C", copy=True)  # (ascontiguousarray makes 0-d arrays 1-d)
            self.arrays[name] = value
            self.params.append({"array": name, "name": p.name, "shape": list(value.shape),
                                "dtype": value.dtype.name, "frozen": bool(p.frozen),
                                "finite": bool(np.isfinite(value).all())})
            self.param_index[key] = len(self.params) - 1
        return self.param_index[key]

    def buffer(self, array: np.ndarray, where: str) -> str:
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
            raise ValueError(f"minieye.io.save: {where} must be a boolean, integer or float ndarray; "
                             f"got {type(array).__name__}")
        name = f"{self.prefix}b{len(self.arrays)}"
        self.arrays[name] = np.array(array, order="C", copy=True)
        return name

    # -- config values ---------------------------------------------------------------------
    def value(self, v: Any, where: str) -> Any:
        """A config value as JSON; layers, arrays and non-finite floats become {"$...": ...} markers."""
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, (np.bool_,)):
            return bool(v)
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            f = float(v)
            return f if math.isfinite(f) else {"$float": repr(f)}
        if isinstance(v, Layer):
            return {"$layer": self.layer(v, where)}
        if isinstance(v, np.ndarray):
            if v.dtype.kind not in "biuf":
                raise ValueError(f"minieye.io.save: {where} holds an array of dtype {v.dtype}; "
                                 f"only boolean, integer and float arrays can be saved")
            name = f"{self.prefix}c{len(self.arrays)}"
            self.arrays[name] = np.array(v, order="C", copy=True)
            return {"$array": name}
        if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
            return np.dtype(v).name
        if isinstance(v, (list, tuple)):
            return [self.value(item, f"{where}[{i}]") for i, item in enumerate(v)]
        if isinstance(v, dict):
            out = {}
            for k, item in v.items():
                if not isinstance(k, str) or k.startswith("$"):
                    raise ValueError(f"minieye.io.save: {where} has the key {k!r}; config keys must be "
                                     f"strings not starting with '$'")
                out[k] = self.value(item, f"{where}[{k!r}]")
            return out
        raise ValueError(f"minieye.io.save: {where} holds a {type(v).__name__}, which cannot be saved; "
                         f"config() may return JSON values, NumPy arrays, dtypes and layers")


def encode(layer: Layer, prefix: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` describing ``layer`` (a layer or network); array names start with ``prefix``.

    Trainer checkpoints embed a network this way, with their own prefix.
    """
    if not isinstance(layer, Layer):
        raise fail_type("minieye.io.save", "a Layer or network", type(layer).__name__, value=layer)
    from .. import __version__

    encoder = _Encoder(prefix)
    root = encoder.layer(layer, layer.label())
    meta = {"format": FORMAT, "version": VERSION, "minieye_version": __version__,
            "root": root, "layers": encoder.records, "parameters": encoder.params}
    return meta, encoder.arrays
