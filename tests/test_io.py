"""me.io.save / me.io.load: round trips, sharing, registration, the documented layout.

Toy layers (tests/io_toys.py) exercise partner references, tied parameters, array and
infinite config values and sources; every row of the layer table goes through
check_roundtrip. Refusals (bad configs on save, broken files on load, failed writes)
are in tests/test_io_errors.py.
"""
from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import minieye as me
from minieye.archive import read_archive
from minieye.testing.roundtrip import check_roundtrip
from tests.cases import all_cases
from tests.io_toys import Affine, Clip, Image, Recorder, Replay, randomize as _randomize, sample as _x
from tests.doc_code import python_blocks


# -- round trips -----------------------------------------------------------------------------
def test_single_layer_round_trip_float32_and_float64(tmp_path):
    for dtype in (np.float32, np.float64):
        layer = _randomize(Affine(4, dtype=dtype, name="a"))
        loaded = check_roundtrip(layer, _x(3, 4, dtype=dtype))
        assert loaded.name == "a" and loaded.weight.dtype == dtype
        assert np.array_equal(loaded.weight.value, layer.weight.value)


def test_graph_with_shared_layer_nested_sequential_and_two_outputs(tmp_path):
    shared = _randomize(Affine(3, name="shared"))
    inner = me.Sequential(Affine(3, seed=2), Affine(3, seed=3), name="inner")
    g = me.Graph(name="g")
    a, b = g.input(), g.input()
    h1 = g.add(shared, a)
    h2 = g.add(shared, b)          # the same layer at two nodes
    h3 = g.add(inner, h1)
    g.output(h3, h2)
    loaded = check_roundtrip(g, _x(2, 3), _x(2, 3, seed=1))
    # Nested: a single-output graph (the shared layer at two nodes) inside a Sequential.
    # (A Sequential cannot end in a several-output graph: its backward turns the tuple of
    # output gradients into one array; reported to the lead.)
    h = me.Graph(name="h")
    hx = h.input()
    h.output(h.add(shared, h.add(shared, hx)))
    nested = check_roundtrip(me.Sequential(h, Affine(3, seed=4), name="outer"), _x(2, 3))
    assert isinstance(nested[0], me.Graph) and nested[0] is not h
    assert nested[0]._steps[1].layer is nested[0]._steps[2].layer
    steps = loaded.structure()
    assert steps == g.structure()
    assert loaded.layers[0] is loaded._steps[2].layer and loaded.layers[0] is loaded._steps[3].layer
    assert len(loaded.parameters()) == len(g.parameters()) == 6
    assert isinstance(loaded.layers[1], me.Sequential) and loaded.layers[1].name == "inner"


def test_layer_shared_between_two_sequentials_is_shared_after_loading(tmp_path):
    shared = Affine(2)
    net = me.Sequential(me.Sequential(shared, name="left"), me.Sequential(shared, Affine(2, seed=5)))
    loaded = check_roundtrip(net, _x(4, 2))
    assert loaded[0][0] is loaded[1][0]
    assert loaded[0][0] is not shared


def test_partner_reference_restores_the_pairing(tmp_path):
    rec = Recorder(name="rec")
    net = me.Sequential(rec, Affine(3), Replay(rec, name="replay"))
    loaded = check_roundtrip(net, _x(2, 3))
    assert loaded[2].source is loaded[0], "the partner must be the loaded Recorder in the network"
    # The partner can also be saved on its own: the Recorder comes along.
    alone = me.io.decode(*me.io.encode(Replay(Recorder())))
    assert isinstance(alone.source, Recorder)


def test_tied_parameters_stay_tied(tmp_path):
    a, b = Affine(3), Affine(3, seed=9)
    b.weight = a.weight
    loaded = check_roundtrip(me.Sequential(a, b), _x(2, 3))
    assert loaded[0].weight is loaded[1].weight
    assert loaded[0].shift is not loaded[1].shift


def test_array_and_infinite_config_values(tmp_path):
    layer = Clip(np.array([1, 0, 2], dtype=np.int16), upper=math.inf)
    loaded = check_roundtrip(layer, _x(2, 3))
    assert loaded.mask.dtype == np.int16 and np.array_equal(loaded.mask, layer.mask)
    assert loaded.upper == math.inf and loaded.pairs == [[1, 2], {"k": None}]
    assert check_roundtrip(Clip([1.0, 2.0], upper=0.5), _x(2, 2)).upper == 0.5


