"""Odd but legal inputs keep their meaning; absurd ones are refused with a message naming the argument.

(tests/test_bad_input.py holds the table of wrong shapes, ranks and dtypes; this file the
cases found by an adversarial pass: byte order, empty kernels, sizes beyond any machine,
wrong types, empty batches.)
"""
from __future__ import annotations

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
