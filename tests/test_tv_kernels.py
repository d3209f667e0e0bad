"""The total-variation kernels (minieye/kernels/tv.py) against the NumPy reference in minieye/functional/tv.py."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minieye as me
from minieye.kernels import tv as ktv
from minieye.functional import tv as ftv
from minieye.losses import SecondOrderTV, TotalVariation

# float32: the kernels round differently from NumPy (order of additions, fused multiply-adds)
TOL = {np.float32: 2e-5, np.float64: 1e-12}
SHAPES = [(1, 1), (1, 6), (6, 1), (2, 2), (3, 3), (5, 7), (2, 4, 9), (2, 1, 6, 5), (3, 33, 17)]


def _close(got, want, dtype, what):
    tol = TOL[dtype]
    scale = max(1.0, float(np.abs(want).max()))
    err = float(np.abs(np.asarray(got, np.float64) - want).max())
    assert err <= tol * scale, f"{what}: max |kernel - reference| = {err:.3g} (scale {scale:.3g})"


def _tv_pair(x, eps, q, scale):
    planes = ftv._planes(x)
    total, f = ktv.tv_forward(planes, eps, q)
    return total, ktv.tv_backward(planes, f, scale).reshape(x.shape)


def _tv2_pair(x, eps, scale):
    planes = ftv._planes(x)
    total, m = ktv.tv2_forward(planes, eps)
    return total, ktv.tv2_backward(planes, m, scale).reshape(x.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("q", [1.0, 0.6, 2.0])
def test_tv_kernels_match_reference(shape, dtype, q):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    want_total, want_grad = ftv.tv_reference(x, 0.05, q)
    total, grad = _tv_pair(x, 0.05, q, -0.7)
    assert grad.dtype == dtype and grad.shape == x.shape
    _close(total, want_total, dtype, "TV value")
    _close(grad, want_grad(-0.7), dtype, "TV gradient")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_second_order_kernels_match_reference(shape, dtype):
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    want_total, want_grad = ftv.second_order_reference(x, 0.05)
    total, grad = _tv2_pair(x, 0.05, 1.3)
    assert grad.dtype == dtype and grad.shape == x.shape
    _close(total, want_total, dtype, "SecondOrderTV value")
    _close(grad, want_grad(1.3), dtype, "SecondOrderTV gradient")


@settings(max_examples=25)
@given(h=st.integers(1, 9), w=st.integers(1, 9), batch=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_kernels_match_reference_on_any_small_shape(h, w, batch, seed):
    # float64, exact up to rounding: boundary rows and columns are where index slips hide
    x = np.random.default_rng(seed).standard_normal((batch, h, w))
    t, g = _tv_pair(x, 0.1, 1.0, 1.0)
    rt, rg = ftv.tv_reference(x, 0.1, 1.0)
    _close(t, rt, np.float64, "TV value")
    _close(g, rg(1.0), np.float64, "TV gradient")
    t, g = _tv2_pair(x, 0.1, 1.0)
    rt, rg = ftv.second_order_reference(x, 0.1)
    _close(t, rt, np.float64, "SecondOrderTV value")
    _close(g, rg(1.0), np.float64, "SecondOrderTV gradient")


@pytest.mark.parametrize("threshold", [0, 1 << 62])
def test_row_blocks_give_the_same_result_as_one_block(threshold):
    x = np.random.default_rng(3).random((2, 40, 31))
    with me.options(tv_parallel_min_pixels=threshold):
        got = _tv_pair(x, 0.01, 1.0, 1.0), _tv2_pair(x, 0.01, 1.0)
    with me.options(tv_parallel_min_pixels=1 << 62):
        want = _tv_pair(x, 0.01, 1.0, 1.0), _tv2_pair(x, 0.01, 1.0)
    for (t1, g1), (t2, g2) in zip(got, want):
        assert t1 == pytest.approx(t2, rel=1e-14)
        np.testing.assert_array_equal(g1, g2)  # rows are independent: splitting changes no bit


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer", [TotalVariation(1e-2), TotalVariation(1e-2, power=0.7), SecondOrderTV(1e-2)],
                         ids=["tv", "tv-power", "second-order"])
def test_layers_with_and_without_kernels_agree(layer, dtype):
    # a non-contiguous (N, C, H, W) input: the layer makes it contiguous for the kernels
    x = np.random.default_rng(4).random((2, 2, 12, 15)).astype(dtype)[:, :, ::-1, :]
    values, grads = [], []
    for kernels in (False, True):
        with me.options(regularizer_kernels=kernels):
            value, backward = layer.forward(x)
            values.append(value)
            grads.append(backward(np.asarray(2.0), None))
    assert values[1].shape == () and values[1].dtype == dtype
    assert grads[1].shape == x.shape and grads[1].dtype == dtype
    _close(values[1], float(values[0]), dtype, "value")
    _close(grads[1], grads[0].astype(np.float64), dtype, "gradient")


def test_kernels_do_not_mutate_their_input():
    x = np.random.default_rng(5).random((1, 8, 8)).astype(np.float32)
    before = x.copy()
    _tv_pair(x, 0.01, 0.5, 1.0)
    _tv2_pair(x, 0.01, 1.0)
    np.testing.assert_array_equal(x, before)
