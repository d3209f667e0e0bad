"""Fuzzing me.io.load: damaged files raise ValueError (or load), never anything else.

Two kinds of damage: random byte flips and truncations of a valid file (mostly caught
by the zip layer's CRCs and offsets), and random edits of a valid *description*
written back as a well-formed archive (which reach the decoder's own checks).
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minieye as me
from minieye.archive import write_archive
from minieye.checks import as_float_array, resolve_dtype


@me.io.register(name="test_io_fuzz.Scale")
class Scale(me.Layer):
    """y = x * weight (per feature on the last axis)."""

    def __init__(self, size: int, dtype=None, name=None):
        super().__init__(name)
        self.size, self.dtype = size, resolve_dtype(dtype, "Scale")
        self.weight = me.Parameter(np.linspace(0.5, 1.5, size), name="weight", dtype=self.dtype)

    def config(self):
        return {"size": self.size, "dtype": self.dtype.name, **super().config()}

    def forward(self, x):
        x = as_float_array(x, self.label(), dtype=self.dtype)
        w = self.weight

        def backward(dy, deltas):
            deltas.add(w, (dy * x).reshape(-1, self.size).sum(axis=0))
            return dy * w.value

        return x * w.value, backward


@me.io.register(name="test_io_fuzz.Partner")
class Partner(me.Layer):
    def __init__(self, other: me.Layer, name=None):
        super().__init__(name)
        self.other = other

    def config(self):
        return {"other": self.other, **super().config()}

    def forward(self, x):
        return x, lambda dy, deltas: dy


def _network() -> me.Layer:
    """A Graph with a shared layer, a nested Sequential, partner references and built-in layers."""
    L = me.layers
    shared = Scale(3, name="shared")
    g = me.Graph(name="g")
    x = g.input()
    a = g.add(shared, x)
    b = g.add(me.Sequential(Scale(3, dtype="float64"), Partner(shared)), a)
    g.output(g.add(shared, b), a)
    pool = L.MaxPool2D(2)
    convs = me.Sequential(L.Conv2D(1, 2, 3, padding=1, seed=0), pool, L.Upsample(2), L.MaxUnpool2D(pool),
                          L.ConvTranspose2D(2, 1, 3, padding=1, bias=False, dtype="float64", seed=1))
    outer = me.Graph(name="outer")
    u, v = outer.input(), outer.input()
    outer.output(outer.add(g, u), outer.add(convs, v), outer.add(L.Dense(3, 2, seed=2), u))
    return outer


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "valid.minieye"
    me.io.save(_network(), path)
    return path.read_bytes()


def _load_or_value_error(path):
    try:
        loaded = me.io.load(path)
    except ValueError as exc:
        assert str(exc), "the message must not be empty"
        return None
    assert isinstance(loaded, me.Layer)
    return loaded


@settings(max_examples=60)
@given(data=st.data())
def test_random_byte_flips(valid, tmp_path_factory, data):
    damaged = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        at = data.draw(st.integers(0, len(damaged) - 1), label="offset")
        damaged[at] ^= data.draw(st.integers(1, 255), label="xor")
    path = tmp_path_factory.mktemp("flip") / "damaged.minieye"
    path.write_bytes(bytes(damaged))
    _load_or_value_error(path)


@settings(max_examples=40)
@given(data=st.data())
def test_truncations(valid, tmp_path_factory, data):
    cut = data.draw(st.integers(0, len(valid) - 1), label="length")
    path = tmp_path_factory.mktemp("cut") / "cut.minieye"
    path.write_bytes(valid[:cut])
    with pytest.raises(ValueError):
        me.io.load(path)


# -- edits of the description ---------------------------------------------------------------------
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 30) | st.floats(allow_nan=True)
                     | st.sampled_from(["", "p0", "Graph", "Sequential", "test_io_fuzz.Scale", "$layer", "float64"]),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.sampled_from(["$layer", "$array", "$float", "size", "name", "class", "x"]), inner,
                         max_size=2),
                     max_leaves=6)


def _paths(value, prefix=()):
    """Every path (tuple of keys/indices) into a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


@pytest.fixture(scope="module")
def description():
    meta, arrays = me.io.encode(_network())
    return json.loads(json.dumps(meta)), arrays


@settings(max_examples=80)
@given(data=st.data())
def test_random_edits_of_the_description(description, tmp_path_factory, data):
    meta, arrays = copy.deepcopy(description[0]), dict(description[1])
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        paths = [p for p in _paths(meta) if p]
        where = data.draw(st.sampled_from(paths), label="path")
        target = meta
        for key in where[:-1]:
            target = target[key]
        if data.draw(st.booleans(), label="delete") and isinstance(target, dict):
            del target[where[-1]]
        else:
            target[where[-1]] = data.draw(_JSON, label="value")
    if data.draw(st.booleans(), label="edit arrays"):
        name = data.draw(st.sampled_from(sorted(arrays)), label="array")
        arrays[name] = data.draw(st.sampled_from([np.zeros(2), np.zeros((3, 1), np.float32), np.array([np.nan] * 3),
                                                  np.arange(3), np.zeros(0)]), label="replacement")
    path = tmp_path_factory.mktemp("edit") / "edited.minieye"
    try:
        write_archive(path, meta, arrays)
    except ValueError:  # NaN in the description cannot be written as strict JSON
        return
    _load_or_value_error(path)
