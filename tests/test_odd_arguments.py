"""Odd but legal inputs keep their meaning; absurd ones are refused with a message naming the argument.

(tests/test_bad_input.py holds the table of wrong shapes, ranks and dtypes; this file the
cases found by an adversarial pass: byte order, empty kernels, sizes beyond any machine,
wrong types, empty batches.)
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import minieye as me

F = me.functional
RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 8, 8))
W = RNG.standard_normal((4, 3, 3, 3))
BIG = ">f8" if np.little_endian else "<f8"   # float64 in the other byte order

# -- non-native byte order keeps float64 --------------------------------------------------------------------------
BYTE_ORDER = {  # entry point -> a call on (x, w) as given
    "F.conv2d": lambda x, w: F.conv2d(x, w),
    "F.conv1d": lambda x, w: F.conv1d(x[:, :, 0], w[:, :, 0]),
    "F.conv_transpose2d": lambda x, w: F.conv_transpose2d(x, w[:3, :2]),
    "F.max_pool2d": lambda x, w: F.max_pool2d(x, 2)[0],
    "F.pad": lambda x, w: F.pad(x, 1, mode="reflect"),
    "losses.MSE": lambda x, w: me.losses.MSE().forward(x, x * 0.5)[0],
    "losses.SoftmaxCrossEntropy": lambda x, w: me.losses.SoftmaxCrossEntropy().forward(x[:, :, 0, 0], [0, 2])[0],
    "layers.Dense(dtype='>f8')": lambda x, w: me.layers.Dense(3, 2, dtype=w.dtype, seed=0).forward(x[:, :, 0, 0])[0],
    "restore.blur": lambda x, w: me.restore.blur(x[0, 0], w[0, 0], normalize=False),
}


@pytest.mark.parametrize("entry", sorted(BYTE_ORDER))
def test_other_byte_order_float64_keeps_its_precision(entry):
    call = BYTE_ORDER[entry]
    native = np.asarray(call(X, W))
    swapped = np.asarray(call(X.astype(BIG), W.astype(BIG)))
    assert swapped.dtype == np.float64 and swapped.dtype.isnative
    np.testing.assert_allclose(swapped, native, rtol=1e-14, atol=1e-14)


# -- zero-size kernels --------------------------------------------------------------------------------------------
EMPTY_KERNELS = {
    "conv1d": lambda: F.conv1d(X[:, :, 0], np.zeros((4, 3, 0))),
    "conv2d": lambda: F.conv2d(X, np.zeros((4, 3, 0, 3))),
    "conv3d": lambda: F.conv3d(X[:, :, None], np.zeros((4, 3, 1, 3, 0))),
    "conv_transpose1d": lambda: F.conv_transpose1d(X[:, :, 0], np.zeros((3, 4, 0))),
    "conv_transpose2d": lambda: F.conv_transpose2d(X, np.zeros((3, 4, 0, 3))),
    "conv_transpose3d": lambda: F.conv_transpose3d(X[:, :, None], np.zeros((3, 4, 0, 1, 1))),
    "conv2d_weight_grad": lambda: F.conv2d_weight_grad(X, (4, 3, 0, 3), np.zeros((2, 4, 9, 6))),
    "layers.Conv2D": lambda: me.layers.Conv2D(3, 4, (0, 3)),
    "layers.ConvTranspose3D": lambda: me.layers.ConvTranspose3D(3, 4, (1, 0, 1)),
}


@pytest.mark.parametrize("entry", sorted(EMPTY_KERNELS))
def test_a_zero_size_kernel_is_refused_by_name(entry):
    with pytest.raises(ValueError, match=r"kernel.*(0|\(0, 3\))"):
        EMPTY_KERNELS[entry]()


# -- absurd sizes: a message naming the argument, not a Numba, NumPy or MemoryError traceback ---------------------
ABSURD = {  # case -> (call, regexes the ValueError must match)
    "conv2d stride=2**64": (lambda: F.conv2d(X, W, stride=2**64), (r"stride", r"at most", r"18446744073709551616")),
    "max_pool2d stride=2**64": (lambda: F.max_pool2d(X, 2, stride=2**64), (r"stride", r"at most")),
    "conv2d padding=2**40": (lambda: F.conv2d(X, W, padding=2**40), (r"padding", r"1099511627776")),
    "conv2d padding=10**5": (lambda: F.conv2d(X, W, padding=10**5), (r"padded input", r"200008", r"GiB")),
    "Conv2D padding=10**5": (lambda: me.layers.Conv2D(3, 4, 3, padding=10**5).forward(X.astype(np.float32)),
                             (r"Conv2D", r"padded input", r"GiB")),
    "conv_transpose2d stride=10**5": (lambda: F.conv_transpose2d(X, W[:3], stride=10**5), (r"output", r"GiB")),
    "pad 10**5": (lambda: F.pad(X, 10**5), (r"pad", r"padded array", r"GiB")),
    "upsample 10**5": (lambda: F.upsample(X, 10**5), (r"upsample", r"output", r"GiB")),
    "Upsample 10**5": (lambda: me.layers.Upsample(10**5, mode="bilinear", name="up").forward(X),
                       (r"Upsample\(x100000, bilinear\) 'up' forward", r"output", r"GiB")),
    "weight_shape negative": (lambda: F.conv2d_weight_grad(X, (4, 3, -3, 3), np.zeros((2, 4, 6, 6))),
                              (r"weight_shape", r"-3")),
    "weight_shape fractional": (lambda: F.conv2d_weight_grad(X, (4, 3, 2.5, 3), np.zeros((2, 4, 6, 6))),
                                (r"weight_shape", r"2\.5")),
    "pad replicate of an empty array": (lambda: F.pad(np.zeros((2, 0, 3)), 1, mode="replicate"),
                                        (r"replicate", r"non-empty", r"\(2, 0, 3\)")),
}


@pytest.mark.parametrize("case", sorted(ABSURD))
def test_absurd_sizes_are_refused_naming_the_argument(case):
    call, patterns = ABSURD[case]
    with pytest.raises(ValueError) as caught:
        call()
    assert type(caught.value).__module__.startswith("minieye"), f"{case}: {caught.value!r}"
    for pattern in patterns:
        assert re.search(pattern, str(caught.value)), f"{case}: {str(caught.value)!r} lacks {pattern!r}"


# -- wrong types: TypeError (still a ValueError, like every refusal) with a hint ----------------------------------
def _problem(loss=None):
    return me.train.Problem(me.layers.Dense(3, 1), loss or me.losses.MSE(), np.zeros((4, 3)), np.zeros((4, 1)))


WRONG_TYPES = {
    "a string as an array": (lambda: F.conv2d("abc", W), r"string 'abc'"),
    "a class as a Sequential item": (lambda: me.Sequential(me.layers.ReLU), r"not the class: ReLU"),
    "a class to Graph.add": (lambda: (lambda g: g.add(me.layers.ReLU, g.input()))(me.Graph()), r"not the class: ReLU"),
    "a class as the loss": (lambda: _problem(me.losses.MSE), r"not the class: MSE"),
    "a class as the orientation": (lambda: me.train.Trainer(_problem(), me.train.LBFGS), r"not the class: LBFGS"),
    "a class to io.save": (lambda: me.io.save(me.layers.ReLU, "unused.minieye"), r"not the class: ReLU"),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_wrong_types_raise_type_error_with_a_hint(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    call, hint = WRONG_TYPES[case]
    with pytest.raises(TypeError, match=hint) as caught:
        call()
    assert isinstance(caught.value, ValueError)  # ``except ValueError`` around minieye calls keeps working


@pytest.mark.parametrize("make", [lambda: me.layers.Dense(3, 2, name="fc"),
                                  lambda: me.Sequential(me.layers.Dense(3, 2, name="fc"), me.layers.ReLU())])
def test_backward_without_deltas_says_what_is_missing(make):
    y, backward = make().forward(np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"'fc'|Sequential") as caught:
        backward(np.ones_like(y))
    assert re.search(r"deltas is missing.*DeltaSet\(\)", str(caught.value))
    assert backward(np.ones_like(y), me.DeltaSet()).shape == (2, 3)


# -- empty batches, truthy strings --------------------------------------------------------------------------------
def test_softmax_cross_entropy_refuses_an_empty_batch_like_mse():
    with pytest.raises(ValueError, match=r"MSE.*non-empty"):
        me.losses.MSE().forward(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy.*non-empty logits.*\(0, 3\)"):
        me.losses.SoftmaxCrossEntropy().forward(np.zeros((0, 3)), np.zeros(0, int))


@pytest.mark.parametrize("make", [lambda v: F.avg_pool2d(X, 2, count_include_pad=v),
                                  lambda v: F.avg_pool2d_backward(np.ones((2, 3, 4, 4)), (8, 8), 2, count_include_pad=v),
                                  lambda v: me.layers.AvgPool2D(2, count_include_pad=v)])
def test_count_include_pad_must_be_a_bool(make):
    with pytest.raises(TypeError, match=r"count_include_pad True or False.*'no'"):
        make("no")
    make(np.bool_(False))


# -- max_unpool2d: output_size must be a size the pool could have read ---------------------------------------------
def test_max_unpool_output_size_rule():
    x = RNG.standard_normal((1, 2, 1, 1))
    y, switches = F.max_pool2d(x, 2, stride=1, padding=1)           # a padded pool: 1x1 -> 2x2
    assert y.shape[2:] == (2, 2)
    back = F.max_unpool2d(y, switches, (1, 1), kernel_size=2, stride=1, padding=1)
    np.testing.assert_array_equal(back, 4 * x)  # all four windows chose the one pixel; unpooling adds them
    np.testing.assert_array_equal(F.max_unpool2d(y, switches, (1, 1)), back)  # without the window: switches only
    with pytest.raises(ValueError, match=r"output_size between \(1, 1\) and \(1, 1\)"):
        F.max_unpool2d(y, switches, (2, 2), kernel_size=2, stride=1, padding=1)
    y, switches = F.max_pool2d(RNG.standard_normal((1, 1, 5, 5)), 2)  # 4x4 and 5x5 both pool to 2x2
    for size in (4, 5):
        assert F.max_unpool2d(y, switches, (size, size), kernel_size=2).shape == (1, 1, size, size)
    for size in (3, 6):
        with pytest.raises(ValueError, match=r"output_size between \(4, 4\) and \(5, 5\)"):
            F.max_unpool2d(y, switches, (size, size), kernel_size=2)
    assert F.max_unpool2d(y, switches, (6, 6)).shape == (1, 1, 6, 6)  # no window: any size holding the switches


@pytest.mark.parametrize("call, is_type_error", [
    (lambda: F.conv2d(X, W, stride="2"), True), (lambda: F.conv2d(X, W, stride=(1, 2.5)), True),
    (lambda: me.layers.Dense(2.5, 4), True), (lambda: F.max_pool3d(X[:, :, None], None), True),
    (lambda: F.conv2d(X, W, stride=0), False), (lambda: F.conv2d(X, W, stride=(1, 2, 3)), False),
    (lambda: me.layers.Dense(0, 4), False)])
def test_a_wrong_type_of_size_is_a_type_error_a_wrong_value_is_not(call, is_type_error):
    with pytest.raises(ValueError) as caught:
        call()
    assert isinstance(caught.value, TypeError) == is_type_error, repr(caught.value)
