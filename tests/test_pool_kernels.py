"""Pooling kernels (through minieye.functional) against the naive loops of tests/naive_pool.py,
over hypothesis-drawn shapes and hyper-parameters, in float32 and float64."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import naive_pool as naive
import minieye as me
from minieye import functional as F
from minieye.kernels import pool as K
from minieye.kernels import upsample as U

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


@st.composite
def pool_problems(draw, max_side: int = 9):
    """(x_shape, kernel, stride, padding) with padding <= kernel // 2 and the kernel fitting."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), max_side))
    w = draw(st.integers(max(1, kw - 2 * pw), max_side))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    return (n, c, h, w), (kh, kw), (sh, sw), (ph, pw)


seeds = st.integers(0, 2**32 - 1)


def assert_same_product(a: float, b: float, u: np.ndarray, v: np.ndarray, dtype) -> None:
    """a == b up to rounding, relative to the size of the terms (|u| |v|), not of the sum."""
    scale = float(np.linalg.norm(u.astype(np.float64)) * np.linalg.norm(v.astype(np.float64))) + 1e-300
    assert abs(a - b) <= (1e-5 if dtype == np.float32 else 1e-13) * scale, (a, b)
dtypes = st.sampled_from(DTYPES)


def special_values(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sprinkle NaN, -inf and +inf over x (about 10% each)."""
    u = rng.random(x.shape)
    return np.where(u < 0.1, np.nan, np.where(u < 0.2, -np.inf, np.where(u < 0.25, np.inf, x))).astype(x.dtype)


@given(pool_problems(), seeds, dtypes, st.sampled_from(["normal", "coarse", "special"]))
def test_max_pool_matches_naive(problem, seed, dtype, values):
    shape, k, s, p = problem
    rng = np.random.default_rng(seed)
    # coarse values (0, 1, 2) make ties common: the switch must still be the first maximum;
    # special values check the NaN (last NaN wins) and infinity rules
    x = (rng.standard_normal(shape) if values == "normal" else rng.integers(0, 3, shape)).astype(dtype)
    if values == "special":
        x = special_values(x, rng)
    y, switches = F.max_pool2d(x, k, s, p)
    y_ref, s_ref = naive.max_pool(x.astype(np.float64), k, s, p)
    assert y.dtype == dtype and switches.dtype == np.int64
    np.testing.assert_array_equal(switches, s_ref)
    np.testing.assert_array_equal(y, y_ref.astype(dtype))  # NaN compares equal here


@given(pool_problems(), seeds, dtypes)
def test_max_pool_backward_is_unpool_and_matches_naive(problem, seed, dtype):
    shape, k, s, p = problem
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    y, switches = F.max_pool2d(x, k, s, p)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = F.max_unpool2d(dy, switches, shape[2:])  # max-pool's backward
    assert dx.dtype == dtype and dx.shape == shape
    np.testing.assert_allclose(dx, naive.unpool(dy.astype(np.float64), switches, shape[2:]), **TOL[dtype])
    np.testing.assert_array_equal(F.max_unpool2d_backward(x, switches), y)  # gather at the maxima


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 5),
       st.integers(1, 5), seeds, dtypes)
def test_unpool_is_adjoint_of_gather(n, c, h, w, hy, wy, seed, dtype):
    """<unpool(y, s), x> == <y, gather(x, s)> for arbitrary switches, repeated ones included."""
    rng = np.random.default_rng(seed)
    switches = rng.integers(0, h * w, (n, c, hy, wy))
    y = rng.standard_normal((n, c, hy, wy)).astype(dtype)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    up = F.max_unpool2d(y, switches, (h, w))
    down = F.max_unpool2d_backward(x, switches)
    assert_same_product(float(np.vdot(up, x)), float(np.vdot(y, down)), y, x, dtype)
    np.testing.assert_array_equal(down, naive.gather(x.astype(np.float64), switches).astype(dtype))
    np.testing.assert_allclose(up, naive.unpool(y.astype(np.float64), switches, (h, w)), **TOL[dtype])


def test_max_pool_ties_first_maximum_wins():
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])
    _, switches = F.max_pool2d(x, 2)
    assert switches.item() == 1  # (0, 1) comes before (1, 0) in row-major order
    flat = np.ones((1, 2, 4, 6), dtype=np.float32)
    _, switches = F.max_pool2d(flat, 2, stride=2)
    # each window's top-left cell: row 2*i, column 2*j of a width-6 plane
    expected = np.array([[0, 2, 4], [12, 14, 16]])
    np.testing.assert_array_equal(switches, np.broadcast_to(expected, (1, 2, 2, 3)))


def test_max_pool_pads_with_minus_infinity_and_propagates_nan():
    x = -np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # all negative: zero padding would win
    y, switches = F.max_pool2d(x, 3, stride=3, padding=1)
    assert y.item() == -1.0 and switches.item() == 0
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 1, 0] = np.nan
    y, switches = F.max_pool2d(x, 2)
    assert np.isnan(y.item()) and switches.item() == 2


@given(pool_problems(), seeds, dtypes, st.booleans())
def test_avg_pool_matches_naive(problem, seed, dtype, count_include_pad):
    shape, k, s, p = problem
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    y = F.avg_pool2d(x, k, s, p, count_include_pad=count_include_pad)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, naive.avg_pool(x.astype(np.float64), k, s, p, count_include_pad),
                               **TOL[dtype])
    # backward: the transpose of the pooling matrix, plane by plane
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = F.avg_pool2d_backward(dy, shape[2:], k, s, p, count_include_pad)
    a = naive.avg_pool_matrix(shape[2:], k, s, p, count_include_pad)
    dx_ref = (dy.astype(np.float64).reshape(shape[0], shape[1], -1) @ a).reshape(shape)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, dx_ref, **TOL[dtype])


def test_avg_pool_divisor_modes_differ_only_at_the_border():
    x = np.ones((1, 1, 4, 4))
    with_pad = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True)
    without = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    np.testing.assert_allclose(without, 1.0)
    assert with_pad[0, 0, 0, 0] == pytest.approx(4 / 9) and with_pad[0, 0, 1, 1] == 1.0


@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.integers(1, 3),
       st.integers(1, 3), seeds, dtypes, st.sampled_from(["nearest", "bilinear"]))
def test_upsample_matches_naive(n, c, h, w, sh, sw, seed, dtype, mode):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    y = F.upsample(x, (sh, sw), mode=mode)
    assert y.shape == (n, c, h * sh, w * sw) and y.dtype == dtype
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = F.upsample_backward(dy, (sh, sw), mode=mode)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    if mode == "nearest":
        y_ref = naive.upsample_nearest(x64, sh, sw)
        dx_ref = dy64.reshape(n, c, h, sh, w, sw).sum(axis=(3, 5))
    else:
        y_ref = naive.upsample_bilinear(x64, sh, sw)
        dx_ref = naive.upsample_bilinear_grad(dy64, sh, sw)
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    np.testing.assert_allclose(dx, dx_ref, **TOL[dtype])
    # and backward is the adjoint of forward
    assert_same_product(float(np.vdot(y.astype(np.float64), dy64)), float(np.vdot(x64, dx.astype(np.float64))),
                        x, dy, dtype)


@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), seeds, dtypes, st.booleans())
def test_global_avg_pool(n, c, h, w, seed, dtype, keepdims):
    x = np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(dtype)
    y = F.global_avg_pool2d(x, keepdims=keepdims)
    assert y.shape == ((n, c, 1, 1) if keepdims else (n, c)) and y.dtype == dtype
    np.testing.assert_allclose(y.reshape(n, c), x.astype(np.float64).mean(axis=(2, 3)), **TOL[dtype])


def test_parallel_drivers_match_serial_bodies():
    """The threaded paths (taken from the pool_parallel_min_work and unpool_parallel_min_cells knobs on) compute
    what one serial call does."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 9, 8))
    geometry = ((3, 2), (2, 1), (1, 1))
    dy = rng.standard_normal((2, 3, 5, 9))
    runs = []
    for threshold in (1 << 62, 0):
        with me.options(pool_parallel_min_work=threshold, unpool_parallel_min_cells=threshold):
            y, s = K.max_pool_forward(x, *geometry)
            runs.append([
                y, s, K.scatter_switches(y, s, (9, 8)), K.gather_switches(x, s),
                *K.max_pool_forward(x, (2, 2), (2, 2), (0, 0)),  # the 2x2 kernel's own driver
                K.avg_pool_forward(x, *geometry, False), K.avg_pool_backward(dy, (9, 8), *geometry, True),
                U.upsample_nearest_forward(x, 2, 3), U.upsample_nearest_backward(dy[:, :, :4], 2, 3),
                U.upsample_bilinear_forward(x, 2, 3), U.upsample_bilinear_backward(dy[:, :, :4], 2, 3),
            ])
    for serial, parallel in zip(*runs):
        np.testing.assert_allclose(parallel, serial, rtol=1e-13, atol=1e-13)


def test_noncontiguous_and_integer_inputs_are_accepted():
    x = np.arange(2 * 3 * 6 * 6, dtype=np.float64).reshape(2, 6, 6, 3).transpose(0, 3, 1, 2)
    y, s = F.max_pool2d(x, 2)
    y_ref, s_ref = F.max_pool2d(np.ascontiguousarray(x), 2)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(s, s_ref)
    y_int, _ = F.max_pool2d(np.ascontiguousarray(x).astype(np.int32), 2)
    assert y_int.dtype == np.float32
    np.testing.assert_array_equal(F.avg_pool2d(x[:, :, ::2, ::2], 1), x[:, :, ::2, ::2])


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 0, 4, 4)])
def test_empty_batches_and_channels(shape):
    x = np.zeros(shape)
    y, switches = F.max_pool2d(x, 2)
    assert y.shape == switches.shape == (*shape[:2], 2, 2)
    assert F.max_unpool2d(y, switches, (4, 4)).shape == shape
    assert F.max_unpool2d_backward(x, switches).shape == y.shape
    assert F.avg_pool2d_backward(F.avg_pool2d(x, 2), (4, 4), 2).shape == shape
    for mode in ("nearest", "bilinear"):
        assert F.upsample_backward(F.upsample(x, 2, mode), 2, mode).shape == shape
