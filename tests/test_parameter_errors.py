"""A layer whose Parameter was replaced or shared with a layer of another size says so.

Kernels trust the shapes they are given: before these checks, a convolution whose weight had
more input channels than ``x`` read past ``x`` and returned garbage (NaN), and a Dense or a
norm failed deep inside NumPy. Each row puts a wrong value where a layer reads it, and the
message must name the layer, the Parameter, the expected and the actual shape or dtype.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import minieye as me
from minieye import layers as L

X4 = np.ones((1, 3, 8, 8), np.float32)
X2 = np.ones((4, 5), np.float32)


def _replace(layer, name, value):
    getattr(layer, name).value = value
    return layer


CASES = [
    # (layer with a wrong value, input, regexes the message must match)
    (lambda: _replace(L.Conv2D(3, 4, 3), "weight", np.ones((4, 64, 3, 3), np.float32)), X4,
     (r"Conv2D\(3->4, 3x3\) forward", r"weight\.value of shape \(4, 3, 3, 3\)", r"\(4, 64, 3, 3\)")),
    (lambda: _replace(L.Conv2D(3, 4, 3), "bias", np.ones(5, np.float32)), X4,
     (r"Conv2D", r"bias\.value of shape \(4,\)", r"\(5,\)")),
    (lambda: _replace(L.ConvTranspose2D(3, 4, 3), "weight", np.ones((4, 3, 3, 3), np.float32)), X4,
     (r"ConvTranspose2D", r"\(3, 4, 3, 3\)", r"\(4, 3, 3, 3\)")),
    (lambda: _replace(L.Conv1D(3, 4, 3), "weight", np.ones((4, 3, 5), np.float32)), X4[:, :, 0],
     (r"Conv1D", r"\(4, 3, 3\)", r"\(4, 3, 5\)")),
    (lambda: _replace(L.Dense(5, 4), "weight", np.ones((4, 6), np.float32)), X2,
     (r"Dense\(5->4\) forward", r"weight\.value of shape \(4, 5\)", r"\(4, 6\)")),
    (lambda: _replace(L.Dense(5, 4), "bias", np.ones(5, np.float32)), X2, (r"Dense", r"\(4,\)", r"\(5,\)")),
    (lambda: _replace(L.Bias(5), "bias", np.ones(4, np.float32)), X2, (r"Bias", r"\(5,\)", r"\(4,\)")),
    (lambda: _replace(L.Scale(2.0), "scale", np.ones(5, np.float32)), X2, (r"Scale", r"scale\.value of shape \(\)")),
    (lambda: _replace(L.BatchNorm2D(3), "weight", np.ones(4, np.float32)), X4,
     (r"BatchNorm2D\(3\) forward", r"\(3,\)", r"\(4,\)")),
    (lambda: _replace(L.LayerNorm(8), "bias", np.ones(7, np.float32)), X4, (r"LayerNorm", r"\(8,\)", r"\(7,\)")),
    (lambda: _replace(L.GroupNorm(3, 3), "weight", np.ones((3, 1), np.float32)), X4, (r"GroupNorm", r"\(3, 1\)")),
]


@pytest.mark.parametrize("make, x, names", CASES, ids=[str(i) for i in range(len(CASES))])
def test_a_value_of_another_shape_is_refused_naming_the_layer(make, x, names):
    layer = make()
    with pytest.raises(ValueError) as caught:
        layer(x)
    for name in names:
        assert re.search(name, str(caught.value)), (name, str(caught.value))


def test_a_shared_parameter_of_another_layer_size_is_refused():
    small, large = L.Conv2D(3, 4, 3), L.Conv2D(4, 4, 3)
    large.weight = small.weight  # shares (4, 3, 3, 3) where (4, 4, 3, 3) is needed
    with pytest.raises(ValueError, match=r"Conv2D\(4->4, 3x3\) forward: expected weight\.value of shape "
                                         r"\(4, 4, 3, 3\).*got weight\.value\.shape == \(4, 3, 3, 3\)"):
        me.Sequential(small, large)(X4)
    same = L.Conv2D(4, 4, 3)
    same.weight = large.weight = L.Conv2D(4, 4, 3).weight  # sharing a Parameter of the right shape works
    y, backward = me.Sequential(large, same).forward(np.ones((1, 4, 10, 10), np.float32))
    deltas = me.DeltaSet()
    backward(np.ones_like(y), deltas)
    assert deltas[same.weight].shape == (4, 4, 3, 3)


def test_a_batchnorm_refusing_its_weight_leaves_its_running_statistics_alone():
    bn = _replace(L.BatchNorm2D(3), "weight", np.ones(4, np.float32))
    with pytest.raises(ValueError):
        bn(np.random.default_rng(0).standard_normal((2, 3, 4, 4)))
    assert int(bn.num_batches_tracked) == 0 and not bn.running_mean.any()


def test_an_array_in_place_of_the_parameter_is_a_type_error_with_the_fix():
    dense = L.Dense(5, 4)
    dense.weight = np.ones((4, 5), np.float32)
    with pytest.raises(TypeError, match=r"Dense\(5->4\) forward: expected weight a minieye\.Parameter; "
                                        r"got weight is ndarray.*weight\.value\[\.\.\.\] = new_values"):
        dense(X2)


def test_an_integer_value_is_refused_a_float_of_the_other_precision_is_cast():
    dense = _replace(L.Dense(5, 4), "weight", np.ones((4, 5), np.int64))
    with pytest.raises(TypeError, match=r"weight\.value a float array; got weight\.value\.dtype == int64"):
        dense(X2)
    dense.weight.value = np.ones((4, 5))  # float64 in a float32 layer: computed in float32, as the layer says
    assert dense(X2).dtype == np.float32 and np.all(dense(X2) == 5)
    conv = _replace(L.Conv2D(3, 4, 3), "weight", np.ones((4, 3, 3, 3)))
    assert conv(X4).dtype == np.float32 and np.all(conv(X4) == 27)


def test_a_source_whose_parameter_was_replaced_by_an_array_says_how_to_set_it():
    image = L.Source((1, 1, 4, 4), dtype="float64")
    image.value = np.ones((1, 1, 4, 4))  # meant: image.value.value[...] = ...
    with pytest.raises(TypeError, match=r"Source\(1, 1, 4, 4\) forward: expected value a minieye\.Parameter; "
                                        r"got value is ndarray.*value\.value\[\.\.\.\] = new_values"):
        image()
    image = L.Source((1, 1, 4, 4), dtype="float64")
    image.value.value[...] = 2.0
    assert image().sum() == 32.0 and image.shape == (1, 1, 4, 4)
