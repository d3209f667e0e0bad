"""Building a layer tree back from (meta, arrays): the read side of the network format.

The file is untrusted: every field is checked for type and range before use, and any
failure becomes a ValueError that names the file, the record and what is wrong.
Layers are built in file order; a reference (a Sequential child, a Graph layer, a
``{"$layer": i}`` config entry) must point to an earlier record, which rules out
cycles. Parameters are rebuilt by each layer's own constructor and then filled with
the stored values, after checking that the layer built what the file describes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..archive import array_header
from ..core import Layer, Parameter
from ..network import Graph, Node, Sequential
from .encode import FORMAT, VERSION
from .registry import class_for

__all__ = ["decode", "check_header"]

_MAX_DEPTH = 64  # config nesting; a deeper value is a damaged or hostile file


def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"{where}: {message}")


def _field(mapping: dict, key: str, kind: type | tuple, where: str) -> Any:
    if key not in mapping:
        raise _fail(where, f"missing key {key!r}")
    value = mapping[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _fail(where, f"{key!r} must be {names}; found {type(value).__name__} {_short(value)}")
    return value


def _index(value: Any, size: int, where: str, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < size:
        raise _fail(where, f"{what} {_short(value)} is out of range (expected an integer in [0, {size}))")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_header(meta: dict[str, Any], where: str) -> None:
    """Refuse a file of another kind or of an unsupported format version."""
    kind = meta.get("format")
    if kind != FORMAT:
        hint = ("; it is a trainer checkpoint: resume it with Trainer.run(resume_from=...)"
                if kind == "minieye-checkpoint" else "")
        raise _fail(where, f"not a minieye network file (format {_short(kind)}, expected {FORMAT!r}){hint}")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _fail(where, f"invalid format version {_short(version)}")
    if version > VERSION:
        raise _fail(where, f"format version {version} was written by a newer minieye "
                           f"({meta.get('minieye_version', 'unknown')}); this minieye reads versions 1 to "
                           f"{VERSION}. Upgrade minieye to load it")


class _Decoder:
    def __init__(self, meta: dict[str, Any], arrays: dict[str, np.ndarray], where: str):
        self.where = where
        self.arrays = arrays
        self.records = _field(meta, "layers", list, where)
        self.param_specs = _field(meta, "parameters", list, where)
        self.layers: list[Layer] = []
        self.params: list[Parameter | None] = [None] * len(self.param_specs)
        self.used_arrays: set[str] = set()
        self.adopted: set[int] = set()  # ids of the Parameters in self.params

    # -- config values -------------------------------------------------------------------
    def value(self, v: Any, where: str, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise _fail(where, f"config nested deeper than {_MAX_DEPTH} levels")
        if isinstance(v, list):
            return [self.value(item, where, depth + 1) for item in v]
        if not isinstance(v, dict):
            return v
        if any(isinstance(k, str) and k.startswith("$") for k in v):
            return self.marker(v, where)
        return {k: self.value(item, where, depth + 1) for k, item in v.items()}

    def marker(self, v: dict, where: str) -> Any:
        if len(v) != 1:
            raise _fail(where, f"malformed config marker {_short(v)}")
        (key, arg), = v.items()
        if key == "$layer":
            return self.layers[_index(arg, len(self.layers), where, "layer reference")]
        if key == "$array":
            if not isinstance(arg, str) or arg not in self.arrays:
                raise _fail(where, f"config array {_short(arg)} is missing from arrays.npz")
            self.used_arrays.add(arg)
            return self.arrays[arg].copy()
        if key == "$float" and arg in ("nan", "inf", "-inf"):
            return float(arg)
        raise _fail(where, f"unknown config marker {_short(v)}")

    # -- layers ----------------------------------------------------------------------------
    def layer(self, position: int) -> Layer:
        where = f"{self.where}: layer record {position}"
        record = self.records[position]
        if not isinstance(record, dict):
            raise _fail(where, f"must be a JSON object; found {type(record).__name__}")
        name = _field(record, "class", str, where)
        cls = class_for(name, where)
        where = f"{where} ({name})"
        config = _field(record, "config", dict, where)
        kwargs = self.value(config, f"{where} config")
        if isinstance(kwargs, dict) and not all(isinstance(k, str) for k in kwargs):
            raise _fail(where, "config keys must be strings")
        try:
            if issubclass(cls, Sequential):
                children = _field(record, "children", list, where)
                members = [self.layers[_index(c, position, where, "child")] for c in children]
                layer = cls(*members, **kwargs)
            else:
                layer = cls(**kwargs)
            if isinstance(layer, Graph):
                if layer.structure()["nodes"]:
                    raise _fail(where, f"{name}(**config) already has nodes; a registered Graph subclass "
                                       f"must build empty (its nodes are stored in the file)")
                self.build_graph(layer, _field(record, "graph", dict, where), position, where)
        except Exception as exc:  # a constructor may raise anything on a bad config
            if isinstance(exc, ValueError) and str(exc).startswith(self.where):
                raise  # our own message, from build_graph
            raise _fail(where, f"the layer could not be rebuilt from its config ({type(exc).__name__}: {exc})") from None
        self.fill_parameters(layer, _field(record, "params", list, where), where)
        self.fill_buffers(layer, record.get("buffers", {}), where)
        layer.training = _field(record, "training", bool, where)
        return layer

    def build_graph(self, graph: Graph, spec: dict, position: int, where: str) -> None:
        members = [self.layers[_index(i, position, where, "graph layer")]
                   for i in _field(spec, "layers", list, where)]
        nodes = _field(spec, "nodes", list, where)
        made: list[Node] = []
        inputs: list[int] = []
        for index, node in enumerate(nodes):
            at = f"{where} graph node {index}"
            if node is None:
                made.append(graph.input())
                inputs.append(index)
                continue
            if not (isinstance(node, list) and len(node) == 2 and isinstance(node[1], list)):
                raise _fail(at, f"expected null or [layer, [input nodes]]; found {_short(node)}")
            layer = members[_index(node[0], len(members), at, "graph layer position")]
            # Inputs must come earlier: this is what keeps a loaded graph acyclic.
            sources = [made[_index(i, index, at, "input node")] for i in node[1]]
            made.append(graph.add(layer, *sources))
        if _field(spec, "inputs", list, where) != inputs:
            raise _fail(where, f"graph inputs {_short(spec['inputs'])} do not match its input nodes {inputs}")
        outputs = [made[_index(i, len(made), where, "output node")] for i in _field(spec, "outputs", list, where)]
        if outputs:
            graph.output(*outputs)
        if len(graph.layers) != len(members) or any(a is not b for a, b in zip(graph.layers, members)):
            raise _fail(where, "graph layers do not match the layers its nodes use")

    # -- parameters ----------------------------------------------------------------------------
    def fill_parameters(self, layer: Layer, refs: list, where: str) -> None:
        fresh = layer.parameters()
        if len(fresh) != len(refs):
            raise _fail(where, f"the file describes {len(refs)} parameter(s) but the layer built {len(fresh)}")
        for position, (ref, built) in enumerate(zip(refs, fresh)):
            k = _index(ref, len(self.param_specs), where, "parameter reference")
            known = self.params[k]
            if known is built:       # a network's parameter, filled when its owner was built
                continue
            at = f"{where} parameter {position} ({built.name!r})"
            if known is not None:    # tied: the parameter was loaded with an earlier layer
                self.check_built(built, known.value, where)
                self.tie(layer, built, known, at)
                continue
            if id(built) in self.adopted:
                raise _fail(at, "the layer built a parameter that another record already owns")
            value, frozen = self.parameter_value(k, at, built, where)
            np.copyto(built.value, value)  # in place: the layer may hold views of it
            built.frozen = frozen
            self.params[k] = built
            self.adopted.add(id(built))

    def fill_buffers(self, layer: Layer, spec: Any, where: str) -> None:
        """Copy the stored buffers into the ones the layer built (same names, shapes, dtypes)."""
        if not isinstance(spec, dict):
            raise _fail(where, f"'buffers' must be a JSON object; found {type(spec).__name__}")
        built = layer.buffers()
        if set(spec) != set(built):
            raise _fail(where, f"the file holds buffers {sorted(spec)} but the layer has {sorted(built)}")
        for key, target in built.items():
            name = spec[key]
            if not isinstance(name, str) or name not in self.arrays:
                raise _fail(where, f"buffer {key!r}: array {_short(name)} is missing from arrays.npz")
            if name in self.used_arrays:
                raise _fail(where, f"array {name!r} is used twice")
            self.used_arrays.add(name)
            shape, dtype = array_header(self.arrays, name)  # checked before the data is read, as parameters are
            if shape != target.shape or dtype != target.dtype:
                raise _fail(where, f"buffer {key!r} was built with shape {target.shape} and dtype {target.dtype}, "
                                   f"but the file holds shape {shape} and dtype {dtype}")
            np.copyto(target, self.arrays[name])

    @staticmethod
    def check_built(built: Parameter, value: np.ndarray, where: str, dtype: np.dtype | None = None) -> None:
        """Refuse a stored value (an array, or its shape with ``dtype``) unlike the parameter the layer built."""
        shape, dtype = (value.shape, value.dtype) if dtype is None else (tuple(value), dtype)
        if shape != built.shape or dtype != built.dtype:
            raise _fail(where, f"parameter {built.name!r} was built with shape {built.shape} and dtype "
                               f"{built.dtype}, but the file holds shape {shape} and dtype {dtype}; "
                               f"the layer's config() must record every argument that sets them")

    def tie(self, layer: Layer, built: Parameter, known: Parameter, where: str) -> None:
        """Share ``known`` (already loaded) in place of the ``built`` parameter, as when saved."""
        for attr, v in vars(layer).items():
            if v is built:
                setattr(layer, attr, known)
                return
        raise _fail(where, f"parameter {built.name!r} is shared with another layer, but it is not an "
                           f"attribute of {layer.label()}, so the sharing cannot be restored")

    def parameter_value(self, k: int, where: str, built: Parameter, layer_where: str) -> tuple[np.ndarray, bool]:
        """Parameter ``k``'s stored value and frozen flag. Its header is checked against the
        description and the ``built`` parameter before the data is read (a hostile file's huge
        array is refused unread)."""
        spec = self.param_specs[k]
        if not isinstance(spec, dict):
            raise _fail(where, "parameter description must be a JSON object")
        name = _field(spec, "array", str, where)
        shape = _field(spec, "shape", list, where)
        dtype = _field(spec, "dtype", str, where)
        frozen = _field(spec, "frozen", bool, where)
        finite = _field(spec, "finite", bool, where)
        if name not in self.arrays:
            raise _fail(where, f"array {name!r} is missing from arrays.npz")
        if name in self.used_arrays:
            raise _fail(where, f"array {name!r} is used twice")
        self.used_arrays.add(name)
        stored_shape, stored_dtype = array_header(self.arrays, name)
        if list(stored_shape) != shape or stored_dtype.name != dtype:
            raise _fail(where, f"array {name!r} has shape {stored_shape} and dtype {stored_dtype}, "
                               f"but the file describes shape {_short(shape)} and dtype {dtype!r}")
        self.check_built(built, stored_shape, layer_where, stored_dtype)
        array = self.arrays[name]
        if finite and not np.isfinite(array).all():
            bad = int(array.size - np.isfinite(array).sum())
            raise _fail(where, f"array {name!r} holds {bad} NaN/Inf value(s) but the file says it is finite "
                               f"(the file is damaged)")
        return array, frozen

    def run(self, root: Any) -> Layer:
        for position in range(len(self.records)):
            self.layers.append(self.layer(position))
        return self.layers[_index(root, len(self.layers), self.where, "root")]


def decode(meta: dict[str, Any], arrays: dict[str, np.ndarray], where: str = "minieye.io.load") -> Layer:
    """The layer or network described by ``(meta, arrays)`` (as made by ``encode``)."""
    if not isinstance(meta, dict):
        raise _fail(where, f"meta must be a JSON object; found {type(meta).__name__}")
    check_header(meta, where)
    meta = _upgrade(meta, where)
    return _Decoder(meta, arrays, where).run(meta.get("root"))


# Format upgrades: _UPGRADERS[v] turns a version-v meta into version v + 1, so old files
# keep loading. Version 2 added each record's mode ("training") and buffers; a version-1
# layer was always in training mode and had none.
def _v1_to_v2(meta: dict[str, Any]) -> dict[str, Any]:
    records = meta.get("layers")
    if isinstance(records, list):
        records = [{**r, "training": True} if isinstance(r, dict) else r for r in records]
    return {**meta, "layers": records, "version": 2}


_UPGRADERS: dict[int, Any] = {1: _v1_to_v2}


def _upgrade(meta: dict[str, Any], where: str) -> dict[str, Any]:
    version = meta["version"]
    while version < VERSION:
        upgrade = _UPGRADERS.get(version)
        if upgrade is None:
            raise _fail(where, f"format version {version} can no longer be read (this minieye reads "
                               f"{min(_UPGRADERS, default=VERSION)} to {VERSION})")
        meta = upgrade(meta)
        version = meta["version"]
    return meta

