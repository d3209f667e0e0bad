"""1-D and 3-D pooling (F.max_pool1d/3d, F.max_unpool1d/3d, F.avg_pool1d/3d and their layers)
against the naive N-d loops of tests/naive_pool.py, the 2-D functions they specialise,
their errors, and the pool/unpool pairing in networks."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minieye as me
import naive_pool as naive
from minieye import functional as F, layers
from minieye.kernels import pool as K
from minieye.testing import check_gradients

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}
seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(DTYPES)
FN = {nd: dict(max=getattr(F, f"max_pool{nd}d"), unpool=getattr(F, f"max_unpool{nd}d"),
               gather=getattr(F, f"max_unpool{nd}d_backward"), avg=getattr(F, f"avg_pool{nd}d"),
               avg_back=getattr(F, f"avg_pool{nd}d_backward")) for nd in (1, 2, 3)}


@st.composite
def nd_problems(draw, nd: int):
    """(x_shape, kernel, stride, padding) with nd spatial dims, padding <= kernel // 2, the kernel fitting."""
    max_side, max_k = (12, 5) if nd == 1 else (5, 3)
    k = tuple(draw(st.integers(1, max_k)) for _ in range(nd))
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    spatial = tuple(draw(st.integers(max(1, ki - 2 * pi), max_side)) for ki, pi in zip(k, p))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 2)), *spatial), k, s, p


def values(shape, kind: str, dtype, rng: np.random.Generator) -> np.ndarray:
    """normal; coarse (0, 1, 2: ties everywhere); special (coarse with NaN, -inf, +inf)."""
    x = (rng.standard_normal(shape) if kind == "normal" else rng.integers(0, 3, shape)).astype(dtype)
    if kind == "special":
        u = rng.random(shape)
        x = np.where(u < 0.1, np.nan, np.where(u < 0.2, -np.inf, np.where(u < 0.25, np.inf, x))).astype(dtype)
    return x


@pytest.mark.parametrize("nd", [1, 3])
@given(data=st.data(), seed=seeds, dtype=dtypes, kind=st.sampled_from(["normal", "coarse", "special"]))
def test_max_pool_matches_naive(nd, data, seed, dtype, kind):
    shape, k, s, p = data.draw(nd_problems(nd))
    rng = np.random.default_rng(seed)
    x = values(shape, kind, dtype, rng)
    y, switches = FN[nd]["max"](x, k, s, p)
    y_ref, s_ref = naive.max_pool(x.astype(np.float64), k, s, p)
    assert y.dtype == dtype and switches.dtype == np.int64
    np.testing.assert_array_equal(switches, s_ref)  # ties: first maximum; NaN: the last one
    np.testing.assert_array_equal(y, y_ref.astype(dtype))
    # backward = unpool of dy at the switches; the unpool's backward gathers at them
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = FN[nd]["unpool"](dy, switches, shape[2:])
    assert dx.shape == shape and dx.dtype == dtype
    np.testing.assert_allclose(dx, naive.unpool(dy.astype(np.float64), switches, shape[2:]), **TOL[dtype])
    np.testing.assert_array_equal(FN[nd]["gather"](x, switches), y)


@pytest.mark.parametrize("nd", [1, 3])
@given(data=st.data(), seed=seeds, dtype=dtypes)
def test_unpool_is_adjoint_of_gather(nd, data, seed, dtype):
    """<unpool(y, s), x> == <y, gather(x, s)> for arbitrary switches, repeated ones included."""
    spatial = tuple(data.draw(st.integers(1, 5)) for _ in range(nd))
    pooled = tuple(data.draw(st.integers(1, 4)) for _ in range(nd))
    rng = np.random.default_rng(seed)
    switches = rng.integers(0, int(np.prod(spatial)), (2, 3, *pooled))
    y = rng.standard_normal(switches.shape).astype(dtype)
    x = rng.standard_normal((2, 3, *spatial)).astype(dtype)
    up, down = FN[nd]["unpool"](y, switches, spatial), FN[nd]["gather"](x, switches)
    np.testing.assert_allclose(up, naive.unpool(y.astype(np.float64), switches, spatial), **TOL[dtype])
    np.testing.assert_array_equal(down, naive.gather(x.astype(np.float64), switches).astype(dtype))
    scale = float(np.linalg.norm(y.astype(np.float64)) * np.linalg.norm(x.astype(np.float64)))
    assert abs(float(np.vdot(up, x)) - float(np.vdot(y, down))) <= (1e-5 if dtype == np.float32 else 1e-13) * scale