def test_source_layer_and_frozen_flags(tmp_path):
    image = _randomize(Image((1, 1, 3, 3), dtype="float64"))
    layer = Affine(3, dtype="float64").freeze()
    loaded = check_roundtrip(me.Sequential(image, layer))
    assert not loaded[0].image.frozen and loaded[1].weight.frozen and loaded[1].shift.frozen


def test_loaded_network_keeps_training_and_the_original_does_not_move(tmp_path):
    net = me.Sequential(Affine(3, seed=1), Affine(3, seed=2))
    path = tmp_path / "net.minieye"
    me.io.save(net, path)
    copy = me.io.load(path)
    original = [p.value.copy() for p in net.parameters()]
    x, target = _x(8, 3, dtype=np.float32), _x(8, 3, dtype=np.float32, seed=4)

    def loss_and_step(model):
        y, backward = model.forward(x)
        deltas = me.DeltaSet()
        backward(y - target, deltas)
        deltas.apply(-0.05)
        return 0.5 * float(((y - target) ** 2).sum())

    losses = [loss_and_step(copy) for _ in range(20)]
    assert losses[-1] < 0.5 * losses[0]
    assert all(np.array_equal(p.value, v) for p, v in zip(net.parameters(), original))
    assert not any(np.array_equal(p.value, q.value) for p, q in zip(net.parameters(), copy.parameters()))


def test_file_layout_is_as_documented(tmp_path):
    path = tmp_path / "net.minieye"
    net = me.Sequential(Affine(2, dtype="float64"), Affine(2), name="n")
    me.io.save(net, path)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["arrays.npz", "meta.json"]
        meta = json.loads(archive.read("meta.json"))
    assert meta["format"] == "minieye-network" and meta["version"] == me.io.VERSION == 2
    assert [r["class"] for r in meta["layers"]] == ["test_io.Affine", "test_io.Affine", "Sequential"]
    assert meta["root"] == 2 and meta["layers"][2]["children"] == [0, 1]
    assert meta["layers"][0]["config"]["dtype"] == "float64"
    assert meta["parameters"][0] == {"array": "p0", "name": "weight", "shape": [2], "dtype": "float64",
                                     "frozen": False, "finite": True}
    _, arrays = read_archive(path)
    assert arrays["p0"].dtype == np.float64 and arrays["p2"].dtype == np.float32


def test_non_finite_weights_are_saved_and_flagged(tmp_path):
    layer = Affine(3)
    layer.weight.value[1] = np.nan
    path = tmp_path / "nan.minieye"
    me.io.save(layer, path)
    meta, _ = read_archive(path)
    assert meta["parameters"][0]["finite"] is False and meta["parameters"][1]["finite"] is True
    assert np.isnan(me.io.load(path).weight.value[1])


# -- every exported layer, through the layer table ---------------------------------------------
_CASES = all_cases()


