"""Parameter and DeltaSet: identity, accumulation, arithmetic, and no silent NaN-to-zero."""
import numpy as np
import pytest

import minieye as me
from minieye import layers as L


def params():
    return me.Parameter(np.arange(6.0).reshape(2, 3), name="w"), me.Parameter(np.ones(2), name="b")


def test_parameter_copies_its_value_and_defaults_to_float32_for_ints():
    source = np.zeros((2, 2))
    p = me.Parameter(source, name="w")
    p.value[0, 0] = 5
    assert source[0, 0] == 0
    assert p.dtype == np.float64 and p.shape == (2, 2) and p.size == 4
    assert me.Parameter([1, 2]).dtype == np.float32
    assert me.Parameter(np.zeros(3), dtype="float32").dtype == np.float32
    assert "frozen" in repr(me.Parameter(np.zeros(1), frozen=True))


def test_parameter_refuses_bad_values():
    with pytest.raises(ValueError, match="Parameter 'z'"):
        me.Parameter(np.zeros(2, dtype=complex), name="z")
    with pytest.raises(ValueError, match="float32 or float64"):
        me.Parameter(np.zeros(2), dtype="int32")


def test_parameters_key_by_identity():
    a, b = me.Parameter(np.zeros(2)), me.Parameter(np.zeros(2))
    d = me.DeltaSet([(a, np.ones(2))])
    assert a in d and b not in d and len(d) == 1


def test_add_accumulates_skips_frozen_and_checks_shape():
    w, b = params()
    d = me.DeltaSet()
    grad = np.ones((2, 3))
    d.add(w, grad)
    d.add(w, grad)
    assert np.array_equal(d[w], 2 * grad)
    assert np.array_equal(grad, np.ones((2, 3)))  # the first add copied, so accumulation did not write into grad
    b.frozen = True
    d.add(b, np.ones(2))
    assert b not in d and d.get(b) is None
    with pytest.raises(ValueError, match="DeltaSet.add\\('w'\\): expected delta of shape \\(2, 3\\)"):
        d.add(w, np.ones(3))


def test_deltas_keep_the_parameter_dtype():
    p = me.Parameter(np.zeros(3), dtype="float32")
    d = me.DeltaSet()
    d.add(p, np.ones(3, dtype=np.float64))
    assert d[p].dtype == np.float32


def test_arithmetic_over_the_union_of_parameters():
    w, b = params()
    x = me.DeltaSet([(w, np.ones((2, 3)))])
    y = me.DeltaSet([(w, 2 * np.ones((2, 3))), (b, np.array([3.0, 4.0]))])
    s = x + y
    assert np.array_equal(s[w], 3 * np.ones((2, 3))) and np.array_equal(s[b], [3.0, 4.0])
    diff = x - y
    assert np.array_equal(diff[b], [-3.0, -4.0])
    assert np.array_equal((2 * y)[b], [6.0, 8.0]) and np.array_equal((y * 0.5)[b], [1.5, 2.0])
    assert np.array_equal((-y)[w], -2 * np.ones((2, 3)))
    assert x.dot(y) == pytest.approx(12.0)  # only w is shared
    assert y.norm() == pytest.approx(np.sqrt(4 * 6 + 9 + 16))
    assert np.array_equal(x[w], np.ones((2, 3)))  # operands untouched


def test_copy_is_independent():
    w, _ = params()
    d = me.DeltaSet([(w, np.ones((2, 3)))])
    c = d.copy()
    c.add(w, np.ones((2, 3)))
    assert np.array_equal(d[w], np.ones((2, 3)))


def test_apply_steps_unfrozen_parameters():
    w, b = params()
    d = me.DeltaSet([(w, np.ones((2, 3))), (b, np.ones(2))])
    b.frozen = True
    d.apply(-0.5)
    assert np.array_equal(w.value, np.arange(6.0).reshape(2, 3) - 0.5)
    assert np.array_equal(b.value, np.ones(2))


