"""The fused-run kernels for few input channels on "same" planes (``kernels.conv_small``): against the
naive loops and the other algorithms, where "auto" picks them, and what they refuse."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minieye as me
from minieye import layers
from minieye.kernels import conv as kconv, conv_nd as knd
from minieye.kernels.conv_geometry import Geometry
from minieye.kernels.conv_plan import Algorithm, small_fits

import naive_conv as naive


def _kw(g: Geometry) -> dict:
    return dict(stride=g.stride, padding=g.padding, dilation=g.dilation, groups=g.groups)


def _tol(dtype) -> dict:
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


@st.composite
def same_problems(draw):
    """(x, w, geometry, rng) of a stride-1 convolution whose output is as large as its input."""
    kh, kw = draw(st.sampled_from([1, 3, 5, 7])), draw(st.sampled_from([1, 3, 5]))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (dilation[0] * (kh - 1) // 2, dilation[1] * (kw - 1) // 2)
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 20))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((draw(st.integers(1, 5)), c_in, h, w)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in, kh, kw)).astype(dtype)
    return x, weight, Geometry((1, 1), padding, dilation, 1), rng


@settings(max_examples=60, deadline=None)
@given(same_problems(), st.booleans())
def test_small_matches_naive_loops(problem, parallel):
    """Forward (with and without bias), both gradients (apart and in one pass) and the transposed
    convolution's backward: every odd kernel up to 7x5, dilation 1 and 2, planes down to 1x1 (shifts past the
    whole row), 1 to 20 output channels (groups of nine with a partial last one, odd counts), one or several
    threads."""
    x, w, g, rng = problem
    reference = naive.conv2d(x, w, **_kw(g))
    assert reference.shape[2:] == x.shape[2:]
    dy = rng.standard_normal(reference.shape).astype(x.dtype)
    bias = rng.standard_normal(w.shape[0]).astype(x.dtype)
    knobs = dict(conv_algorithm="small", threads=3 if parallel else 1, conv_gemm_parallel_min_work=0 if parallel
                 else 10**9)
    with me.options(**knobs):
        plan = kconv.make_plan(x.shape, w.shape, g)
        y = kconv.conv2d_forward(x, w, g)
        y_biased = kconv.conv2d_forward(x, w, g, bias=bias)
        dx = kconv.conv2d_grad_input(dy, w, x.shape[2:], g)
        dw = kconv.conv2d_grad_weight(x, dy, w.shape[2:], g)
        both = knd.backward(x, dy, w, g, plan, need_db=True)  # one pass for all: the same sums in the same order
        dx_t, dw_t = kconv.conv2d_backward_transposed(x, w, dy, g)
    assert plan.algorithm is Algorithm.SMALL and plan.threads == (3 if parallel else 1)
    assert all(a.dtype == x.dtype for a in (y, dx, dw, dx_t, dw_t))
    np.testing.assert_array_equal(both[0], dx)
    np.testing.assert_array_equal(both[1], dw)
    tol = _tol(x.dtype)
    np.testing.assert_allclose(y, reference, **tol)
    np.testing.assert_allclose(both[2], dy.sum(axis=(0, 2, 3)), **tol)
    np.testing.assert_allclose(y_biased, reference + bias[None, :, None, None], **tol)
    np.testing.assert_allclose(dx, naive.conv_transpose2d(dy, w, **_kw(g)), **tol)
    np.testing.assert_allclose(dw, naive.conv2d_grad_weight(x, dy, w.shape[2:], **_kw(g)), **tol)
    np.testing.assert_allclose(dx_t, reference, **tol)
    np.testing.assert_allclose(dw_t, naive.conv2d_grad_weight(x, dy, w.shape[2:], **_kw(g)), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_digits_layer_matches_the_gemm_path(dtype):
    """The digits layer (256x1x8x8 -> 16, 3x3) and LeNet's first (1 -> 6, 5x5 on 28x28): "auto" runs them
    by SMALL, and every pass agrees with GEMM's (float64 to rounding, float32 within 1e-5 of the largest)."""
    rng = np.random.default_rng(3)
    for x_shape, c_out, k in (((256, 1, 8, 8), 16, 3), ((16, 1, 28, 28), 6, 5)):
        x = rng.standard_normal(x_shape).astype(dtype)
        w = rng.standard_normal((c_out, 1, k, k)).astype(dtype)
        g = Geometry((1, 1), (k // 2, k // 2), (1, 1), 1)
        dy = rng.standard_normal((x_shape[0], c_out) + x_shape[2:]).astype(dtype)
        assert kconv.make_plan(x.shape, w.shape, g).algorithm is Algorithm.SMALL
        ours = (kconv.conv2d_forward(x, w, g), kconv.conv2d_grad_input(dy, w, x_shape[2:], g),
                kconv.conv2d_grad_weight(x, dy, (k, k), g))
        with me.options(conv_algorithm="gemm"):
            theirs = (kconv.conv2d_forward(x, w, g), kconv.conv2d_grad_input(dy, w, x_shape[2:], g),
                      kconv.conv2d_grad_weight(x, dy, (k, k), g))
        for a, b in zip(ours, theirs):
            scale = np.abs(b).max()
            assert np.abs(a - b).max() <= (1e-5 if dtype == np.float32 else 1e-13) * scale


def test_auto_picks_small_only_where_it_fits_and_pays():
    same = Geometry((1, 1), (1, 1), (1, 1), 1)
    assert kconv.make_plan((8, 3, 32, 32), (32, 3, 3, 3), same).algorithm is Algorithm.SMALL  # 27 taps
    assert kconv.make_plan((8, 4, 32, 32), (32, 4, 3, 3), same).algorithm is not Algorithm.SMALL  # 36 taps
    assert kconv.make_plan((8, 1, 8, 8), (1, 1, 3, 3), same).algorithm is not Algorithm.SMALL  # one output
    assert kconv.make_plan((1, 2, 256, 256), (16, 2, 3, 3), same).algorithm is Algorithm.SMALL
    assert kconv.make_plan((1, 2, 257, 256), (16, 2, 3, 3), same).algorithm is not Algorithm.SMALL  # large plane
    assert kconv.make_plan((8, 1, 8, 8), (16, 1, 3, 3), Geometry((2, 2), (1, 1), (1, 1), 1)).algorithm \
        is not Algorithm.SMALL  # strided
    assert kconv.make_plan((8, 1, 8, 8), (16, 1, 3, 3), Geometry((1, 1), (0, 0), (1, 1), 1)).algorithm \
        is not Algorithm.SMALL  # "valid": the output is smaller
    assert small_fits((3, 5), (4, 4), Geometry((1, 1), (2, 2), (2, 1), 1))
    assert not small_fits((2, 2), (4, 4), Geometry((1, 1), (1, 1), (1, 1), 1))  # even kernels cannot be "same"
    assert not small_fits((3, 3), (4, 4), Geometry((1, 1), (1, 1), (1, 1), 2))
    with pytest.raises(ValueError, match="conv_algorithm='small'.*output as large as the input"):
        with me.options(conv_algorithm="small"):
            kconv.make_plan((8, 1, 8, 8), (16, 1, 3, 3), Geometry((1, 1), (0, 0), (1, 1), 1))


def test_an_inf_reaches_only_its_neighbours():
    """The shifted planes zero the pixels past a row's edge by a select, not by a product: an inf in the
    first column reaches the outputs whose windows hold it, and no NaN appears in the previous row."""
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 0] = np.inf
    w = np.ones((4, 1, 3, 3))
    g = Geometry((1, 1), (1, 1), (1, 1), 1)
    with me.options(conv_algorithm="small"):
        y = kconv.conv2d_forward(x, w, g)
    expected = np.zeros((5, 5))
    expected[1:4, 0:2] = np.inf
    for o in range(4):
        np.testing.assert_array_equal(y[0, o], expected)


def _auto_and_gemm_steps(layer, x: np.ndarray) -> list[tuple]:
    """The layer's forward, dx and parameter gradients (a cosine of y as dy) under "auto" and under GEMM."""
    results = []
    for algorithm in ("auto", "gemm"):
        with me.options(conv_algorithm=algorithm):
            y, backward = layer.forward(x)
            deltas = me.DeltaSet()
            dx = backward(np.cos(y), deltas)
        results.append((y, dx) + tuple(deltas[p] for p in layer.parameters()))
    return results


def test_layer_step_runs_small_and_matches_gemm():
    """Through the layer (the road a network takes): forward, dx, dw and db against GEMM's, float64."""
    rng = np.random.default_rng(5)
    layer = layers.Conv2D(2, 8, 3, padding=1, dtype=np.float64, rng=rng)
    x = rng.standard_normal((6, 2, 7, 7))
    from minieye.functional.conv import conv_plan
    assert conv_plan(x.shape, layer.weight.shape, layer.geometry).algorithm is Algorithm.SMALL
    for a, b in zip(*_auto_and_gemm_steps(layer, x)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_transposed_layer_with_output_padding_matches_gemm():
    """A stride-1 transposed layer whose output_padding (allowed below the dilation) makes its output one
    larger than "same": its plan is SMALL, the passes whose shapes are not "same" run as GEMM."""
    rng = np.random.default_rng(7)
    layer = layers.ConvTranspose2D(8, 2, 3, padding=2, dilation=2, output_padding=1, dtype=np.float64, rng=rng)
    x = rng.standard_normal((3, 8, 5, 6))
    results = _auto_and_gemm_steps(layer, x)
    assert results[0][0].shape == (3, 2, 6, 7)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_results_do_not_depend_on_the_thread_count():
    """The threads claim fixed chunks of samples and each chunk sums its own weight gradient, added in chunk
    order: the digits layer's three passes are bitwise the same on 1, 2 and 3 threads (float32), although the
    threads finish their chunks in any order (the bias gradient too, summed in the same pass)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((250, 1, 8, 8)).astype(np.float32)  # 16 chunks of 16 samples, the last one 10
    w = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((250, 16, 8, 8)).astype(np.float32)
    g = Geometry((1, 1), (1, 1), (1, 1), 1)
    results = []
    for threads in (1, 2, 3):
        with me.options(threads=threads, conv_gemm_parallel_min_work=0):
            plan = kconv.make_plan(x.shape, w.shape, g)
            assert plan.algorithm is Algorithm.SMALL and plan.threads == threads
            results.append((kconv.conv2d_forward(x, w, g, plan), *knd.backward(x, dy, w, g, plan, need_db=True)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_one_image_splits_its_rows_among_the_threads():
    """One image: the plan keeps its threads, and every pass cuts the image into blocks of rows that the
    threads claim (each building the shifted planes itself). The blocks do not depend on the thread
    count: forward, dx, dw and db are bitwise the same on 1, 2 and 3 threads, and match the naive loops."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 2, 37, 29))
    w = rng.standard_normal((5, 2, 3, 3))
    dy = rng.standard_normal((1, 5, 37, 29))
    g = Geometry((1, 1), (1, 1), (1, 1), 1)
    results = []
    for threads in (1, 2, 3):
        with me.options(threads=threads, conv_gemm_parallel_min_work=0, conv_algorithm="small"):
            plan = kconv.make_plan(x.shape, w.shape, g)
            assert plan.threads == threads
            results.append((kconv.conv2d_forward(x, w, g, plan), *knd.backward(x, dy, w, g, plan, need_db=True)))
    y, dx, dw, db = results[0]
    np.testing.assert_allclose(y, naive.conv2d(x, w, padding=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, naive.conv_transpose2d(dy, w, padding=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, naive.conv2d_grad_weight(x, dy, (3, 3), padding=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("x_shape, kernel_hw, dilation", [((1, 1, 2, 1), (3, 5), (1, 2)), ((3, 1, 2, 1), (3, 5), (1, 2)),
                                                          ((2, 2, 2, 1), (1, 7), (1, 1))])
def test_shifts_past_the_whole_plane_leave_no_scratch_unset(x_shape, kernel_hw, dilation):
    """A kernel column shifted past the whole padded plane (two pixels in a column under a 5- or 7-wide
    kernel; one image, split into rows, and several) reads only zeros: the scratch that the shifted planes live in is filled with NaN first, as a
    previous call may leave it, and every pass still matches the naive loops. (This left the shifted planes
    partly unset and made test_small_matches_naive_loops fail now and then: docs/kernels.md, "Reliability".)"""
    from minieye.kernels.conv_layout import scratch
    rng = np.random.default_rng(13)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((4, x_shape[1]) + kernel_hw)
    padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel_hw))
    g = Geometry((1, 1), padding, dilation, 1)
    dy = rng.standard_normal((x_shape[0], 4) + x_shape[2:])
    scratch("small_xs0", (4096,), np.float64)[:] = np.nan  # the caller's thread runs the only part
    with me.options(conv_algorithm="small", threads=1):
        y = kconv.conv2d_forward(x, w, g)
        dw = kconv.conv2d_grad_weight(x, dy, kernel_hw, g)
    kw = dict(padding=padding, dilation=dilation)
    np.testing.assert_allclose(y, naive.conv2d(x, w, **kw), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, naive.conv2d_grad_weight(x, dy, kernel_hw, **kw), rtol=1e-12, atol=1e-12)
