"""Strided convolutions whose stride divides the kernel, one product per shift of the phase planes (conv_shifts)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minieye as me
from minieye.kernels import conv as kconv, conv_shifts
from minieye.kernels.conv_geometry import Geometry
from minieye.kernels.conv_plan import Algorithm, Plan, plan
from minieye.testing import check_gradients

import naive_conv as naive
from test_conv_kernels import _kw, _restoring_output_padding, _tol, forced

S2 = Geometry((2, 2), (1, 1), (1, 1), 1)


def test_auto_plans_shifts_where_the_stride_divides_the_kernel():
    """The bench_kernels up-sampler's convolution (16 -> 32 channels, 4x4, stride 2) runs per shift; stride 1,
    a 3x3 kernel at stride 2, dilation, groups, few channels (not TAPS) or a forced algorithm do not."""
    assert plan((32, 16, 32, 32), (32, 16, 4, 4), S2).shifts
    assert plan((32, 16, 32, 32), (32, 16, 2, 2), Geometry((2, 2))).shifts
    assert not plan((32, 16, 32, 32), (32, 16, 4, 4), Geometry((1, 1), (1, 1))).shifts
    assert not plan((32, 16, 32, 32), (32, 16, 3, 3), S2).shifts
    assert not plan((32, 16, 32, 32), (32, 16, 4, 4), Geometry((2, 2), (1, 1), (2, 2))).shifts
    assert not plan((32, 16, 32, 32), (32, 8, 4, 4), Geometry((2, 2), (1, 1), (1, 1), 2)).shifts
    assert not plan((32, 2, 32, 32), (4, 2, 4, 4), S2).shifts
    with me.options(conv_algorithm="taps"):
        assert not plan((32, 16, 32, 32), (32, 16, 4, 4), S2).shifts


def test_shift_weight_round_trip():
    """``from_shift_weight`` inverts ``shift_weight``; shift (u, v) holds taps (u*s_h + p_h, v*s_w + p_w)."""
    w = np.arange(2 * 3 * 4 * 6, dtype=np.float64).reshape(2, 3, 4, 6)
    ws = conv_shifts.shift_weight(w, (2, 3))
    assert ws.shape == (4, 2, 18)
    assert ws[3, 1, 2 * 6 + 1 * 3 + 2] == w[1, 2, 1 * 2 + 1, 1 * 3 + 2]
    np.testing.assert_array_equal(conv_shifts.from_shift_weight(ws, 3, (4, 6), (2, 3)), w)


@st.composite
def shift_problems(draw):
    stride = (draw(st.integers(1, 3)), draw(st.integers(2, 3)))[::draw(st.sampled_from([1, -1]))]
    kernel = (stride[0] * draw(st.integers(1, 2)), stride[1] * draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 10))
    w = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 10))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w)).astype(dtype)
    weight = rng.standard_normal((draw(st.integers(1, 3)), x.shape[1]) + kernel).astype(dtype)
    return x, weight, Geometry(stride, padding), rng


@settings(max_examples=30, deadline=None)
@given(shift_problems(), st.booleans(), st.booleans())
def test_shifts_match_naive_loops(problem, parallel, tiny_tiles):
    """Forward (with bias), input gradient, weight gradient and the transposed backward (dx and dw in one
    pass), float32 and float64, strides up to 3 per side dividing kernels of 1-2 shifts, on 1 or 2 threads,
    whole samples or one output row per tile."""
    x, w, g, rng = problem
    reference = naive.conv2d(x, w, **_kw(g))
    dy = rng.standard_normal(reference.shape).astype(x.dtype)
    bias = rng.standard_normal(w.shape[0]).astype(x.dtype)
    out_pad = _restoring_output_padding(x.shape[2:], dy.shape[2:], w.shape[2:], g)
    with forced(parallel, tiny_tiles, "taps"), me.options(threads=2 if parallel else 1):
        p = dataclasses.replace(plan(x.shape, w.shape, g), shifts=True)
        assert p.algorithm is Algorithm.TAPS
        got = (kconv.conv2d_forward(x, w, g, p, bias), kconv.conv2d_grad_input(dy, w, x.shape[2:], g, p),
               kconv.conv2d_grad_weight(x, dy, w.shape[2:], g, p), *kconv.conv2d_backward_transposed(x, w, dy, g, p))
    dw_ref = naive.conv2d_grad_weight(x, dy, w.shape[2:], **_kw(g))
    want = (reference + bias[None, :, None, None], naive.conv_transpose2d(dy, w, output_padding=out_pad, **_kw(g)),
            dw_ref, reference, dw_ref)
    for value, expected in zip(got, want):
        assert value.dtype == x.dtype
        np.testing.assert_allclose(value, expected, **_tol(x.dtype))


@pytest.mark.parametrize("transposed", [False, True])
def test_layer_gradients_through_shifts(transposed):
    """Conv2D / ConvTranspose2D with a 4x4 kernel at stride 2 planned per shift ("auto", taps from one input
    channel): input and weight gradients against central differences, float64."""
    cls = me.layers.ConvTranspose2D if transposed else me.layers.Conv2D
    layer = cls(3, 6, 4, stride=2, padding=1, dtype="float64", seed=1)
    x = np.random.default_rng(1).standard_normal((2, 3, 3, 4) if transposed else (2, 3, 6, 8))
    with me.options(conv_taps_min_channels=1):
        w_conv = (3, 6, 4, 4) if transposed else (6, 3, 4, 4)  # the convolution's (c_out, c_in, kh, kw)
        assert plan((2, w_conv[1], 6, 8), w_conv, S2).shifts
        check_gradients(layer, x, rng=1)


@pytest.mark.parametrize("geometry, kernel, groups", [(Geometry((2, 2), (1, 1), (2, 2)), (4, 4), 1), (S2, (3, 3), 1),
                                                      (Geometry((2, 2), (1, 1), (1, 1), 2), (4, 4), 2)])
def test_a_shifts_plan_for_another_geometry_is_refused(geometry, kernel, groups):
    """Per shift is right only where the stride divides the kernel, dilation 1, no groups: a plan that
    says ``shifts`` for another geometry (built by hand, or for another layer) is refused by every pass
    with an error naming the plan, not run to a silently wrong result or a reshape error."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 11, 11))
    w = rng.standard_normal((8, 16 // groups) + kernel)
    p = dataclasses.replace(plan(x.shape, w.shape, geometry), algorithm=Algorithm.TAPS, shifts=True)
    y = naive.conv2d(x, w, **_kw(geometry))
    message = r"Plan\.shifts: expected a 2-D kernel that the stride divides, dilation 1, groups 1; got kernel"
    for run in (lambda: kconv.conv2d_forward(x, w, geometry, p),
                lambda: kconv.conv2d_grad_input(y, w, (11, 11), geometry, p),
                lambda: kconv.conv2d_grad_weight(x, y, kernel, geometry, p),
                lambda: kconv.conv2d_backward_transposed(x, w, y, geometry, p)):
        with pytest.raises(ValueError, match=message):
            run()


def test_shifts_belong_to_taps_plans():
    with pytest.raises(ValueError, match=r"Plan: expected shifts only with the TAPS algorithm; got GEMM"):
        Plan(Algorithm.GEMM, 1, False, False, 4096, 1 << 20, shifts=True)
