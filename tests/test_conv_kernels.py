"""Convolution kernels and F.conv* against the naive references in tests/naive_conv.py."""
from __future__ import annotations

import dataclasses
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import minieye as me
import minieye.functional as F
from minieye import ShapeError
from minieye.kernels import _blas, conv as kconv, conv_layout
from minieye.kernels.conv_geometry import Geometry, conv_output_size, conv_transpose_output_size

import naive_conv as naive


def forced(parallel: bool, tiny_tiles: bool, algorithm: str = "auto"):
    """Knobs that exercise the threaded paths and the multi-tile paths on small arrays."""
    knobs = dict(conv_algorithm=algorithm)
    if parallel:
        knobs.update(conv_direct_parallel_min_work=0, conv_gemm_parallel_min_work=0)
    if tiny_tiles:
        knobs.update(conv_wide_tile=1, conv_tile_bytes=1)
    return me.options(**knobs)


@st.composite
def conv_problems(draw, winograd: bool = False, taps: bool = False):
    """(x, w, geometry, rng); ``winograd``: only the shapes it runs (3x3, stride 1, no dilation or groups);
    ``taps``: those of the per-tap algorithm (no groups)."""
    groups = 1 if winograd or taps else draw(st.integers(1, 3))
    c_in_g, c_out_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = (3, 3) if winograd else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (1, 1) if winograd else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3))) if winograd else \
        (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (1, 1) if winograd else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h = draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), 9))
    w = draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), 9))
    n = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, groups * c_in_g, h, w)).astype(dtype)
    weight = rng.standard_normal((groups * c_out_g, c_in_g, kh, kw)).astype(dtype)
    geometry = Geometry(stride, padding, dilation, groups)
    return x, weight, geometry, rng


def _restoring_output_padding(in_hw, out_hw, k_hw, g):
    return (in_hw[0] - conv_transpose_output_size(out_hw[0], k_hw[0], g.stride_h, g.pad_h, 0, g.dilation_h),
            in_hw[1] - conv_transpose_output_size(out_hw[1], k_hw[1], g.stride_w, g.pad_w, 0, g.dilation_w))


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


def _kw(g: Geometry):
    return dict(stride=(g.stride_h, g.stride_w), padding=(g.pad_h, g.pad_w),
                dilation=(g.dilation_h, g.dilation_w), groups=g.groups)


@settings(max_examples=40)
@given(conv_problems(), st.sampled_from(["direct", "gemm"]), st.booleans(), st.booleans())
def test_kernels_match_naive_loops(problem, algorithm, parallel, tiny_tiles):
    _check_against_naive(problem, algorithm, parallel, tiny_tiles)


@settings(max_examples=30)
@given(conv_problems(winograd=True), st.booleans(), st.booleans())
def test_winograd_matches_naive_loops(problem, parallel, tiny_tiles):
    """F(2x2, 3x3) within float32 rounding (float64 to 1e-10) of the direct sums, every padding and
    odd or even output size; the weight gradient by Winograd with AVX2 BLAS kernels, else as GEMM."""
    _check_against_naive(problem, "winograd", parallel, tiny_tiles)
    x, w, g, _ = problem
    with me.options(conv_algorithm="winograd"):
        assert kconv.make_plan(x.shape, w.shape, g).winograd_grad_weight is not _blas.avx512_blas()


@settings(max_examples=30)
@given(conv_problems(winograd=True), st.booleans(), st.booleans(), st.sampled_from(["winograd", "winograd4"]))
def test_winograd_weight_gradient_matches_naive_loops(problem, parallel, tiny_tiles, algorithm):
    """The weight gradient by F(2x2, 3x3) and F(4x4, 3x3) (G^T [sum of (A dY A^T) (B^T d B)^T] G)
    whatever BLAS runs: every padding, odd or even output size, one image per chunk or all,
    per-thread sums."""
    x, w, g, rng = problem
    dy = rng.standard_normal(naive.conv2d(x, w, **_kw(g)).shape).astype(x.dtype)
    with forced(parallel, tiny_tiles, algorithm):
        plan = dataclasses.replace(kconv.make_plan(x.shape, w.shape, g), winograd_grad_weight=True)
        dw = kconv.conv2d_grad_weight(x, dy, (3, 3), g, plan)
    assert dw.dtype == x.dtype
    np.testing.assert_allclose(dw, naive.conv2d_grad_weight(x, dy, (3, 3), **_kw(g)), **_tol(x.dtype))


