"""Fuzzing me.io.load: damaged files raise ValueError (or load), never anything else.

Two kinds of damage: random byte flips and truncations of a valid file (mostly caught
by the zip layer's CRCs and offsets), and random edits of a valid *description*
written back as a well-formed archive (which reach the decoder's own checks).
"""
from __future__ import annotations

import copy
import io
import json
import tracemalloc
import zipfile

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


# -- zip bombs: the loader inflates only what the description names, after checking its header ----------------------
_PEAK_LIMIT = 8 << 20          # what loading the small network below may allocate at most


def _npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _write_zeros(archive: zipfile.ZipFile, name: str, head: bytes, zeros: int) -> None:
    """A deflated entry: ``head`` then ``zeros`` zero bytes, streamed (never held in memory)."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as entry:
        entry.write(head)
        chunk = bytes(1 << 20)
        for _ in range(zeros >> 20):
            entry.write(chunk)
        entry.write(bytes(zeros & ((1 << 20) - 1)))


def _bomb(path, kind: str, size: int) -> None:
    """A small Dense network's file with one kind of bomb in it."""
    meta, arrays = me.io.encode(me.layers.Dense(3, 2, seed=0))
    meta = json.loads(json.dumps(meta))
    weight = meta["parameters"][0]["array"]
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", compression=zipfile.ZIP_DEFLATED) as npz:
        for name, value in arrays.items():
            if kind in ("lying header", "huge shape", "huge shape described") and name == weight:
                continue
            npz.writestr(f"{name}.npy", _npy_header(value.shape, value.dtype.str) + value.tobytes())
        if kind == "unreferenced member":
            _write_zeros(npz, "junk.npy", _npy_header((size // 4,)), size)
        elif kind in ("huge shape", "huge shape described"):
            _write_zeros(npz, f"{weight}.npy", _npy_header((size // 8, 2)), size)
            if kind == "huge shape described":
                meta["parameters"][0]["shape"] = [size // 8, 2]
        elif kind == "lying header":  # the header says (2, 3); the entry holds far more
            _write_zeros(npz, f"{weight}.npy", _npy_header((2, 3)), size)
    meta_bytes = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as outer:
        if kind == "meta.json":
            _write_zeros(outer, "meta.json", meta_bytes, size)  # JSON then NUL bytes
        else:
            outer.writestr("meta.json", meta_bytes)
        compression = zipfile.ZIP_DEFLATED if kind == "compressed arrays.npz" else zipfile.ZIP_STORED
        outer.writestr(zipfile.ZipInfo("arrays.npz"), inner.getvalue(), compress_type=compression)


_BOMBS = {  # kind -> what load must do: None (load, ignoring the junk) or a regex of the refusal
    "unreferenced member": None,
    "huge shape": r"array 'p0' has shape \(\d+, 2\)",
    "huge shape described": r"was built with shape \(2, 3\)",
    "lying header": r"holds \d+ bytes of data",
    "meta.json": r"meta\.json declares",
    "compressed arrays.npz": r"stores it uncompressed",
}


@pytest.mark.parametrize("kind", sorted(_BOMBS))
@settings(max_examples=2, deadline=None)
@given(size=st.integers(32, 64).map(lambda mib: mib << 20))
def test_zip_bombs_load_in_bounded_memory(tmp_path_factory, kind, size):
    path = tmp_path_factory.mktemp("bomb") / "bomb.minieye"
    _bomb(path, kind, size)
    assert path.stat().st_size < size // 50, "the bomb must be small on disk"
    tracemalloc.start()
    try:
        if _BOMBS[kind] is None:
            assert isinstance(me.io.load(path), me.layers.Dense)
        else:
            with pytest.raises(ValueError, match=_BOMBS[kind]):
                me.io.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < _PEAK_LIMIT, f"{kind}: loading allocated {peak / 2**20:.1f} MiB"


def test_a_parameter_beyond_max_bytes_is_refused_unread(tmp_path):
    path = tmp_path / "net.minieye"
    me.io.save(me.layers.Dense(300, 200, seed=0), path)
    with pytest.raises(ValueError, match=r"array 'p0' .*240,000 bytes.*max_bytes"):
        me.io.load(path, max_bytes=100_000)
    assert me.io.load(path, max_bytes=300_000).in_features == 300


def test_loading_memory_scales_with_the_network_not_the_file(tmp_path):
    """A real network beside 32 MiB of unreferenced junk: loading costs a few times the network's own size
    (its constructors' random initial values, then the stored values), not the junk."""
    net = me.Sequential(me.layers.Dense(500, 500, seed=0), me.layers.ReLU())
    path = tmp_path / "net.minieye"
    me.io.save(net, path)
    with zipfile.ZipFile(path) as source:
        meta, arrays = source.read("meta.json"), source.read("arrays.npz")
    inner = io.BytesIO(arrays)
    with zipfile.ZipFile(inner, "a") as npz:
        _write_zeros(npz, "junk.npy", _npy_header((8 << 20,)), 32 << 20)
    with zipfile.ZipFile(path, "w") as outer:
        outer.writestr("meta.json", meta)
        outer.writestr("arrays.npz", inner.getvalue())
    network_bytes = sum(p.value.nbytes for p in net.parameters())
    tracemalloc.start()
    try:
        loaded = me.io.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(loaded[0].weight.value, net[0].weight.value)
    assert peak < 6 * network_bytes, f"{peak / network_bytes:.1f} times the network's {network_bytes} bytes"
