"""Clear errors from the pooling functions and layers (ShapeError, a ValueError, naming the culprit)."""
from __future__ import annotations

import numpy as np
import pytest

import minieye as me
from minieye import functional as F, layers

x4 = np.zeros((2, 3, 5, 5))


@pytest.mark.parametrize("call, message", [
    (lambda: F.max_pool2d(x4, 6), r"max_pool2d: expected a kernel \(6, 6\) no larger than the padded input \(5, 5\)"),
    (lambda: F.avg_pool2d(x4, (2, 8), padding=(0, 1)),
     r"avg_pool2d: expected a kernel \(2, 8\) no larger than the padded input \(5, 7\)"),
    (lambda: F.max_pool2d(x4, 3, padding=2), r"padding at most half the kernel size.*got padding=\(2, 2\)"),
    (lambda: F.max_pool2d(x4, 0), r"kernel_size an int >= 1"),
    (lambda: F.max_pool2d(x4, 2, stride=0), r"stride an int >= 1"),
    (lambda: F.max_pool2d(x4, 2, padding=-1), r"padding an int >= 0"),
    (lambda: F.max_pool2d(np.zeros((3, 5, 5)), 2), r"x with 4 dimensions \(N, C, H, W\); got x.shape == \(3, 5, 5\)"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 0, 4)), 1), r"non-empty H and W"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 2, 2), complex), 2), r"real numeric dtype"),
    (lambda: F.max_unpool2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 3), int), (4, 4)),
     r"switches of the pooled values' shape \(1, 1, 2, 2\); got switches.shape == \(1, 1, 2, 3\)"),
    (lambda: F.max_unpool2d(np.zeros((1, 1, 2, 2)), np.full((1, 1, 2, 2), 16), (4, 4)),
     r"switches in \[0, 16\) for output_size \(4, 4\); got values in \[16, 16\]"),
    (lambda: F.max_unpool2d(np.zeros((1, 1, 2, 2)), np.full((1, 1, 2, 2), -1), (4, 4)), r"switches in \[0, 16\)"),
    (lambda: F.max_unpool2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)), (4, 4)), r"integer switches"),
    (lambda: F.max_unpool2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), int), (2, 1, 4, 4)),
     r"output_size \(N, C\) == \(1, 1\)"),
    (lambda: F.max_unpool2d_backward(np.zeros((1, 1, 4, 4)), np.zeros((2, 1, 2, 2), int)), r"\(N, C\) == \(1, 1\)"),
    (lambda: F.avg_pool2d_backward(np.zeros((1, 1, 3, 3)), (4, 4), 2), r"dy of shape \(1, 1, 2, 2\)"),
    (lambda: F.upsample(x4, 2, mode="bicubic"), r"mode 'nearest' or 'bilinear'; got mode='bicubic'"),
    (lambda: F.upsample(x4, 1.5), r"scale_factor an int >= 1"),
    (lambda: F.upsample_backward(np.zeros((1, 1, 5, 4)), 2), r"multiples of scale_factor \(2, 2\)"),
    (lambda: F.global_avg_pool2d(np.zeros((2, 3))), r"4 dimensions"),
    (lambda: F.pool_output_size(2, 5, 1, 0), r"pool_output_size: expected kernel_size \(5\) no larger than the "
                                             r"padded size 2; got size=2, kernel_size=5, padding=0"),
    (lambda: F.pool_output_size(8, 2, 0), r"stride a positive integer; got stride=0"),
])
def test_functional_errors(call, message):
    with pytest.raises(me.ShapeError, match=message):
        call()


def test_pool_output_size():
    assert F.pool_output_size(8, 2, 2) == 4 and F.pool_output_size(5, 3, 2, 1) == 3
    assert F.pool_output_size(1, 2, 1, 1) == 2  # a half-kernel padding can make the output larger


@pytest.mark.parametrize("build, message", [
    (lambda: layers.MaxPool2D(3, padding=2, name="p"), r"MaxPool2D 'p': expected padding at most half"),
    (lambda: layers.AvgPool2D((2, 0)), r"AvgPool2D: expected kernel_size an int >= 1"),
    (lambda: layers.Upsample(0), r"Upsample: expected scale_factor an int >= 1"),
    (lambda: layers.Upsample(2, mode="area", name="up"), r"Upsample 'up': expected mode"),
    (lambda: layers.MaxUnpool2D(None), r"MaxUnpool2D: expected pool: the MaxPool2D layer"),
])
def test_layer_configuration_errors(build, message):
    with pytest.raises(me.ShapeError, match=message):
        build()


def test_layer_forward_errors_name_the_layer():
    with pytest.raises(me.ShapeError, match=r"MaxPool2D\(k=4, s=4\) 'enc' forward: expected a kernel \(4, 4\)"):
        layers.MaxPool2D(4, name="enc")(np.zeros((1, 1, 3, 3)))
    with pytest.raises(me.ShapeError, match=r"GlobalAvgPool2D forward: expected x with 4 dimensions"):
        layers.GlobalAvgPool2D()(np.zeros((1, 3)))
    y, backward = layers.Upsample(2).forward(np.zeros((1, 1, 2, 2)))
    with pytest.raises(me.ShapeError, match=r"Upsample\(x2, nearest\) backward: expected dy of shape \(1, 1, 4, 4\)"):
        backward(np.zeros((1, 1, 4, 3)), me.DeltaSet())


def test_layers_keep_the_input_dtype():
    for layer in (layers.MaxPool2D(2), layers.AvgPool2D(2), layers.Upsample(2, "bilinear"), layers.GlobalAvgPool2D()):
        for dtype in (np.float32, np.float64):
            y, backward = layer.forward(np.ones((1, 2, 4, 4), dtype=dtype))
            assert y.dtype == dtype
            assert backward(np.ones(y.shape, dtype=np.float64), me.DeltaSet()).dtype == dtype


def test_a_checked_window_does_not_let_a_look_alike_through():
    """Windows are checked once per argument tuple; True, (1, True) or 2.0 are never taken for 1 or 2."""
    x = np.zeros((1, 1, 4, 4))
    F.max_pool2d(x, 1), F.max_pool2d(x, 2), F.avg_pool2d(x, (1, 1))
    for bad in (True, (1, True), 2.0):
        with pytest.raises(me.ShapeError, match="kernel_size an int >= 1"):
            F.max_pool2d(x, bad)
