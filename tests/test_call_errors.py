"""Calling layers and networks the wrong way names the layer and what it takes.

Before, these were Python's own messages (``Dense.forward() takes 2 positional arguments but 3
were given``, counting ``self`` and naming no layer), an AttributeError from deep in a backward
(``'NoneType' object has no attribute 'add'``), a RecursionError, or a silent cast (a complex
delta losing its imaginary part).
"""
from __future__ import annotations

import numpy as np
import pytest

import minieye as me
from minieye import layers as L, losses

X = np.ones((4, 5), np.float32)


@pytest.mark.parametrize("call, message", [
    (lambda: L.Dense(5, 4)(X, X), r"Dense\(5->4\) forward: expected 1 input array\(s\); got 2"),
    (lambda: losses.MSE()(X), r"MSE forward: expected 2 input array\(s\); got 1 \(.*argument: 'target'\)"),
    (lambda: L.Source((2, 2))(X), r"Source\(2, 2\) forward: expected 0 input array\(s\); got 1"),
    (lambda: me.Sequential(L.Dense(5, 4), L.ReLU())(X, X), r"Sequential\[2\] forward: expected 1 input arrays.*got 2"),
    (lambda: me.Sequential(L.Dense(5, 4))(), r"Sequential\[1\] forward: expected 1 input arrays.*got 0"),
    (lambda: me.Sequential(me.Sequential(L.Dense(5, 4)), L.ReLU()).forward(X, X),
     r"Sequential\[2\] forward: expected 1 input arrays"),
])
def test_a_wrong_number_of_inputs_names_the_layer_and_its_count(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_an_error_raised_inside_forward_is_not_mistaken_for_a_wrong_call():
    class Broken(me.Layer):
        def forward(self, x):
            return len(5), None  # a TypeError of the layer's own code

    for call in (lambda: Broken()(X), lambda: me.Sequential(Broken())(X)):
        with pytest.raises(TypeError, match=r"has no len\(\)"):
            call()


@pytest.mark.parametrize("deltas", [None, {}])
def test_backward_needs_a_deltaset_where_there_are_parameters(deltas):
    for layer in (L.Dense(5, 4), me.Sequential(L.Dense(5, 4), L.ReLU())):
        y, backward = layer.forward(X)
        with pytest.raises(TypeError, match=r"backward: expected deltas a minieye\.DeltaSet; got deltas="):
            backward(np.ones_like(y), deltas)
    y, backward = L.ReLU().forward(X)  # no parameters: nothing to add, None is fine
    assert np.array_equal(backward(np.ones_like(y), None), np.ones_like(y))


def test_a_graph_that_would_hold_itself_is_refused_when_built():
    outer, inner = me.Graph(), me.Graph()
    a = inner.input()
    inner.output(inner.add(L.ReLU(), a))
    outer.output(outer.add(inner, outer.input()))
    with pytest.raises(ValueError, match=r"a layer other than the graph itself or a network holding it; "
                                         r"got Sequential\[1\], which holds this graph"):
        inner.add(me.Sequential(outer), a)  # forward would recurse without end
    with pytest.raises(ValueError, match=r"got the graph"):
        inner.add(inner, a)
    assert np.array_equal(outer(X), X)  # both graphs still work


def test_deltaset_add_and_freeze_refuse_the_wrong_types():
    p = me.Parameter(np.zeros(3))
    with pytest.raises(TypeError, match=r"DeltaSet\.add: expected param a minieye\.Parameter; got param is ndarray"):
        me.DeltaSet().add(np.zeros(3), np.ones(3))
    with pytest.raises(TypeError, match=r"DeltaSet\.add\('param'\): expected a real delta; got dtype complex128"):
        me.DeltaSet().add(p, np.ones(3) * 1j)
    with pytest.raises(TypeError, match=r"Dense\(5->4\)\.freeze: expected frozen True or False; got frozen='yes'"):
        L.Dense(5, 4).freeze("yes")
    with pytest.raises(TypeError, match=r"Parameter 'w': expected frozen True or False; got frozen='no'"):
        me.Parameter(np.zeros(3), name="w", frozen="no")  # bool('no') would have frozen it


def test_none_for_an_array_says_none():
    with pytest.raises(TypeError, match=r"Dense\(5->4\) forward: expected x an array of numbers; got x=None"):
        L.Dense(5, 4)(None)


def test_a_layer_name_must_be_text():
    with pytest.raises(TypeError, match=r"Dense: expected name a str or None; got name=5"):
        L.Dense(3, 3, name=5)
    assert L.Dense(3, 3, name="head").label() == "Dense(3->3) 'head'"


@pytest.mark.parametrize("call, message", [
    (lambda: L.Conv2D(1, 4, 3)(np.zeros((8, 28, 28, 1))), r"x\.shape\[1\] == in_channels \(1\).*np\.moveaxis\(x, -1, 1\)"),
    (lambda: L.Conv2D(3, 4, 3)(np.zeros((3, 28, 28))), r"4 dimensions \(N, C, H, W\).*add the batch axis: x\[None\]"),
    (lambda: L.MaxPool2D(2)(np.zeros((3, 8, 8))), r"add the batch axis: x\[None\]"),
    (lambda: L.Dense(784, 10)(np.zeros((8, 1, 28, 28))), r"\(\.\.\., 784\).*put a layers\.Flatten\(\) before"),
    (lambda: losses.MSE()(np.zeros((8, 1)), np.zeros(8)), r"same shape.*reshape one: target\.reshape\(\(8, 1\)\)"),
    (lambda: losses.SoftmaxCrossEntropy()(np.zeros((8, 3)), np.eye(3)[np.zeros(8, int)]),
     r"labels of shape \(8,\).*one-hot targets give labels\.argmax\(axis=1\)"),
    (lambda: losses.SoftmaxCrossEntropy()(np.zeros((2, 3, 4, 4)), np.zeros((2, 1, 4, 4), int)),
     r"give labels\.reshape\(\(2, 4, 4\)\)"),
])
def test_the_common_layout_mistakes_get_the_fix(call, message):
    """NHWC data, a missing batch axis, a missing Flatten, (N,) targets for (N, 1) predictions
    (NumPy would broadcast them to (N, N)), one-hot labels."""
    with pytest.raises(ValueError, match=message):
        call()


def test_conv_matrix_with_its_arguments_swapped_says_so():
    with pytest.raises(TypeError, match=r"input_shape a tuple of ints.*got an array of shape \(3, 3\)\. "
                                        r"the arguments are conv_matrix\(input_shape, weight\)"):
        me.functional.conv_matrix(np.ones((3, 3)), (4, 4))
    assert me.functional.conv_matrix((4, 4), np.ones((3, 3))).shape == (16, 4)


@pytest.mark.parametrize("make", [lambda: L.Conv2D(1, 1, 3, bias="no"), lambda: L.Dense(3, 3, bias="no"),
                                  lambda: L.ConvTranspose2D(1, 1, 3, bias=0), lambda: L.Sum(keepdims="yes"),
                                  lambda: L.GlobalAvgPool2D(keepdims=1), lambda: me.train.Momentum(nesterov="no")])
def test_a_switch_given_a_string_or_a_number_is_refused_not_read_as_its_truth(make):
    with pytest.raises(TypeError, match=r"expected (bias|keepdims|nesterov) True or False"):
        make()  # bias="no" built a bias


def test_a_torch_tensor_that_requires_grad_is_refused_naming_the_layer_and_torchs_fix():
    torch = pytest.importorskip("torch")
    assert L.Dense(3, 2)(torch.ones(4, 3)).shape == (4, 2)  # a plain tensor converts
    with pytest.raises(ValueError, match=r"Dense\(3->2\) forward: expected x convertible to a numeric array; "
                                         r"got Tensor \(.*detach\(\)"):
        L.Dense(3, 2)(torch.ones(4, 3, requires_grad=True))