@pytest.mark.parametrize("case", _CASES or [None], ids=[c.name for c in _CASES] or ["no-cases-yet"])
def test_every_layer_case_round_trips(case):
    if case is None:
        pytest.skip("the layer table has no rows yet")

    @settings(max_examples=3, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        layer, inputs = data.draw(case.strategy)
        check_roundtrip(layer, *inputs)
        params = layer.parameters()
        if params:  # frozen flags travel too, and a frozen parameter gets no gradient in the copy
            params[0].frozen = True
            assert check_roundtrip(layer, *inputs).parameters()[0].frozen

    run()


def test_every_exported_layer_is_registered():
    names = me.io.registered()
    for module in (me.layers, me.losses):
        for name in module.__all__:
            cls = getattr(module, name)
            if isinstance(cls, type) and issubclass(cls, me.Layer):
                assert names.get(name) is cls, f"{name} is not registered under its class name"
    assert names["Sequential"] is me.Sequential and names["Graph"] is me.Graph


def test_exported_layers_built_without_arguments_keep_their_description():
    """Rows of the layer table may lag behind; any layer that builds from defaults is checked here too."""
    checked = 0
    for module in (me.layers, me.losses):
        for name in module.__all__:
            cls = getattr(module, name)
            try:
                layer = cls(name="probe")
            except (TypeError, ValueError):
                continue  # needs arguments: covered by its layer-table row
            meta, arrays = me.io.encode(layer)
            copy = me.io.decode(json.loads(json.dumps(meta)), arrays)
            assert type(copy) is cls and me.io.encode(copy)[0]["layers"] == meta["layers"], name
            checked += 1
    if not checked:
        pytest.skip("no exported layer builds from defaults yet")


# -- registration ----------------------------------------------------------------------------------
def test_register_forms_and_refusals():
    @me.io.register
    class Mine(me.Layer):
        pass

    assert me.io.registered()["Mine"] is Mine
    assert me.io.register(Mine) is Mine  # again: a no-op
    with pytest.raises(ValueError, match="already registered as 'Mine'"):
        me.io.register_layer(Mine, "other")

    class Other(me.Layer):
        pass

    with pytest.raises(ValueError, match="'Mine' is already taken"):
        me.io.register_layer(Other, "Mine")
    with pytest.raises(ValueError, match="already taken by a built-in"):
        me.io.register_layer(Other, "Sequential")
    with pytest.raises(ValueError, match="subclass of minieye.Layer"):
        me.io.register_layer(int)
    with pytest.raises(ValueError, match="non-empty name"):
        me.io.register_layer(Other, "$x")
    with pytest.raises(ValueError, match="built-in"):
        me.io.unregister("Graph")
    me.io.unregister("Mine")
    assert "Mine" not in me.io.registered()


def test_zero_dimensional_parameters_keep_their_shape(tmp_path):
    image = Image((), dtype="float64")
    image.image.value[...] = 2.5
    loaded = check_roundtrip(image)
    assert loaded.image.shape == () and loaded.image.value == 2.5


def test_the_examples_in_docs_io_md_run(tmp_path, monkeypatch, capsys):
    blocks = python_blocks("docs/io.md")
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, "docs/io.md", "exec"), namespace)
    finally:
        for name in ("Gain", "PeakMeter"):
            if name in me.io.registered():
                me.io.unregister(name)
    out = capsys.readouterr().out
    assert "{'channels': 3, 'dtype': 'float32', 'name': 'g'}" in out and "[7.5] False" in out


@me.io.register(name="test_io.Block")
class Block(me.Layer):
    """A composite that builds its own children (so they are not in its config)."""

    def __init__(self, size: int, name=None):
        super().__init__(name)
        self.size = size
        self.first, self.second = Affine(size, seed=1), Affine(size, seed=2)

    def config(self):
        return {"size": self.size, **super().config()}

    def parameters(self):
        return self.first.parameters() + self.second.parameters()

    def forward(self, x):
        h, back1 = self.first.forward(x)
        y, back2 = self.second.forward(h)
        return y, lambda dy, deltas: back1(back2(dy, deltas), deltas)


def test_composite_layer_that_builds_its_own_children():
    block = _randomize(Block(3))
    block.second.shift.frozen = True
    loaded = check_roundtrip(me.Sequential(block, block), _x(2, 3))  # shared, too
    assert loaded[0] is loaded[1] and loaded[0].second.shift.frozen
    assert np.array_equal(loaded[0].first.weight.value, block.first.weight.value)


def test_a_graph_subclass_that_builds_nodes_itself_is_refused_on_save(tmp_path):
    @me.io.register(name="test_io.PrebuiltGraph")
    class Prebuilt(me.Graph):
        def __init__(self, name=None):
            super().__init__(name)
            self.output(self.add(Affine(2), self.input()))

    try:
        with pytest.raises(ValueError, match="must build empty"):
            me.io.save(Prebuilt(), tmp_path / "g.minieye")
    finally:
        me.io.unregister("test_io.PrebuiltGraph")


@pytest.mark.parametrize("dims", [1, 3])
def test_nd_pool_unpool_pairs_round_trip(dims):
    """Until the N-d pools have layer-table rows: their pairing survives a round trip too."""
    pool_cls, unpool_cls = (getattr(me.layers, f"{kind}{dims}D", None) for kind in ("MaxPool", "MaxUnpool"))
    avg_cls = getattr(me.layers, f"AvgPool{dims}D", None)
    if pool_cls is None or unpool_cls is None or avg_cls is None:
        pytest.skip(f"no {dims}-d pooling layers yet")
    pool = pool_cls(2)
    loaded = check_roundtrip(me.Sequential(pool, avg_cls(1), unpool_cls(pool)), _x(2, 2, *(4,) * dims))
    assert loaded[2].pool is loaded[0]
