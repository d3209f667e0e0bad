"""``out=`` of the kernels' entry points (conv2d_forward, conv2d_grad_input, conv_nd, relu): the result
lands in out, and an out of the wrong shape, dtype or layout, or overlapping an operand, is refused by name."""
import numpy as np
import pytest

import minieye as me
from minieye.checks import ArgumentTypeError
from minieye.functional import conv as fconv
from minieye.functional.activation import relu
from minieye.kernels import conv_nd
from minieye.kernels.conv import conv2d_forward, conv2d_grad_input

RNG = np.random.default_rng(0)
X, W = RNG.standard_normal((2, 3, 10, 12)), RNG.standard_normal((3, 3, 3, 3))
SAME = fconv.geometry_of((1, 1), 1, (1, 1), 1, (3, 3), "test")


@pytest.mark.parametrize("algorithm", ["gemm", "direct", "winograd4", "taps", "small"])
@pytest.mark.parametrize("entry", ["forward", "grad_input"])
def test_conv_out_gets_the_result_and_bad_outs_are_refused(algorithm, entry):
    def run(out):
        with me.options(conv_algorithm=algorithm):
            if entry == "forward":
                return conv2d_forward(X, W, SAME, out=out)
            return conv2d_grad_input(X, W, X.shape[2:], SAME, out=out)

    expected = run(None)
    out = np.full_like(expected, np.nan)
    assert run(out) is out
    np.testing.assert_array_equal(out, expected)
    name = "conv2d_forward" if entry == "forward" else "conv2d_grad_input"
    with pytest.raises(ValueError, match=f"{name}: expected out of shape \\(2, 3, 10, 12\\)"):
        run(np.empty((2, 3, 8, 10)))
    with pytest.raises(ArgumentTypeError, match="dtype float64"):
        run(np.empty(expected.shape, np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        run(np.empty(expected.shape[::-1]).T)
    with pytest.raises(ValueError, match="shares no memory"):
        run(X)  # the input itself: the kernels read it while writing out


def test_forward_and_grad_weight_checks_its_out_too():
    from minieye.kernels.conv import conv2d_forward_and_grad_weight
    out = np.empty((2, 3, 10, 12))
    y, dw = conv2d_forward_and_grad_weight(X, W, X, SAME, out=out)
    assert y is out
    np.testing.assert_allclose(out, conv2d_forward(X, W, SAME), rtol=1e-12, atol=1e-12)  # GEMM here
    with pytest.raises(ValueError, match="conv2d_forward_and_grad_weight: expected an out that shares no memory"):
        conv2d_forward_and_grad_weight(X, W, None, SAME, out=X)


@pytest.mark.parametrize("shapes", [((1, 2, 9), (3, 2, 3)), ((1, 2, 5, 6, 7), (3, 2, 3, 3, 3))], ids=["1d", "3d"])
def test_conv_nd_writes_out_in_every_dimension(shapes):
    x, w = RNG.standard_normal(shapes[0]), RNG.standard_normal(shapes[1])
    nd = x.ndim - 2
    geometry = fconv.geometry_of((1,) * nd, 1, (1,) * nd, 1, w.shape[2:], "test")
    y = conv_nd.forward(x, w, geometry)
    out = np.zeros_like(y)
    assert conv_nd.forward(x, w, geometry, out=out) is out  # was ignored: a zero array came back unfilled
    np.testing.assert_array_equal(out, y)
    dx = conv_nd.grad_input(y, w, x.shape[2:], geometry)
    into = np.zeros_like(dx)
    assert conv_nd.grad_input(y, w, x.shape[2:], geometry, out=into) is into
    np.testing.assert_array_equal(into, dx)
    with pytest.raises(ValueError, match="conv_nd.forward: expected out of shape"):
        conv_nd.forward(x, w, geometry, out=np.zeros(y.shape[:-1]))


def test_relu_out_in_place_or_separate_but_never_a_strided_or_overlapping_one():
    x = RNG.standard_normal((4, 6))
    expected = np.maximum(x, 0)
    np.testing.assert_array_equal(relu(x, out=np.empty_like(x)), expected)
    with pytest.raises(ValueError, match="relu: expected a C-contiguous out"):
        relu(x, out=np.empty((6, 4)).T)  # the result went into a reshaped copy: out kept its zeros
    with pytest.raises(ValueError, match="relu: expected out of shape \\(4, 6\\)"):
        relu(x, out=np.empty((3, 8)))
    with pytest.raises(ArgumentTypeError, match="relu"):
        relu(x, out=np.empty((4, 6), np.float32))
    flat = RNG.standard_normal(10)
    with pytest.raises(ValueError, match="shares no memory"):
        relu(flat[:-1], out=flat[1:])  # shifted by one element
    assert relu(x, out=x) is x
    np.testing.assert_array_equal(x, expected)


def _scratch_bytes():
    from minieye.kernels import conv_layout
    return {key: b.nbytes for key, b in getattr(conv_layout._local, "buffers", {}).items()}


def test_scratch_scope_reuses_inside_and_frees_on_leaving():
    from minieye.kernels.conv_layout import scratch, scratch_scope
    kept = scratch("test_outer", (4,), np.float64)
    with scratch_scope():
        first = scratch("test_inner", (1000,), np.float64)
        with scratch_scope():  # nested: the outermost frees
            assert scratch("test_inner", (10,), np.float64).base is first.base
        assert scratch("test_inner", (1000,), np.float64).base is first.base
        assert scratch("test_outer", (2,), np.float64).base is kept.base
    assert "test_inner" not in {name for name, _ in _scratch_bytes()}
    assert scratch("test_outer", (4,), np.float64).base is kept.base


@pytest.mark.parametrize("prior", ["learned", "denoise"])
def test_restorations_leave_no_convolution_scratch_behind(prior):
    """The learned prior's network kept ~280 MB of per-thread scratch alive after a 512x512 deconvolve."""
    from minieye.restore import psf
    before = _scratch_bytes()
    image = np.random.default_rng(1).random((40, 44)).astype(np.float32)
    if prior == "denoise":
        me.restore.denoise(image, noise_sigma=0.02)
    else:
        me.restore.deconvolve(image, psf.gaussian(1.0), prior=prior, iterations=1, noise_sigma=0.01)
    assert _scratch_bytes() == before


@pytest.mark.parametrize("entry", ["forward", "grad_input"])
def test_strided_direct_writes_out(entry):
    """The direct kernels' strided (not "wide") path writes into out as well."""
    strided = fconv.geometry_of((2, 2), 1, (1, 1), 1, (3, 3), "test")
    with me.options(conv_algorithm="direct"):
        if entry == "forward":
            expected = conv2d_forward(X, W, strided)
            out = np.full_like(expected, np.nan)
            assert conv2d_forward(X, W, strided, out=out) is out
        else:
            dy = RNG.standard_normal((2, 3, 5, 6))
            expected = conv2d_grad_input(dy, W, X.shape[2:], strided)
            out = np.full_like(expected, np.nan)
            assert conv2d_grad_input(dy, W, X.shape[2:], strided, out=out) is out
    np.testing.assert_array_equal(out, expected)
