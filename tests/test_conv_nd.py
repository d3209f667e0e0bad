"""1-D and 3-D convolution (kernels.conv_nd, F.conv1d/3d, the layers) against the naive N-d loops."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minieye as me
import minieye.functional as F
from minieye import ShapeError, layers
from minieye.core import input_grad
from minieye.kernels import conv_nd as knd
from minieye.kernels.conv_geometry import Geometry, conv_transpose_output_size

import naive_conv as naive


@st.composite
def nd_problems(draw, nd: int):
    """(x, w, spec, rng): small shapes, every geometry option, sizes the kernel fits."""
    groups = draw(st.integers(1, 2))
    c_in_g, c_out_g = draw(st.sampled_from([(1, 1), (1, 2), (2, 3), (3, 6)]))  # (3, 6): the GEMM path
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    top = 9 if nd == 1 else 5
    size = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), top)) for k, d, p in zip(kernel, dilation, padding))
    n = draw(st.integers(1, 2))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((n, groups * c_in_g) + size).astype(dtype)
    w = rng.standard_normal((groups * c_out_g, c_in_g) + kernel).astype(dtype)
    return x, w, Geometry(stride, padding, dilation, groups), rng


def _kw(spec: Geometry) -> dict:
    return dict(stride=spec.stride, padding=spec.padding, dilation=spec.dilation, groups=spec.groups)


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


def _restoring_output_padding(size, out, kernel, spec):
    return tuple(m - conv_transpose_output_size(o, k, s, p, 0, d)
                 for m, o, k, s, p, d in zip(size, out, kernel, spec.stride, spec.padding, spec.dilation))


@pytest.mark.parametrize("nd", [1, 3])
def test_kernels_match_naive_loops(nd):
    @settings(max_examples=25)
    @given(nd_problems(nd))
    def check(problem):
        x, w, spec, rng = problem
        reference = naive.conv(x, w, **_kw(spec))
        dy = rng.standard_normal(reference.shape).astype(x.dtype)
        out_pad = _restoring_output_padding(x.shape[2:], dy.shape[2:], w.shape[2:], spec)
        bias = rng.standard_normal(w.shape[0]).astype(x.dtype)
        tol = _tol(x.dtype)
        for algorithm in ("direct", "gemm") + (("taps",) if spec.groups == 1 else ()):
            with me.options(conv_algorithm=algorithm):
                y = knd.forward(x, w, spec, bias=bias)
                dx = knd.grad_input(dy, w, x.shape[2:], spec)
                dw = knd.grad_weight(x, dy, w.shape[2:], spec)
            assert y.dtype == x.dtype and y.shape == reference.shape
            np.testing.assert_allclose(y, reference + bias.reshape((-1,) + (1,) * nd), **tol)
            np.testing.assert_allclose(dx, naive.conv_transpose(dy, w, output_padding=out_pad, **_kw(spec)), **tol)
            np.testing.assert_allclose(dw, naive.conv_grad_weight(x, dy, w.shape[2:], **_kw(spec)), **tol)

    check()


@pytest.mark.parametrize("nd", [1, 3])
def test_transposed_backward_is_the_forward_and_weight_gradient(nd):
    """backward_transposed == (conv(dy), grad_weight(dy, x)), including output_padding >= stride."""
    rng = np.random.default_rng(nd)
    for c_in, c_out, stride, output_padding, dilation in ((2, 3, 2, 1, 1), (4, 8, 1, 1, 2), (3, 6, 2, 0, 1)):
        w = rng.standard_normal((c_in, c_out) + (3,) * nd)
        x = rng.standard_normal((2, c_in) + (4,) * nd)
        y = F.__dict__[f"conv_transpose{nd}d"](x, w, stride=stride, padding=1, output_padding=output_padding,
                                                 dilation=dilation)
        dy = rng.standard_normal(y.shape)
        spec = Geometry((stride,) * nd, (1,) * nd, (dilation,) * nd, 1)
        dx, dw = knd.backward_transposed(dy, w, x, spec)
        # <conv_transpose(x, w), dy> is bilinear: its gradients are the exact adjoints
        np.testing.assert_allclose(dx, naive.conv(dy, w, **_kw(spec))[(...,) + (slice(0, 4),) * nd], atol=1e-10)
        np.testing.assert_allclose(np.sum(dw * w), np.sum(y * dy), rtol=1e-10)
        assert knd.backward_transposed(dy, w, x, spec, need_dw=False)[1] is None
        assert knd.backward_transposed(dy, w, x, spec, need_dx=False)[0] is None


@pytest.mark.parametrize("nd", [1, 3])
@pytest.mark.parametrize("groups", [1, 2])
def test_adjoint_identity(nd, groups):
    """<conv(x, w), y> == <x, conv_transpose(y, w)> with the output_padding that restores x's size."""
    rng = np.random.default_rng(10 + nd)
    conv, conv_t = getattr(F, f"conv{nd}d"), getattr(F, f"conv_transpose{nd}d")
    x = rng.standard_normal((2, 4) + (7, 6, 5)[:nd])
    w = rng.standard_normal((6, 4 // groups) + (3, 2, 3)[:nd])
    stride, padding, dilation = (2, 1, 2)[:nd], (1, 0, 2)[:nd], (1, 2, 1)[:nd]
    y = conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    spec = Geometry(stride, padding, dilation, groups)
    out_pad = _restoring_output_padding(x.shape[2:], y.shape[2:], w.shape[2:], spec)
    v = rng.standard_normal(y.shape)
    # the conv weight (C_out, C_in/g, *k) is already the transposed layout (C_in_t, C_out_t/g, *k)
    back = conv_t(v, w, stride=stride, padding=padding, output_padding=out_pad, dilation=dilation, groups=groups)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(y * v), np.sum(x * back), rtol=1e-10)


def test_same_padding_keeps_the_size():
    rng = np.random.default_rng(3)
    assert F.conv1d(rng.standard_normal((1, 2, 9)), rng.standard_normal((3, 2, 5)), padding="same").shape == (1, 3, 9)
    x = rng.standard_normal((1, 2, 4, 5, 6))
    assert F.conv3d(x, rng.standard_normal((3, 2, 3, 1, 5)), padding="same").shape == (1, 3, 4, 5, 6)
    assert layers.Conv3D(2, 3, 3, padding="same")(x.astype(np.float32)).shape == (1, 3, 4, 5, 6)


@pytest.mark.parametrize("call, words", [
    (lambda: F.conv1d(np.zeros((2, 3, 8, 8)), np.zeros((4, 3, 3))), (r"conv1d", r"3 dimensions", r"N, C, L")),
    (lambda: F.conv3d(np.zeros((2, 3, 8, 8)), np.zeros((4, 3, 3, 3, 3))), (r"conv3d", r"5 dimensions", r"N, C, D, H, W")),
    (lambda: F.conv3d(np.zeros((1, 3, 2, 8, 8)), np.zeros((4, 3, 3, 3, 3))),
     (r"kernel depth 3", r"input depth 2", r"\(2, 8, 8\)")),
    (lambda: F.conv1d(np.zeros((1, 5, 8)), np.zeros((4, 3, 3))), (r"x\.shape\[1\]", r"\(1, 5, 8\)")),
    (lambda: F.conv1d(np.zeros((1, 3, 8)), np.zeros((4, 3, 3)), stride=(1, 1)), (r"stride", r"\(l,\)")),
    (lambda: F.conv3d(np.zeros((1, 3, 4, 4, 4)), np.zeros((4, 3, 2, 2, 2)), padding="same"), (r"odd",)),
    (lambda: F.conv_transpose3d(np.zeros((1, 3, 4, 4, 4)), np.zeros((3, 2, 3, 3, 3)), stride=2, output_padding=2),
     (r"output_padding", r"stride")),
    (lambda: F.conv_transpose1d(np.zeros((1, 3, 4)), np.zeros((3, 2, 3)), padding="same"), (r"padding",)),
    (lambda: layers.Conv3D(3, 4, (3, 3)), (r"Conv3D", r"kernel_size", r"\(d, h, w\)")),
    (lambda: layers.Conv1D(3, 4, 3, name="c").forward(np.zeros((2, 5, 8))), (r"Conv1D.*'c'", r"in_channels \(3\)")),
    (lambda: layers.ConvTranspose3D(3, 4, 3, name="t").forward(np.zeros((2, 3, 8, 8))), (r"'t'", r"5 dimensions")),
    (lambda: layers.Conv3D(3, 4, 5, name="v").forward(np.zeros((1, 3, 3, 9, 9))), (r"'v'", r"kernel depth 5")),
])
def test_bad_input_is_refused_with_the_culprit_named(call, words):
    with pytest.raises(ShapeError) as info:
        call()
    for pattern in words:
        assert info.match(pattern)


@pytest.mark.parametrize("cls, nd", [(layers.Conv1D, 1), (layers.Conv3D, 3), (layers.ConvTranspose1D, 1),
                                     (layers.ConvTranspose3D, 3)])
def test_frozen_weight_and_unneeded_input_gradient_are_skipped(cls, nd):
    rng = np.random.default_rng(4)
    layer = cls(2, 3, 3, stride=2, padding=1, dtype="float64", rng=rng)
    x = rng.standard_normal((2, 2) + (5,) * nd)
    y, backward = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    full, skipped = me.DeltaSet(), me.DeltaSet()
    dx = backward(dy, full)
    assert dx.shape == x.shape and np.abs(dx).sum() > 0
    with input_grad(False):
        assert backward(dy, skipped) is None
    for p in layer.parameters():
        np.testing.assert_allclose(skipped[p], full[p], rtol=1e-12, atol=1e-12)
    layer.weight.frozen = True
    frozen = me.DeltaSet()
    np.testing.assert_allclose(backward(dy, frozen), dx, rtol=1e-12)
    assert layer.weight not in frozen and layer.bias in frozen


def test_config_rebuilds_and_describe_reads():
    layer = layers.ConvTranspose3D(2, 4, (3, 1, 3), stride=(2, 1, 1), padding=1, output_padding=(1, 0, 0),
                                   groups=2, name="up")
    twin = type(layer)(**layer.config())
    assert twin.config() == layer.config() and twin.weight.value.shape == (2, 2, 3, 1, 3)
    assert layer.config()["stride"] == [2, 1, 1] and layer.config()["padding"] == 1
    assert layer.describe() == "ConvTranspose3D(2->4, 3x1x3, stride=[2, 1, 1], groups=2)"
    assert layers.Conv1D(1, 1, 5, padding="same").config()["padding"] == "same"