@settings(max_examples=30)
@given(conv_problems(taps=True), st.booleans(), st.booleans())
def test_taps_match_naive_loops(problem, parallel, tiny_tiles):
    """One product per kernel tap on views of the padded phase planes: every stride, padding, dilation
    and odd or even size, one row per tile (tiny tiles) or the whole sample, both ways of the input
    gradient."""
    _check_against_naive(problem, "taps", parallel, tiny_tiles)
    x, w, g, _ = problem
    with me.options(conv_algorithm="taps"):
        assert kconv.make_plan(x.shape, w.shape, g).taps_grad_input == (w.shape[0] <= x.shape[1]
                                                                        or _blas.avx512_blas())


@settings(max_examples=30)
@given(conv_problems(), st.sampled_from(["gemm", "taps"]), st.sampled_from([2, 3]), st.booleans())
def test_sample_blocks_match_naive_loops(problem, algorithm, block, parallel):
    """Products over blocks of whole samples (conv_blocks): GEMM's columns of several samples side by
    side, TAPS's phase planes stacked; blocks that do and do not divide the batch, batch 1, one or two
    threads, every stride, padding, dilation and (GEMM) groups."""
    x, w, g, _ = problem
    assume(algorithm == "gemm" or g.groups == 1)
    with me.options(conv_sample_block=block):
        _check_against_naive(problem, algorithm, parallel, False)


def test_sample_blocks_split_the_batch_and_its_threads():
    """The layout blocks only whole samples that fit the tile, leaves each thread a block, and
    keeps per-sample products for TAPS unless forced."""
    x_shape, w_shape, g = (256, 1, 8, 8), (16, 1, 3, 3), Geometry((1, 1), (1, 1), (1, 1), 1)
    # a quarter of 768 KB holds 24 samples of (9 + 16) * 8 * 10 * 4 bytes: 11 blocks of 24 (1 thread) or,
    # for 2 threads, 12 blocks of 22
    for threads, expected in ((1, 24), (2, 22)):
        with me.options(threads=threads, conv_algorithm="gemm"):
            p = kconv.make_plan(x_shape, w_shape, g)
        layout = conv_layout.gemm_layout(256, p, 1, (8, 8), (3, 3), (8, 8), 16, g, np.float32)
        assert (layout.block, layout.threads, layout.tile_rows) == (expected, threads, 8)
    with me.options(threads=2, conv_algorithm="gemm", conv_sample_block=200):
        layout = conv_layout.gemm_layout(256, kconv.make_plan(x_shape, w_shape, g), 1, (8, 8), (3, 3), (8, 8), 16, g,
                                    np.float32)
        assert (layout.block, layout.threads) == (128, 2)
    with me.options(threads=2, conv_algorithm="gemm", conv_sample_block=1):
        assert conv_layout.gemm_layout(256, kconv.make_plan(x_shape, w_shape, g), 1, (8, 8), (3, 3), (8, 8), 16, g,
                                  np.float32).block == 1
    with me.options(conv_algorithm="gemm"):  # VGG's first layer: one sample's product is large enough
        assert kconv.make_plan((32, 3, 32, 32), (32, 3, 3, 3), g).sample_block == 1
    with me.options(threads=1, conv_algorithm="gemm"):  # gradients without the wide columns
        p = kconv.make_plan(x_shape, w_shape, g)
    assert conv_layout.gemm_layout(256, p, 1, (8, 8), (3, 3), (8, 8), 16, g, np.float32, True).exact
    assert not conv_layout.gemm_layout(256, p, 1, (8, 8), (3, 3), (8, 8), 16, g, np.float32).exact
    assert not conv_layout.gemm_layout(256, p, 2, (8, 8), (3, 3), (8, 8), 16, g, np.float32, True).exact


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 1, 1, 1), (2, 0, 1, 1), (1, 2, 2, 1), (3, 1, 1, 1),
                                                               (1, 1, 1, 2)])
