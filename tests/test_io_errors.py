"""me.io refusals: bad configs on save, failed writes, and every kind of broken file on load.

Each refusal is a ValueError (OSError for a missing file) whose message names the file
and what is wrong; on save, nothing is written and the previous file stays intact.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import minieye as me

from minieye.archive import atomic_file, write_archive
from tests.io_toys import Affine, Recorder, Replay, sample as _x


def test_unregistered_classes_are_refused_on_save_with_the_fix(tmp_path):
    class Unlisted(me.Layer):
        pass

    class SubAffine(Affine):  # a subclass is not its registered parent
        pass

    for layer in (Unlisted(), me.Sequential(SubAffine(2))):
        with pytest.raises(ValueError, match=r"not registered; decorate it with @minieye.io.register"):
            me.io.save(layer, tmp_path / "x.minieye")
    assert not os.listdir(tmp_path)


def test_bad_configs_are_refused_on_save_and_nothing_is_written(tmp_path):
    class NoDtype(Affine):
        def config(self):
            return {"size": self.size, "seed": self.seed}

    class NotJson(Affine):
        def config(self):
            return {**super().config(), "size": object()}

    class SelfRef(me.Layer):
        def config(self):
            return {"me": self}

    class DollarKey(me.Layer):
        def config(self):
            return {"opts": {"$layer": 0}}

    me.io.register(NoDtype), me.io.register(NotJson), me.io.register(SelfRef), me.io.register(DollarKey)
    try:
        path = tmp_path / "net.minieye"
        me.io.save(Affine(2), path)
        good = path.read_bytes()
        cases = [(NoDtype(2, dtype="float64"), r"built with shape \(2,\) and dtype float32.*float64"),
                 (NotJson(2), r"config\(\)\['size'\] holds a object"),
                 (SelfRef(), "refers back to"),
                 (DollarKey(), "must be strings not starting with '\\$'")]
        for layer, message in cases:
            with pytest.raises(ValueError, match=message):
                me.io.save(layer, path)
            assert path.read_bytes() == good
        assert sorted(os.listdir(tmp_path)) == ["net.minieye"]
    finally:
        for name in ("NoDtype", "NotJson", "SelfRef", "DollarKey"):
            me.io.unregister(name)


def test_save_refuses_non_layers(tmp_path):
    with pytest.raises(ValueError, match="expected a Layer"):
        me.io.save(np.zeros(3), tmp_path / "x")


# -- atomic writes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("broken", ["fsync", "replace"])
def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, broken):
    path = tmp_path / "net.minieye"
    me.io.save(Affine(2), path)
    good = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, broken, full_disk)
    with pytest.raises(OSError, match="No space left"):
        me.io.save(Affine(2, seed=7), path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["net.minieye"]
    me.io.load(path)


# -- refusing broken files -------------------------------------------------------------------------
def _valid(tmp_path):
    """A file with a Graph (shared layer), a nested Sequential and a partner reference."""
    rec = Recorder()
    g = me.Graph()
    x = g.input()
    a = g.add(Affine(2), x)
    b = g.add(me.Sequential(rec, Replay(rec)), a)
    g.output(g.add(me.layers.ReLU() if hasattr(me.layers, "ReLU") else Affine(2, seed=3), b))
    return me.io.encode(g)


def _write(tmp_path, meta, arrays, name="bad.minieye"):
    path = tmp_path / name
    write_archive(path, meta, arrays)
    return path


def _graph_record(meta):
    return next(r for r in meta["layers"] if r["class"] == "Graph")


def test_missing_file_is_an_oserror(tmp_path):
    with pytest.raises(OSError, match="does not exist"):
        me.io.load(tmp_path / "nope.minieye")


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"hello, not a zip at all", "not a valid minieye archive"),
    (b"PK\x03\x04" + b"\x00" * 30, "not a valid minieye archive"),
])
def test_empty_and_non_zip_files(tmp_path, content, message):
    path = tmp_path / "bad.minieye"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        me.io.load(path)


def test_truncated_file(tmp_path):
    meta, arrays = _valid(tmp_path)
    data = _write(tmp_path, meta, arrays).read_bytes()
    for cut in (len(data) // 3, len(data) - 1):
        path = tmp_path / f"cut{cut}.minieye"
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="not a valid minieye archive"):
            me.io.load(path)


@pytest.mark.parametrize("missing", ["meta.json", "arrays.npz"])
def test_missing_entries(tmp_path, missing):
    path = tmp_path / "bad.minieye"
    with zipfile.ZipFile(path, "w") as archive:
        for entry in {"meta.json", "arrays.npz"} - {missing}:
            archive.writestr(entry, b"{}")
    with pytest.raises(ValueError, match=f"entry '{missing}' is missing"):
        me.io.load(path)


def _mutations():
    """(description, change(meta, arrays), message pattern)."""
    def set_(path_, value):
        def change(meta, arrays):
            target = meta
            for key in path_[:-1]:
                target = target[key] if not callable(key) else key(target)
            target[path_[-1]] = value
        return change

    def graph(key, value):
        def change(meta, arrays):
            _graph_record(meta)["graph"][key] = value
        return change

    def array(name, value):
        def change(meta, arrays):
            arrays[name] = value
        return change

    def drop(key):
        def change(meta, arrays):
            del meta[key]
        return change

    return [
        ("other format", set_(["format"], "minieye-checkpoint"), "not a minieye network file"),
        ("newer version", set_(["version"], 3), "version 3 was written by a newer minieye.*reads versions 1 to 2"),
        ("bad version", set_(["version"], "1"), "invalid format version"),
        ("old version", set_(["version"], 0), "invalid format version"),
        ("no layers", drop("layers"), "missing key 'layers'"),
        ("layers not list", set_(["layers"], {}), "'layers' must be list"),
        ("unknown class", set_(["layers", 0, "class"], "Conv9D"), "unknown layer class 'Conv9D'"),
        ("class not str", set_(["layers", 0, "class"], 3), "'class' must be str"),
        ("bad config", set_(["layers", 0, "config"], {"size": "two"}), "could not be rebuilt from its config"),
        ("unknown kwarg", set_(["layers", 0, "config"], {"size": 2, "colour": 1}), "could not be rebuilt"),
        ("record not object", set_(["layers", 0], [1]), "must be a JSON object"),
        ("mode not bool", set_(["layers", 0, "training"], "yes"), "'training' must be bool"),
        ("mode missing", lambda m, a: m["layers"][0].pop("training"), "missing key 'training'"),
        ("buffers on a plain layer", set_(["layers", 0, "buffers"], {"running_mean": "p0"}),
         r"holds buffers \['running_mean'\] but the layer has \[\]"),
        ("root out of range", set_(["root"], 99), "root 99 is out of range"),
        ("root missing", drop("root"), "root None is out of range"),
        ("param ref out of range", set_(["layers", 0, "params"], [0, 7]), "parameter reference 7 is out of range"),
        ("too few params", set_(["layers", 0, "params"], [0]), "describes 1 parameter.*built 2"),
        ("array missing", array("p0", None), "array 'p0' is missing"),
        ("shape mismatch", array("p0", np.zeros(3, np.float32)), r"array 'p0' has shape \(3,\).*describes shape \[2\]"),
        ("dtype mismatch", array("p0", np.zeros(2, np.float64)), r"dtype float64.*dtype 'float32'"),
        ("int array", array("p0", np.zeros(2, np.int32)), r"dtype int32.*dtype 'float32'"),
        ("not finite", array("p1", np.array([np.inf, 0], np.float32)), "holds 1 NaN/Inf value.*says it is finite"),
        ("described shape wrong", set_(["parameters", 0, "shape"], [3]), r"describes shape \[3\]"),
        ("finite not bool", set_(["parameters", 0, "finite"], "yes"), "'finite' must be bool"),
        ("node out of range", graph("nodes", [None, [0, [5]], [1, [1]], [2, [2]]]), "input node 5 is out of range"),
        ("cycle: self loop", graph("nodes", [None, [0, [1]], [1, [1]], [2, [2]]]), "input node 1 is out of range"),
        ("cycle: forward edge", graph("nodes", [None, [0, [2]], [1, [1]], [2, [2]]]), "input node 2 is out of range"),
        ("node layer out of range", graph("nodes", [None, [9, [0]], [1, [1]], [2, [2]]]), "graph layer position 9"),
        ("malformed node", graph("nodes", [None, "x", [1, [1]], [2, [2]]]), "expected null or \\[layer"),
        ("output out of range", graph("outputs", [17]), "output node 17 is out of range"),
        ("inputs mismatch", graph("inputs", [1]), "graph inputs \\[1\\] do not match"),
        ("unused graph layer", graph("nodes", [None, [0, [0]], [0, [1]], [2, [2]]]), "graph layers do not match"),
        ("forward layer reference", graph("layers", [0, 99, 2]), "graph layer 99 is out of range"),
        ("child after parent", lambda m, a: m["layers"][3].update(children=[1, 3]), "child 3 is out of range"),
        ("partner ref forward", lambda m, a: m["layers"][2]["config"].update(source={"$layer": 5}),
         "layer reference 5 is out of range"),
        ("unknown marker", lambda m, a: m["layers"][2]["config"].update(source={"$eval": "1"}), "unknown config marker"),
        ("deep config", lambda m, a: m["layers"][0]["config"].update(name=json.loads("[" * 200 + "]" * 200)),
         "nested deeper than"),
    ]


@pytest.mark.parametrize("description, change, message", _mutations(), ids=[m[0] for m in _mutations()])
def test_broken_descriptions_are_refused_with_a_clear_message(tmp_path, description, change, message):
    meta, arrays = _valid(tmp_path)
    meta = json.loads(json.dumps(meta))
    assert [r["class"] for r in meta["layers"]][:4] == ["test_io.Affine", "test_io.Recorder", "test_io.Replay",
                                                         "Sequential"]
    change(meta, arrays)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = _write(tmp_path, meta, arrays)
    with pytest.raises(ValueError, match=message) as info:
        me.io.load(path)
    assert str(path) in str(info.value), "the message must name the file"


def test_the_unmutated_description_loads(tmp_path):
    meta, arrays = _valid(tmp_path)
    net = me.io.load(_write(tmp_path, meta, arrays))
    x = _x(3, 2)
    assert np.array_equal(net(x), me.io.decode(meta, arrays)(x))


def test_absurdly_nested_json_is_a_value_error(tmp_path):
    path = tmp_path / "deep.minieye"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.json", "[" * 100_000 + "]" * 100_000)
        archive.writestr("arrays.npz", b"")
    with pytest.raises(ValueError, match="not valid JSON"):
        me.io.load(path)


def test_a_number_with_5000_digits_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "digits.minieye"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.json", '{"format": "minieye-network", "version": ' + "9" * 5000 + "}")
        archive.writestr("arrays.npz", b"")
    with pytest.raises(ValueError, match=r"digits\.minieye.*meta\.json is not valid JSON.*digits"):
        me.io.load(path)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_saved_file_gets_the_mode_a_plain_open_gives(tmp_path, umask):
    old = os.umask(umask)
    try:
        me.io.save(me.layers.Dense(3, 2, seed=0), tmp_path / "new.minieye")
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    assert oct((tmp_path / "new.minieye").stat().st_mode & 0o777) == oct((tmp_path / "plain").stat().st_mode & 0o777)
    os.chmod(tmp_path / "new.minieye", 0o640)  # saving over a file keeps its mode, as open(..., "w") does
    me.io.save(me.layers.Dense(3, 2, seed=1), tmp_path / "new.minieye")
    assert (tmp_path / "new.minieye").stat().st_mode & 0o777 == 0o640


def test_saving_over_a_symbolic_link_writes_through_it(tmp_path):
    target = tmp_path / "models" / "v3.minieye"
    target.parent.mkdir()
    me.io.save(me.layers.Dense(3, 2, seed=0), target)
    link = tmp_path / "current.minieye"
    link.symlink_to(target)
    me.io.save(me.layers.Dense(3, 2, seed=1), link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert np.array_equal(me.io.load(target).weight.value, me.layers.Dense(3, 2, seed=1).weight.value)
    assert sorted(p.name for p in target.parent.iterdir()) == ["v3.minieye"]  # no temporary file left


# -- paths that cannot be written: the message names the path asked for, never the temporary file ------------
@pytest.mark.parametrize("path, error, message", [
    ("missing/net.minieye", FileNotFoundError, r"cannot write '.*missing/net\.minieye': the folder '.*missing' does not"),
    ("", FileNotFoundError, r"empty path"),
    (".", IsADirectoryError, r"cannot write '\.': it is a folder"),
    ("~/nowhere_minieye/net.minieye", FileNotFoundError, r"'~' is not expanded"),
    (None, TypeError, r"expected path a str or os\.PathLike; got path=None"),
])
def test_an_unwritable_path_is_refused_naming_it_before_anything_is_written(tmp_path, monkeypatch, path, error,
                                                                             message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=message) as caught:
        me.io.save(Affine(2), path)
    assert ".tmp" not in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_a_folder_without_write_permission_and_a_failing_temporary_file_name_the_target(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as a non-root user in a read-only folder
    with pytest.raises(PermissionError, match=r"cannot write '.*net\.minieye': the folder .* is not writable"):
        me.io.save(Affine(2), tmp_path / "net.minieye")
    monkeypatch.undo()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".net.minieye.x.tmp"))

    monkeypatch.setattr("tempfile.mkstemp", refuse)  # a folder that the access check could not see through
    with pytest.raises(PermissionError, match=r"cannot write '.*net\.minieye': Permission denied$"):
        me.io.save(Affine(2), tmp_path / "net.minieye")


def test_loading_something_that_is_not_a_path_is_a_type_error():
    with pytest.raises(TypeError, match=r"load: expected path a str or os\.PathLike; got path=None"):
        me.io.load(None)


def test_a_failure_while_writing_names_the_target_keeps_the_reason_and_chains_the_cause(tmp_path):
    target = tmp_path / "net.minieye"
    full = OSError(28, "No space left on device")  # as a write or fsync on a full disk raises it
    with pytest.raises(OSError, match=r"cannot write '.*net\.minieye': No space left on device$") as caught:
        with atomic_file(target) as handle:
            handle.write(b"x")
            raise full
    assert caught.value.errno == 28 and caught.value.__cause__ is full

    other = tmp_path / "weights.bin"  # a file the writing code opens itself: named too
    with pytest.raises(FileNotFoundError, match=r"cannot write '.*net\.minieye': No such file .*weights\.bin") as caught:
        with atomic_file(target):
            open(other, "rb")
    assert isinstance(caught.value.__cause__, FileNotFoundError)
    assert sorted(os.listdir(tmp_path)) == []  # no temporary file left, nothing written