@pytest.mark.parametrize("nd", [1, 3])
@given(data=st.data(), seed=seeds, dtype=dtypes, count_include_pad=st.booleans())
def test_avg_pool_matches_naive(nd, data, seed, dtype, count_include_pad):
    shape, k, s, p = data.draw(nd_problems(nd))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    y = FN[nd]["avg"](x, k, s, p, count_include_pad=count_include_pad)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, naive.avg_pool(x.astype(np.float64), k, s, p, count_include_pad), **TOL[dtype])
    # backward: the transpose of the pooling matrix, volume by volume
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = FN[nd]["avg_back"](dy, shape[2:], k, s, p, count_include_pad)
    a = naive.avg_pool_matrix(shape[2:], k, s, p, count_include_pad)
    dx_ref = (dy.astype(np.float64).reshape(*shape[:2], -1) @ a).reshape(shape)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, dx_ref, **TOL[dtype])


@given(data=st.data(), seed=seeds)
def test_lower_dims_are_the_higher_ones_with_unit_axes(data, seed):
    """1-D is 2-D on (N, C, 1, L) and 2-D is 3-D on (N, C, 1, H, W): values and switches alike."""
    shape, k, s, p = data.draw(nd_problems(1))
    x = values(shape, "coarse", np.float64, np.random.default_rng(seed))
    y, switches = F.max_pool1d(x, k, s, p)
    y2, switches2 = F.max_pool2d(x[:, :, None], (1, *k), (1, *s), (0, *p))
    y3, switches3 = F.max_pool3d(x[:, :, None, None], (1, 1, *k), (1, 1, *s), (0, 0, *p))
    for other, other_switches in ((y2, switches2), (y3, switches3)):
        np.testing.assert_array_equal(other.reshape(y.shape), y)
        np.testing.assert_array_equal(other_switches.reshape(y.shape), switches)
    np.testing.assert_array_equal(F.avg_pool3d(x[:, :, None, None], (1, 1, *k), (1, 1, *s), (0, 0, *p)),
                                  F.avg_pool1d(x, k, s, p)[:, :, None, None])