def test_gradients_over_sample_blocks_without_wide_columns(dtype, stride, padding, dilation, groups):
    """One input channel per group into 9*groups + 3 (more outputs per group than unfolded rows): the
    gradients run over blocks of 3 samples of 7 without the wide columns (``exact``), threads 1 and 2,
    against the naive loops."""
    rng = np.random.default_rng(stride + padding + dilation + groups)
    c_out_g = 9 * groups + 3
    x = rng.standard_normal((7, groups, 9, 8)).astype(dtype)
    w = rng.standard_normal((groups * c_out_g, 1, 3, 3)).astype(dtype)
    g = Geometry((stride, stride), (padding, padding), (dilation, dilation), groups)
    with me.options(conv_algorithm="gemm", conv_sample_block=3):
        assert conv_layout.gemm_layout(7, kconv.make_plan(x.shape, w.shape, g), groups, (9, 8), (3, 3),
                                       naive.conv2d(x, w, **_kw(g)).shape[2:], c_out_g, g, dtype, True).exact
    dy = rng.standard_normal(naive.conv2d(x, w, **_kw(g)).shape).astype(dtype)
    out_pad = _restoring_output_padding(x.shape[2:], dy.shape[2:], w.shape[2:], g)
    for threads in (1, 2):
        with me.options(conv_algorithm="gemm", conv_sample_block=3, threads=threads, conv_gemm_parallel_min_work=0):
            dw = kconv.conv2d_grad_weight(x, dy, (3, 3), g)
            dx = kconv.conv2d_grad_input(dy, w, (9, 8), g)
        np.testing.assert_allclose(dw, naive.conv2d_grad_weight(x, dy, (3, 3), **_kw(g)), **_tol(dtype))
        np.testing.assert_allclose(dx, naive.conv_transpose2d(dy, w, output_padding=out_pad, **_kw(g)), **_tol(dtype))


def _check_against_naive(problem, algorithm, parallel, tiny_tiles):
    x, w, g, rng = problem
    reference = naive.conv2d(x, w, **_kw(g))
    dy = rng.standard_normal(reference.shape).astype(x.dtype)
    h, wd = x.shape[2:]
    # The input gradient is the transposed convolution, with the output_padding that restores (h, w).
    out_pad = _restoring_output_padding(x.shape[2:], dy.shape[2:], w.shape[2:], g)
    dx_ref = naive.conv_transpose2d(dy, w, output_padding=out_pad, **_kw(g))
    dw_ref = naive.conv2d_grad_weight(x, dy, w.shape[2:], **_kw(g))
    with forced(parallel, tiny_tiles, algorithm):
        y = kconv.conv2d_forward(x, w, g)
        bias = rng.standard_normal(w.shape[0]).astype(x.dtype)
        y_biased = kconv.conv2d_forward(x, w, g, bias=bias)
        dx = kconv.conv2d_grad_input(dy, w, (h, wd), g)
        dw = kconv.conv2d_grad_weight(x, dy, w.shape[2:], g)
        dx_t, dw_t = kconv.conv2d_backward_transposed(x, w, dy, g)
        dx_b, dw_b, _ = kconv.conv2d_backward(x, dy, w, g)  # both at once (F(4x4): one pass)
        dx_only, no_dw, _ = kconv.conv2d_backward(x, dy, w, g, need_dw=False)
    assert no_dw is None
    assert all(a.dtype == x.dtype for a in (y, dx, dw, dx_t, dw_t, dx_b, dw_b))
    for got, want in ((dx_b, dx_ref), (dw_b, dw_ref), (dx_only, dx_ref)):
        np.testing.assert_allclose(got, want, **_tol(x.dtype))
    np.testing.assert_allclose(y, reference, **_tol(x.dtype))
    np.testing.assert_allclose(y_biased, reference + bias[None, :, None, None], **_tol(x.dtype))
    np.testing.assert_allclose(dx, dx_ref, **_tol(x.dtype))
    np.testing.assert_allclose(dw, dw_ref, **_tol(x.dtype))
    # The transposed convolution's backward, seen from conv2d: conv2d(x) and dw with roles swapped.
    np.testing.assert_allclose(dx_t, reference, **_tol(x.dtype))
    np.testing.assert_allclose(dw_t, dw_ref, **_tol(x.dtype))


