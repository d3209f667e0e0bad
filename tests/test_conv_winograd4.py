"""Winograd F(4x4, 3x3) (conv_algorithm='winograd4') against the naive loops and the GEMM path."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minieye as me
from minieye.kernels import conv as kconv
from minieye.kernels.conv_geometry import Geometry
from minieye.kernels.conv_plan import Algorithm, plan
from minieye.testing import check_gradients

from test_conv_kernels import _check_against_naive, conv_problems

PAD1 = Geometry((1, 1), (1, 1), (1, 1), 1)


@settings(max_examples=30, deadline=None)
@given(conv_problems(winograd=True), st.booleans(), st.booleans(), st.sampled_from([1, 2]))
def test_winograd4_matches_naive_loops(problem, parallel, tiny_tiles, threads):
    """Forward (with and without bias), input gradient, weight gradient and the transposed backward,
    float32 and float64, padding 0-3, output sides 1-13 (partial 4x4 tiles), one image per chunk
    (tiny tiles) or all, on 1 or 2 threads."""
    with me.options(threads=threads):
        _check_against_naive(problem, "winograd4", parallel, tiny_tiles)


@pytest.mark.parametrize("shape", [(4, 64, 16, 16, 64), (2, 32, 30, 30, 32), (3, 24, 21, 13, 24), (1, 4, 130, 126, 4),
                                   (3, 16, 20, 18, 32), (2, 16, 32, 34, 32)])
def test_winograd4_float32_rounding_on_realistic_magnitudes(shape):
    """ReLU'd unit-normal inputs and He-scaled weights, many channels (and a plane of more tile positions
    than one output-transform block, ``OUTPUT_RUN``): each pass within 2e-5 of the
    largest output (F(4x4, 3x3) measured 3-8e-6, GEMM and F(2x2, 3x3) 2-6e-7); float64 within 1e-12.
    The input gradient runs as the forward of dy where c_out <= c_in, as the adjoint of the forward where
    c_out > c_in and in the backward that computes both gradients in one pass (``conv2d_backward``)."""
    n, c, h, w, c_out = shape
    rng = np.random.default_rng(c)
    x = np.maximum(rng.standard_normal((n, c, h, w)), 0)
    weight = rng.standard_normal((c_out, c, 3, 3)) * np.sqrt(2 / (9 * c))
    dy = rng.standard_normal((n, c_out, h, w))
    with me.options(conv_algorithm="gemm"):
        reference = (kconv.conv2d_forward(x, weight, PAD1), kconv.conv2d_grad_input(dy, weight, (h, w), PAD1),
                     kconv.conv2d_grad_weight(x, dy, (3, 3), PAD1))
    for dtype, bound in ((np.float32, 2e-5), (np.float64, 1e-12)):
        xd, wd, dyd = (a.astype(dtype) for a in (x, weight, dy))
        with me.options(conv_algorithm="winograd4"):
            p = dataclasses.replace(kconv.make_plan(x.shape, weight.shape, PAD1), winograd_grad_weight=True)
            got = (kconv.conv2d_forward(xd, wd, PAD1, p), kconv.conv2d_grad_input(dyd, wd, (h, w), PAD1, p),
                   kconv.conv2d_grad_weight(xd, dyd, (3, 3), PAD1, p), *kconv.conv2d_backward(xd, dyd, wd, PAD1, p)[:2])
        names = ("forward", "input grad", "weight grad", "input grad (both)", "weight grad (both)")
        for pass_name, value, want in zip(names, got, reference + reference[1:]):
            assert value.dtype == dtype
            error = np.abs(value - want).max() / np.abs(want).max()
            assert error < bound, f"{pass_name} {np.dtype(dtype).name}: {error:.1e} of the largest value"


@pytest.mark.parametrize("n, c_in, c_out, h, w, padding", [(2, 3, 5, 8, 8, 1), (3, 4, 7, 9, 11, 1), (2, 2, 6, 13, 6, 0),
                                                          (1, 3, 4, 7, 5, 2), (2, 3, 4, 4, 4, 1), (1, 2, 3, 3, 3, 1),
                                                          (2, 1, 2, 17, 9, 3), (7, 5, 3, 10, 10, 1)])
@pytest.mark.parametrize("threads", [1, 2])
def test_adjoint_input_gradient_matches_the_forward_of_dy(n, c_in, c_out, h, w, padding, threads):
    """The input gradient as the adjoint of the forward (alone, and with the weight gradient in one pass)
    against the forward of dy with the flipped kernel, whatever the channels, paddings 0-3, odd sides and
    partial tiles; the one-pass weight gradient against the separate pass, bit for bit."""
    from minieye.kernels import conv_direct, conv_winograd_run as run
    rng = np.random.default_rng(n * h + w)
    x, weight = rng.standard_normal((n, c_in, h, w)), rng.standard_normal((c_out, c_in, 3, 3))
    dy = rng.standard_normal((n, c_out, h + 2 * padding - 2, w + 2 * padding - 2))
    with me.options(conv_algorithm="winograd4"):
        p = dataclasses.replace(plan(x.shape, weight.shape, Geometry((1, 1), (padding,) * 2, (1, 1), 1)), threads=threads)
    want = run.forward(dy, conv_direct.flip_transposed(weight, 1), (2 - padding,) * 2, p, np.zeros(c_in), np.empty_like(x))
    alone, both = run.grad_input4(dy, weight, (padding,) * 2, p, np.empty_like(x)), np.empty_like(x)
    dw = run.grads4(x, dy, weight, (padding,) * 2, p, both)
    for got in (alone, both):
        assert np.abs(got - want).max() <= 1e-13 * np.abs(want).max()
    np.testing.assert_array_equal(dw, run.grad_weight(x, dy, (padding,) * 2, dataclasses.replace(p, winograd_grad_weight=True)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n, c_in, c_out, h, w, padding", [(5, 3, 6, 11, 9, 1), (2, 4, 4, 32, 32, 1), (3, 2, 5, 8, 13, 0),
                                                          (3, 6, 4, 9, 7, 1)])
def test_backward_sums_the_bias_gradient_in_its_pass_over_dy(monkeypatch, dtype, n, c_in, c_out, h, w, padding):
    """Where F(4x4) computes the weight gradient, the bias gradient comes from that pass over dy (each image's
    plane sums, then added over the images in order), in one pass with the input gradient (the first three
    shapes) or not (the last; and without dx): dy summed over (0, 2, 3) (float64 to 1e-13 of the largest,
    float32 to 1e-6), bit-identical on 1, 2 and 3 threads and with one image per chunk, and the other two
    gradients as without it."""
    monkeypatch.setattr(kconv, "grad_bias", None)  # the separate sum over dy must not run
    rng = np.random.default_rng(h * w)
    x, weight = rng.standard_normal((n, c_in, h, w)).astype(dtype), rng.standard_normal((c_out, c_in, 3, 3)).astype(dtype)
    dy = rng.standard_normal((n, c_out, h + 2 * padding - 2, w + 2 * padding - 2)).astype(dtype) + 0.5
    geometry = Geometry((1, 1), (padding,) * 2, (1, 1), 1)
    with me.options(conv_algorithm="winograd4"):
        base = dataclasses.replace(plan(x.shape, weight.shape, geometry), winograd_grad_weight=True)
    results = [kconv.conv2d_backward(x, dy, weight, geometry, dataclasses.replace(base, threads=t, tile_bytes=b),
                                     need_db=True) for t, b in ((1, base.tile_bytes), (2, base.tile_bytes),
                                                                (3, base.tile_bytes), (2, 1))]
    want = dy.astype(np.float64).sum(axis=(0, 2, 3))
    db = results[0][2]
    assert db.dtype == dtype and db.shape == (c_out,)
    assert np.abs(db - want).max() <= (1e-13 if dtype == np.float64 else 1e-6) * np.abs(want).max()
    for other in results[1:]:
        np.testing.assert_array_equal(other[2], db)
    dx, dw, none = kconv.conv2d_backward(x, dy, weight, geometry, base, need_db=False)
    assert none is None
    np.testing.assert_array_equal(dx, results[0][0])
    np.testing.assert_array_equal(dw, results[0][1])
    no_dx, dw_alone, db_alone = kconv.conv2d_backward(x, dy, weight, geometry, base, need_dx=False, need_db=True)
    assert no_dx is None
    np.testing.assert_array_equal(db_alone, db)
    np.testing.assert_array_equal(dw_alone, kconv.conv2d_grad_weight(x, dy, (3, 3), geometry, base))


def test_weight_transform_is_reused_only_for_the_same_weights():
    """``transform_weight`` keeps the last U per weight shape: the same U object for equal bytes (a layer's
    backward after its forward), a new one, equal to the transform computed afresh, once w changes in place
    (an optimizer's step) or for the other algorithm's G; inside a ``scratch_scope`` (a run that bounds its
    memory: the restoration's networks) the Winograd passes keep none."""
    from minieye.kernels import conv_winograd, conv_winograd4, conv_winograd_run
    rng = np.random.default_rng(5)
    w = rng.standard_normal((6, 5, 3, 3)).astype(np.float32)
    first = conv_winograd.transform_weight(w, conv_winograd4.G)
    assert conv_winograd.transform_weight(w.copy(), conv_winograd4.G) is first
    w[2, 1, 0, 2] += 1.0
    changed = conv_winograd.transform_weight(w, conv_winograd4.G)
    conv_winograd._transforms.clear()
    np.testing.assert_array_equal(changed, conv_winograd.transform_weight(w, conv_winograd4.G))
    assert not np.array_equal(changed, first)
    assert conv_winograd.transform_weight(w, conv_winograd.G).shape == (16, 6, 5)
    conv_winograd._transforms.clear()
    x = rng.standard_normal((2, 5, 8, 8)).astype(np.float32)
    with me.options(conv_algorithm="winograd4"), kconv.scratch_scope():
        p = plan(x.shape, w.shape, PAD1)
        y = conv_winograd_run.forward(x, w, (1, 1), p, np.zeros(6, np.float32), np.empty((2, 6, 8, 8), np.float32))
    assert not conv_winograd._transforms
    np.testing.assert_allclose(y, kconv.conv2d_forward(x, w, PAD1, p), rtol=0, atol=1e-5 * np.abs(y).max())
    assert len(conv_winograd._transforms) == 1  # outside a scope: kept


def test_kept_weight_transforms_are_right_for_threads_with_different_weights_of_one_shape():
    """Several user threads (or Dask's) transform different weights of one shape at once: each gets its own
    weight's U, whichever the process-wide cache holds at the time."""
    import threading
    from minieye.kernels import conv_winograd, conv_winograd4
    rng = np.random.default_rng(6)
    weights = [rng.standard_normal((8, 4, 3, 3)).astype(np.float32) for _ in range(4)]
    conv_winograd._transforms.clear()
    expected = [conv_winograd.transform_weight(w, conv_winograd4.G, keep=False) for w in weights]
    wrong, start = [], threading.Barrier(len(weights))

    def run(i: int) -> None:
        start.wait()
        for _ in range(300):
            if not np.array_equal(conv_winograd.transform_weight(weights[i], conv_winograd4.G), expected[i]):
                wrong.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(weights))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conv_winograd._transforms.clear()
    assert not wrong


@pytest.mark.parametrize("padding", [0, 1])
def test_conv2d_layer_gradients_by_winograd4(padding):
    """The layer's backward (input and weight gradients) through F(4x4, 3x3) against central differences."""
    layer = me.layers.Conv2D(3, 4, 3, padding=padding, dtype="float64", seed=padding)
    x = np.random.default_rng(padding).standard_normal((2, 3, 7, 6))
    with me.options(conv_algorithm="winograd4", conv_gemm_parallel_min_work=0):
        assert kconv.make_plan(x.shape, layer.weight.value.shape, Geometry((1, 1), (padding,) * 2, (1, 1), 1)
                               ).algorithm is Algorithm.WINOGRAD4
        check_gradients(layer, x, rng=padding)


def test_winograd4_is_refused_where_it_does_not_apply():
    with me.options(conv_algorithm="winograd4"):
        assert plan((8, 32, 32, 32), (64, 32, 3, 3), PAD1).algorithm is Algorithm.WINOGRAD4
        with pytest.raises(ValueError, match="conv_algorithm='winograd4'.*3x3 kernel with stride 1"):
            plan((8, 32, 32, 32), (64, 32, 3, 3), Geometry((2, 2), (1, 1), (1, 1), 1))
        with pytest.raises(ValueError, match="3x3 kernel with stride 1"):
            plan((8, 32, 32, 32), (64, 32, 5, 5), PAD1)


@pytest.mark.parametrize("algorithm", ["winograd", "winograd4"])
def test_weight_transforms_run_with_blas_on_one_thread(monkeypatch, algorithm):
    """The weight transforms are NumPy products: on more than one OpenBLAS thread they wake
    OpenBLAS's workers, which then spin on the cores the threaded passes need."""
    from threadpoolctl import threadpool_info, threadpool_limits
    from minieye.kernels import conv_winograd
    seen = []

    def spy(original):
        def call(*args, **kwargs):
            seen.append(max((p["num_threads"] for p in threadpool_info() if p["internal_api"] == "openblas"),
                            default=1))
            return original(*args, **kwargs)
        return call

    monkeypatch.setattr(conv_winograd, "transform_weight", spy(conv_winograd.transform_weight))
    monkeypatch.setattr(conv_winograd, "grad_weight", spy(conv_winograd.grad_weight))
    x = np.ones((2, 4, 8, 8), np.float32)
    w = np.ones((4, 4, 3, 3), np.float32)
    with threadpool_limits(2), me.options(conv_algorithm=algorithm):
        p = plan(x.shape, w.shape, PAD1)
        y = kconv.conv2d_forward(x, w, PAD1, p)
        kconv.conv2d_grad_input(y, w, x.shape[2:], PAD1, p)
        kconv.conv2d_grad_weight(x, y, (3, 3), PAD1, p)
    assert len(seen) >= 2 and set(seen) == {1}