def test_parallel_drivers_match_serial_bodies_in_3d():
    """3-D units are (volume, depth slice); overlapping depth windows (stride 1 < kernel 3) in the
    average pool's backward must not race: it gathers per input slice."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 7, 6, 5))
    geometry = ((3, 2, 3), (1, 2, 2), (1, 1, 1))
    runs = []
    for threshold in (1 << 62, 0):
        with me.options(pool_parallel_min_work=threshold):
            y, s = K.max_pool_forward(x, *geometry)
            avg = K.avg_pool_forward(x, *geometry, False)
            runs.append([y, s, avg, K.avg_pool_backward(np.ones_like(avg) + avg, x.shape[2:], *geometry, True)])
    for serial, parallel in zip(*runs):
        np.testing.assert_allclose(parallel, serial, rtol=1e-13, atol=1e-13)


def test_a_single_volume_splits_into_depth_slices_for_threads():
    """One volume (N = C = 1) still has d_out units of parallel work."""
    x = np.random.default_rng(6).standard_normal((1, 1, 40, 40, 40)).astype(np.float32)
    assert K._volumes(F.max_pool3d(x, 2)[0]).shape[:2] == (1, 20)


def test_ties_nan_and_padding_in_3d():
    x = np.ones((1, 1, 2, 2, 2))
    _, switches = F.max_pool3d(x, 2)
    assert switches.item() == 0  # all equal: the first cell
    x[0, 0, 1, 0, 1] = np.nan
    y, switches = F.max_pool3d(x, 2)
    assert np.isnan(y.item()) and switches.item() == (1 * 2 + 0) * 2 + 1
    y, switches = F.max_pool3d(-np.arange(1.0, 9.0).reshape(1, 1, 2, 2, 2), 3, stride=3, padding=1)
    assert y.item() == -1.0 and switches.item() == 0  # -inf padding, not zeros


def test_avg_pool_1d_divisor_modes():
    x = np.ones((1, 1, 5))
    np.testing.assert_allclose(F.avg_pool1d(x, 3, 1, 1)[0, 0], [2 / 3, 1, 1, 1, 2 / 3])
    np.testing.assert_allclose(F.avg_pool1d(x, 3, 1, 1, count_include_pad=False)[0, 0], 1.0)


# -- errors -------------------------------------------------------------------------------------
X3, X5 = np.zeros((2, 3, 5)), np.zeros((2, 3, 4, 5, 5))


@pytest.mark.parametrize("call, message", [
    (lambda: F.max_pool1d(np.zeros((2, 3, 5, 5)), 2),
     r"max_pool1d: expected x with 3 dimensions \(N, C, L\); got x.shape == \(2, 3, 5, 5\)"),
    (lambda: F.max_pool3d(np.zeros((2, 3, 5, 5)), 2), r"max_pool3d: expected x with 5 dimensions \(N, C, D, H, W\)"),
    (lambda: F.avg_pool1d(X3, 6), r"avg_pool1d: expected a kernel \(6,\) no larger than the padded input \(5,\)"),
    (lambda: F.max_pool3d(X5, (5, 2, 2)), r"a kernel \(5, 2, 2\) no larger than the padded input \(4, 5, 5\)"),
    (lambda: F.max_pool3d(X5, (2, 2)), r"kernel_size an int >= 1 or a \(d, h, w\) triple of them; got kernel_size=\(2, 2\)"),
    (lambda: F.max_pool1d(X3, (2, 2)), r"kernel_size an int >= 1 or an \(l,\) tuple of them"),
    (lambda: F.avg_pool3d(X5, 3, padding=(0, 2, 0)), r"padding at most half the kernel size \(kernel_size=\(3, 3, 3\)\); "
                                                     r"got padding=\(0, 2, 0\)"),
    (lambda: F.max_pool3d(X5, 2, stride=(1, 0, 1)), r"stride an int >= 1"),
    (lambda: F.max_pool1d(np.zeros((1, 1, 0)), 1), r"x with non-empty L"),
    (lambda: F.max_pool3d(np.zeros((1, 1, 2, 0, 2)), 1), r"x with non-empty D, H and W"),
    (lambda: F.max_unpool3d(np.zeros((1, 1, 2, 2, 2)), np.full((1, 1, 2, 2, 2), 64), (4, 4, 4)),
     r"max_unpool3d: expected switches in \[0, 64\) for output_size \(4, 4, 4\); got values in \[64, 64\]"
     r"\. Pass the input size of the max_pool3d"),
    (lambda: F.max_unpool1d(np.zeros((1, 1, 2)), np.zeros((1, 1, 3), int), 4),
     r"switches of the pooled values' shape \(1, 1, 2\); got switches.shape == \(1, 1, 3\)"),
    (lambda: F.max_unpool1d(np.zeros((1, 1, 2)), np.zeros((1, 1, 2)), 4), r"integer switches \(as returned by max_pool1d\)"),
    (lambda: F.max_unpool3d(np.zeros((1, 1, 2, 2, 2)), np.zeros((1, 1, 2, 2, 2), int), (2, 1, 4, 4, 4)),
     r"output_size \(N, C\) == \(1, 1\)"),
    (lambda: F.max_unpool3d_backward(np.zeros((1, 1, 4, 4, 4)), np.zeros((1, 1, 2, 2), int)),
     r"switches \(N, C, D, H, W\) with \(N, C\) == \(1, 1\); got switches.shape == \(1, 1, 2, 2\)"),
    (lambda: F.avg_pool3d_backward(np.zeros((1, 1, 2, 2, 3)), (4, 4, 4), 2), r"dy of shape \(1, 1, 2, 2, 2\)"),
    (lambda: F.avg_pool1d_backward(np.zeros((1, 1, 2, 2)), 4, 2), r"dy with 3 dimensions \(N, C, L\)"),
])
def test_functional_errors(call, message):
    with pytest.raises(me.ShapeError, match=message):
        call()


@pytest.mark.parametrize("build, message", [
    (lambda: layers.MaxPool3D((2, 2), name="p"), r"MaxPool3D 'p': expected kernel_size an int >= 1 or a \(d, h, w\)"),
    (lambda: layers.AvgPool1D(3, padding=2), r"AvgPool1D: expected padding at most half"),
    (lambda: layers.MaxUnpool3D(layers.MaxPool2D(2), name="u"),
     r"MaxUnpool3D 'u': expected pool: the MaxPool3D layer whose switches to use.*max_unpool3d"),
    (lambda: layers.MaxUnpool1D(None), r"MaxUnpool1D: expected pool: the MaxPool1D layer"),
])
def test_layer_configuration_errors(build, message):
    with pytest.raises(me.ShapeError, match=message):
        build()


def test_layer_forward_errors_name_the_layer():
    with pytest.raises(me.ShapeError, match=r"MaxPool1D\(k=4, s=4\) 'enc' forward: expected a kernel \(4,\)"):
        layers.MaxPool1D(4, name="enc")(np.zeros((1, 1, 3)))
    with pytest.raises(me.ShapeError, match=r"AvgPool3D\(k=1x2x2, s=1x2x2\) forward: expected x with 5 dimensions"):
        layers.AvgPool3D((1, 2, 2))(np.zeros((1, 1, 4, 4)))
    with pytest.raises(me.ShapeError, match=r"MaxUnpool3D\(of MaxPool3D\(k=2, s=2\)\) forward: expected switches "
                                            r"recorded by its MaxPool3D.*functional.max_unpool3d"):
        layers.MaxUnpool3D(layers.MaxPool3D(2))(np.zeros((1, 1, 2, 2, 2)))


# -- layers: configuration, dtypes, pairing ---------------------------------------------------------
@pytest.mark.parametrize("layer, config, text", [
    (layers.MaxPool1D(3, stride=2, padding=1), {"kernel_size": 3, "stride": 2, "padding": 1}, "MaxPool1D(k=3, s=2, p=1)"),
    (layers.MaxPool3D((1, 2, 2)), {"kernel_size": [1, 2, 2], "stride": [1, 2, 2], "padding": 0},
     "MaxPool3D(k=1x2x2, s=1x2x2)"),
    (layers.AvgPool3D(3, padding=(0, 1, 1), count_include_pad=False),
     {"kernel_size": 3, "stride": 3, "padding": [0, 1, 1], "count_include_pad": False},
     "AvgPool3D(k=3, s=3, p=0x1x1, exclude pad)"),
    (layers.AvgPool1D(2), {"kernel_size": 2, "stride": 2, "padding": 0, "count_include_pad": True}, "AvgPool1D(k=2, s=2)"),
])
def test_config_and_describe(layer, config, text):
    assert layer.config() == config
    twin = type(layer)(**layer.config())
    assert twin.describe() == layer.describe() == text
    assert twin.geometry == layer.geometry


@pytest.mark.parametrize("layer, shape", [(layers.MaxPool1D(2), (1, 2, 6)), (layers.AvgPool1D(2), (1, 2, 6)),
                                          (layers.MaxPool3D(2), (1, 2, 4, 4, 4)), (layers.AvgPool3D(2), (1, 2, 4, 4, 4))])
def test_layers_keep_the_input_dtype(layer, shape):
    for dtype in (np.float32, np.float64):
        y, backward = layer.forward(np.ones(shape, dtype=dtype))
        assert y.dtype == dtype
        assert backward(np.ones(y.shape, dtype=np.float64), me.DeltaSet()).dtype == dtype


@pytest.mark.parametrize("nd", [1, 3])
def test_pairing_in_a_sequential(nd):
    """An encoder-decoder with two pool/unpool pairs: values as with explicit switches, gradients
    by finite differences, and two interleaved batches of different sizes."""
    pool_cls, unpool_cls = getattr(layers, f"MaxPool{nd}D"), getattr(layers, f"MaxUnpool{nd}D")
    p1, p2 = pool_cls(2, name="p1"), pool_cls(2, stride=1, name="p2")  # p2 overlaps
    net = me.Sequential(p1, layers.ReLU(), p2, unpool_cls(p2), layers.AvgPool1D(1) if nd == 1 else layers.AvgPool3D(1),
                        unpool_cls(p1))
    rng = np.random.default_rng(nd)
    shape_a, shape_b = ((2, 2, 8), (3, 1, 12)) if nd == 1 else ((2, 2, 4, 4, 6), (1, 3, 6, 4, 4))
    xa, xb = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    pool, unpool = FN[nd]["max"], FN[nd]["unpool"]
    a, s1 = pool(xa, 2)
    b, s2 = pool(np.maximum(a, 0), 2, 1)
    expected = unpool(unpool(b, s2, a.shape[2:]), s1, xa.shape[2:])
    ya, back_a = net.forward(xa)
    yb, back_b = net.forward(xb)
    np.testing.assert_array_equal(ya, expected)
    dxb, dxa = back_b(np.ones_like(yb), me.DeltaSet()), back_a(np.ones_like(ya), me.DeltaSet())
    assert dxa.shape == shape_a and dxb.shape == shape_b
    np.testing.assert_array_equal(dxa, net.forward(xa)[1](np.ones_like(ya), me.DeltaSet()))
    check_gradients(net, xa, rng=np.random.default_rng(10 + nd), directions=3)


def test_unpool_of_one_dimension_refuses_another_and_pairs_survive_saving(tmp_path):
    pytest.importorskip("minieye.io")
    from minieye.testing.roundtrip import check_roundtrip

    pool = layers.MaxPool3D((1, 2, 2), name="p")
    net = me.Sequential(pool, layers.MaxUnpool3D(pool, name="u"))
    x = np.random.default_rng(12).standard_normal((2, 1, 3, 4, 4))
    loaded = check_roundtrip(net, x, path=tmp_path / "pair3d.minieye")
    assert loaded[1].pool is loaded[0] and isinstance(loaded[0], layers.MaxPool3D)
    with pytest.raises(me.ShapeError, match=r"x with 5 dimensions \(N, C, D, H, W\)"):
        me.Sequential(pool, layers.Flatten() if hasattr(layers, "Flatten") else layers.Reshape((-1,)),
                      layers.MaxUnpool3D(pool))(x)


@pytest.mark.parametrize("threshold", [1 << 62, 0])
def test_outputs_that_start_at_zero_are_zeroed_by_the_kernels(threshold):
    """The scatter takes its output from np.empty and zeroes it plane by plane: cells that no
    switch reaches (stride > kernel) must still be 0, even where the allocator hands back memory
    full of NaN (freed just before, of the same size); the average pool's backward likewise."""
    rng = np.random.default_rng(11)
    spatial, k, s = (7, 6, 9), (1, 2, 2), (3, 3, 4)  # gaps between windows along every axis
    x = rng.standard_normal((2, 3, *spatial))
    y, switches = F.max_pool3d(x, k, s)
    dy = rng.standard_normal(y.shape)
    with me.options(pool_parallel_min_work=threshold, unpool_parallel_min_cells=threshold):
        for run in range(2):
            garbage = np.full(x.shape, np.nan)  # likely the block the next np.empty of x's size returns
            del garbage
            dx = F.max_unpool3d(dy, switches, spatial) if run == 0 else F.avg_pool3d_backward(dy, spatial, k, s)
            reference = (naive.unpool(dy, switches, spatial) if run == 0 else
                         (naive.avg_pool_matrix(spatial, k, s, (0, 0, 0), True).T
                          @ dy.reshape(6, -1).T).T.reshape(x.shape))
            np.testing.assert_allclose(dx, reference, rtol=1e-13, atol=1e-13)