@settings(max_examples=25)
@given(conv_problems())
def test_adjoint_identity(problem):
    x, w, g, rng = problem
    x, w = x.astype(np.float64), w.astype(np.float64)
    y = F.conv2d(x, w, **_kw(g))
    v = rng.standard_normal(y.shape)
    out_pad = _restoring_output_padding(x.shape[2:], v.shape[2:], w.shape[2:], g)
    back = F.conv_transpose2d(v, w, output_padding=out_pad, **_kw(g))
    assert back.shape == x.shape
    assert np.isclose(np.vdot(y, v), np.vdot(x, back), rtol=1e-10, atol=1e-10)


@settings(max_examples=20)
@given(conv_problems())
def test_conv_transpose2d_matches_naive_scatter(problem):
    x, w, g, rng = problem
    # Read the drawn (x, w) as a transposed problem: w is (c_in_t, c_out_t/g, kh, kw).
    x_t = rng.standard_normal((x.shape[0], w.shape[0]) + x.shape[2:]).astype(x.dtype)
    b = rng.standard_normal(w.shape[1] * g.groups).astype(x.dtype)
    max_op = (max(g.stride_h, g.dilation_h) - 1, max(g.stride_w, g.dilation_w) - 1)
    assume(min(conv_transpose_output_size(x.shape[2], w.shape[2], g.stride_h, g.pad_h, max_op[0], g.dilation_h),
               conv_transpose_output_size(x.shape[3], w.shape[3], g.stride_w, g.pad_w, max_op[1], g.dilation_w))
           >= 1)
    got = F.conv_transpose2d(x_t, w, b, output_padding=max_op, **_kw(g))
    want = naive.conv_transpose2d(x_t, w, b, output_padding=max_op, **_kw(g))
    np.testing.assert_allclose(got, want, **_tol(x.dtype))


# -- seed 003: "Deconvolution in Deep Learning" ----------------------------------------------
PATCH = np.array([[3, 3, 2, 1], [0, 0, 1, 3], [3, 1, 2, 2], [2, 0, 0, 2]], dtype=np.float64)
MASK = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]], dtype=np.float64)


def test_seed_003_example_reproduced_exactly():
    C = F.conv_matrix((4, 4), MASK)
    assert C.shape == (16, 4)
    np.testing.assert_array_equal(PATCH.ravel() @ C, [12, 12, 10, 17])           # D^T C
    np.testing.assert_array_equal(C, naive.conv_matrix((4, 4), MASK))
    y = F.conv2d(PATCH[None, None], MASK[None, None])
    np.testing.assert_array_equal(y.ravel(), [12, 12, 10, 17])
    E = np.array([1.0, -2.0, 0.5, 3.0])
    up = F.conv_transpose2d(E.reshape(1, 1, 2, 2), MASK[None, None])              # 2x2 -> 4x4
    np.testing.assert_allclose(up.ravel(), E @ C.T)                                # E C^T


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), ((1, 2), (2, 0), (2, 1))])
def test_conv_matrix_multichannel(stride, padding, dilation):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 6, 7)), rng.standard_normal((3, 2, 3, 2))
    C = F.conv_matrix(x.shape, w, stride, padding, dilation)
    y = F.conv2d(x[None], w, stride=stride, padding=padding, dilation=dilation)[0]
    np.testing.assert_allclose(x.ravel() @ C, y.ravel(), atol=1e-12)
    v = rng.standard_normal(y.shape)
    op = tuple(a - b for a, b in zip(x.shape[1:], F.conv_transpose2d(v[None], w, stride=stride, padding=padding,
                                                                      dilation=dilation).shape[2:]))
    back = F.conv_transpose2d(v[None], w, stride=stride, padding=padding, output_padding=op, dilation=dilation)
    np.testing.assert_allclose(back.ravel(), v.ravel() @ C.T, atol=1e-12)