def test_nan_is_never_turned_into_zero():
    w, b = params()
    d = me.DeltaSet([(w, np.ones((2, 3)))])
    assert d.is_finite()
    bad = np.ones((2, 3))
    bad[0, 1] = np.nan
    d.add(w, bad)
    assert not d.is_finite()
    assert np.isnan(d[w][0, 1]) and np.isnan((d + d)[w][0, 1]) and np.isnan(d.scale(2.0)[w][0, 1])
    assert np.isnan(d.norm()) and np.isnan(d.dot(d))
    assert np.isnan(d.to_vector([w])[1])
    d.apply(1.0)
    assert np.isnan(w.value[0, 1])
    inf = me.DeltaSet([(b, np.array([np.inf, 0.0]))])
    assert not inf.is_finite()


def test_vectors_round_trip_in_parameter_order():
    w, b = params()
    d = me.DeltaSet([(b, np.array([7.0, 8.0]))])
    v = d.to_vector([w, b])
    assert v.dtype == np.float64 and v.shape == (8,)
    assert np.array_equal(v[:6], np.zeros(6)) and np.array_equal(v[6:], [7.0, 8.0])  # missing counts as zero
    back = me.DeltaSet.from_vector([w, b], np.arange(8.0))
    assert np.array_equal(back[w], np.arange(6.0).reshape(2, 3)) and np.array_equal(back[b], [6.0, 7.0])
    assert np.array_equal(back.to_vector([w, b]), np.arange(8.0))
    zeros = me.DeltaSet.zeros([w, b])
    assert zeros.norm() == 0 and len(zeros) == 2


def test_layer_basics_parameters_freeze_and_labels():
    layer = L.Dense(5, 4, name="enc")
    assert [p.name for p in layer.parameters()] == ["weight", "bias"]
    assert layer.weight.shape == (4, 5) and layer.weight.dtype == np.float32
    assert layer.label() == "Dense(5->4) 'enc'" and layer.trainable
    layer.freeze()
    assert not layer.trainable and all(p.frozen for p in layer.parameters())
    layer.unfreeze()
    assert layer.trainable


def test_dense_error_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Dense\(5->4\) forward: expected x of shape \(\.\.\., 5\); "
                                         r"got x.shape == \(3, 6\)"):
        L.Dense(5, 4)(np.zeros((3, 6)))
    with pytest.raises(ValueError, match="in_features a positive integer"):
        L.Dense(0, 4)
    with pytest.raises(ValueError, match="float32 or float64"):
        L.Dense(2, 2, dtype="int8")


def test_initialisation_is_seeded_and_scaled():
    a, b = L.Dense(200, 100, seed=3), L.Dense(200, 100, seed=3)
    assert np.array_equal(a.weight.value, b.weight.value)
    assert not np.array_equal(a.weight.value, L.Dense(200, 100, seed=4).weight.value)
    assert a.weight.value.std() == pytest.approx(np.sqrt(2 / 200), rel=0.05)  # He
    glorot = L.Dense(200, 100, init="glorot", rng=np.random.default_rng(0)).weight.value
    assert np.abs(glorot).max() <= np.sqrt(6 / 300) and glorot.std() == pytest.approx(np.sqrt(2 / 300), rel=0.05)
    assert np.array_equal(a.bias.value, np.zeros(100))


def test_zero_dimensional_parameter_keeps_its_shape():
    assert me.Parameter(np.array(2.0)).shape == ()


def test_unique_parameters_by_identity_in_first_seen_order():
    from minieye.core import unique_parameters

    a, b = L.Dense(2, 3, seed=0), L.Dense(3, 1, seed=1)
    twin = me.Parameter(a.weight.value, name="same value, other object")
    a.weight.frozen = True
    got = unique_parameters(a, me.Sequential(b, a), [a.weight, twin], ())
    assert [id(p) for p in got] == [id(p) for p in (a.weight, a.bias, b.weight, b.bias, twin)]
    assert unique_parameters() == []