def test_output_size_helpers():
    assert F.conv_output_size(32, 3, 1, 1) == 32
    assert F.conv_output_size(7, 3, 2, 0) == 3
    assert F.conv_output_size(10, 3, 1, 0, 2) == 6
    assert F.conv_transpose_output_size(16, 4, 2, 1) == 32
    assert F.conv_transpose_output_size(3, 3, 2, 0, 1) == 8
    with pytest.raises(ShapeError, match="kernel_size 5"):
        F.conv_output_size(2, 5)
    with pytest.raises(ShapeError, match="output_padding smaller"):
        F.conv_transpose_output_size(4, 3, 2, 0, 2)
    with pytest.raises(ShapeError, match="positive output size"):
        F.conv_transpose_output_size(1, 1, 1, 1)
    assert conv_output_size(2, 5) == -2  # the kernels' plain formula trusts its caller


def test_same_padding_and_bias():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 5)), rng.standard_normal(4)
    y = F.conv2d(x, w, b, padding="same")
    assert y.shape == (2, 4, 6, 5)
    np.testing.assert_allclose(y, naive.conv2d(x, w, b, padding=(1, 2)), atol=1e-12)
    assert F.conv2d(x, w[..., :3], padding="same", dilation=2).shape == (2, 4, 6, 5)


def test_pad_modes_and_adjoint():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    assert F.pad(x, (1, 0, 0, 0), "reflect")[0, 0, 0].tolist() == [1, 0, 1, 2, 3]
    assert F.pad(x, (0, 2, 0, 0), "replicate")[0, 0, 0].tolist() == [0, 1, 2, 3, 3, 3]
    assert F.pad(x, 1).shape == (1, 1, 5, 6) and F.pad(x, 1)[0, 0, 0].sum() == 0
    assert F.pad(x, (2, 1)).shape == (1, 1, 7, 6)
    rng = np.random.default_rng(1)
    for mode in ("zero", "reflect", "replicate"):
        a = rng.standard_normal((2, 3, 5, 6))
        amounts = (2, 1, 3, 0)
        p = F.pad(a, amounts, mode)
        v = rng.standard_normal(p.shape)
        assert np.isclose(np.vdot(p, v), np.vdot(a, F.pad_adjoint(v, amounts, mode)))


def test_mixed_dtypes_promote_and_noncontiguous_is_copied():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3))
    assert F.conv2d(x, w).dtype == np.float64
    assert F.conv2d(x, w.astype(np.float32)).dtype == np.float32
    strided = np.asfortranarray(x)[:, :, ::2, :]
    np.testing.assert_allclose(F.conv2d(strided, w), naive.conv2d(np.ascontiguousarray(strided), w), rtol=1e-5)
    assert F.conv2d(np.ones((1, 1, 3, 3), dtype=int), np.ones((1, 1, 3, 3), dtype=np.float32)).item() == 9


@pytest.mark.parametrize("call,message", [
    (lambda: F.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 5, 5))), "kernel height 5 to fit"),
    (lambda: F.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), dilation=(1, 3)), "kernel width 7"),
    (lambda: F.conv2d(np.zeros((1, 3, 4, 4)), np.zeros((4, 1, 3, 3)), groups=2), "divisible by groups"),
    (lambda: F.conv2d(np.zeros((1, 4, 4, 4)), np.zeros((4, 1, 3, 3)), groups=2), "w.shape[1] * groups"),
    (lambda: F.conv2d(np.zeros((4, 4, 4)), np.zeros((1, 4, 3, 3))), "4 dimensions"),
    (lambda: F.conv2d(np.zeros((1, 1, 4, 4), complex), np.zeros((1, 1, 3, 3))), "real numeric dtype"),
    (lambda: F.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2)), padding="same"), "odd"),
    (lambda: F.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), padding="same", stride=2), "stride 1"),
    (lambda: F.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), stride=0), "stride"),
    (lambda: F.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((2, 1, 3, 3)), b=np.zeros(3)), "b of shape (2,)"),
    (lambda: F.conv_transpose2d(np.zeros((1, 2, 4, 4)), np.zeros((2, 1, 3, 3)), stride=2, output_padding=2),
     "output_padding smaller than stride or dilation"),
    (lambda: F.conv_transpose2d(np.zeros((1, 3, 4, 4)), np.zeros((2, 1, 3, 3))), "x.shape[1] == w.shape[0]"),
    (lambda: F.conv_transpose2d(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1)), padding=1), "positive output"),
    (lambda: F.pad(np.zeros((1, 1, 3, 3)), 3, "reflect"), "smaller than the image"),
    (lambda: F.pad(np.zeros((1, 1, 3, 3)), 1, "wrap"), "mode 'zero'"),
])
def test_clear_errors(call, message):
    with pytest.raises(ShapeError, match=None) as info:
        call()
    assert message in str(info.value)
    assert str(info.value).split(":")[0] in ("conv2d", "conv_transpose2d", "pad")


def _conv_in_child(queue, x, w):  # module level: a fork child runs it
    queue.put(F.conv2d(x, w, padding=1))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_threads_survive_fork():
    """A child forked after the kernel threads started must not wait on the parent's pool."""
    import multiprocessing
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((4, 8, 12, 12)), rng.standard_normal((8, 8, 3, 3))
    with forced(parallel=True, tiny_tiles=False):
        y = F.conv2d(x, w, padding=1)  # starts the thread pool
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_conv_in_child, args=(queue, x, w))
        child.start()
        try:
            got = queue.get(timeout=60)
        finally:
            child.join(timeout=5)
            if child.is_alive():
                child.terminate()
    np.testing.assert_allclose(got, y)


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("n, top, left, out_hw", [(3, 1, 1, (6, 7)), (5, 0, 0, (4, 4)), (2, -1, 2, (3, 5)), (1, 1, 1, (6, 6)),
                                                  (2, 3, 0, (9, 10))])
def test_winograd_split_by_blocks_of_samples_equals_the_padded_image_split(tile, n, top, left, out_hw):
    """split_samples over blocks of samples writes every element of a buffer holding stale values:
    x placed at (top, left) in zeros (cropped for negative offsets), one run per column j of the input
    tile (tile + 2 wide) and row remainder: xs[i, c, j, rp, R, tx] = padded[tile*R + rp, tile*tx + j]."""
    from minieye.kernels import conv_winograd
    x = np.random.default_rng(n).standard_normal((n, 2, 6, 6)).astype(np.float32)
    shape = conv_winograd.split_shape(2, out_hw, tile)
    th1, tw = shape[3:]
    padded = np.zeros((n, 2, tile * th1 + 12, tile * tw + 14), dtype=np.float32)
    padded[:, :, 6 + top:12 + top, 6 + left:12 + left] = x
    padded = padded[:, :, 6:6 + tile * th1, 6:8 + tile * tw]
    rows = padded.reshape(n, 2, th1, tile, tile * tw + 2).transpose(0, 1, 3, 2, 4)  # (.., rp, R, column)
    want = np.stack([rows[..., j:j + tile * tw:tile] for j in range(tile + 2)], axis=2)
    got = np.full((n,) + shape, np.nan, dtype=np.float32)
    for lo, hi in ((0, n // 2), (n // 2, n)):
        block = np.full((hi - lo,) + shape, np.nan, dtype=np.float32)
        conv_winograd.split_samples(x, block, top, left, lo, hi)
        got[lo:hi] = block
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("algorithm", ["gemm", "taps"])
def test_layers_under_sample_blocks_pass_the_gradient_check(algorithm):
    """Conv2D and ConvTranspose2D (stride 2, the convT row's kind) with products over blocks of 2
    samples, a batch of 3, against central differences (the shared harness)."""
    from minieye.testing import check_gradients
    rng = np.random.default_rng(3)
    conv = me.layers.Conv2D(4, 3, 3, stride=2, padding=1, dtype="float64", seed=1)  # TAPS: dx per tap too
    convt = me.layers.ConvTranspose2D(4, 3, 4, stride=2, padding=1, dtype="float64", seed=2)
    for layer, x in ((conv, rng.standard_normal((3, 4, 7, 6))), (convt, rng.standard_normal((3, 4, 4, 5)))):
        layer.bias.value[:] = rng.standard_normal(layer.bias.value.shape)
        with me.options(conv_algorithm=algorithm, conv_sample_block=2):
            check_gradients(layer, x, rng=rng)
