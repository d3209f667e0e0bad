"""PyTorch conformance of pooling, unpooling and upsampling: forward values, switches and
gradients (skipped when torch is not installed; ``pip install torch==2.13.0``)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

import minieye as me  # noqa: E402
from minieye import functional as F, layers  # noqa: E402

DTYPES = [np.float32, np.float64]
# float32: a bilinear gradient entry sums up to ~16 products of unit-scale values in another order
# than PyTorch, so its rounding reaches ~2e-6 absolute; a small entry needs that much absolute slack
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
seeds = st.integers(0, 2**32 - 1)


@st.composite
def pool_problems(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 10))
    w = draw(st.integers(max(1, kw - 2 * pw), 10))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w), (kh, kw), stride, (ph, pw)


def grad_of(fn, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y, dx) of a torch function at x for output gradient dy."""
    t = torch.tensor(x, requires_grad=True)
    y = fn(t)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), t.grad.numpy()


def layer_grad(layer, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y, dx) of a minieye layer at x for output gradient dy (reshaped to y's shape)."""
    y, backward = layer.forward(x)
    return y, backward(dy.reshape(y.shape), me.DeltaSet())


@given(pool_problems(), seeds, st.sampled_from(DTYPES), st.booleans())
def test_max_pool_and_unpool_match_torch(problem, seed, dtype, coarse):
    shape, k, s, p = problem
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 3, shape) if coarse else rng.standard_normal(shape)).astype(dtype)
    if coarse:  # ties, and the NaN and infinity rules
        u = rng.random(shape)
        x = np.where(u < 0.05, np.nan, np.where(u < 0.1, -np.inf, x)).astype(dtype)
    y, switches = F.max_pool2d(x, k, s, p)
    t_y, t_idx = TF.max_pool2d(torch.tensor(x), k, s, p, return_indices=True)
    np.testing.assert_array_equal(y, t_y.numpy())
    np.testing.assert_array_equal(switches, t_idx.numpy())  # ties included: first max wins in both
    # gradient of max-pool
    dy = rng.standard_normal(y.shape).astype(dtype)
    _, t_dx = grad_of(lambda t: TF.max_pool2d(t, k, s, p), x, dy)
    np.testing.assert_allclose(F.max_unpool2d(dy, switches, shape[2:]), t_dx, **TOL[dtype])
    # unpool and its gradient; PyTorch writes one of several equal switches, so compare only
    # where switches are distinct (always true for non-overlapping windows)
    flat = switches.reshape(shape[0] * shape[1], -1)
    if all(len(np.unique(row)) == row.size for row in flat):
        up = F.max_unpool2d(y, switches, shape[2:])
        t_up = TF.max_unpool2d(torch.tensor(y), torch.tensor(switches), k, s, p, output_size=shape[2:])
        np.testing.assert_array_equal(up, t_up.numpy())
        dz = rng.standard_normal(shape).astype(dtype)
        t_yy = torch.tensor(y, requires_grad=True)
        TF.max_unpool2d(t_yy, torch.tensor(switches), k, s, p, output_size=shape[2:]).backward(torch.tensor(dz))
        np.testing.assert_array_equal(F.max_unpool2d_backward(dz, switches), t_yy.grad.numpy())


@given(pool_problems(), seeds, st.sampled_from(DTYPES), st.booleans())
def test_avg_pool_matches_torch(problem, seed, dtype, count_include_pad):
    shape, k, s, p = problem
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    y, backward = layers.AvgPool2D(k, s, p, count_include_pad=count_include_pad).forward(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = backward(dy, me.DeltaSet())
    t_y, t_dx = grad_of(lambda t: TF.avg_pool2d(t, k, s, p, count_include_pad=count_include_pad), x, dy)
    np.testing.assert_allclose(y, t_y, **TOL[dtype])
    np.testing.assert_allclose(dx, t_dx, **TOL[dtype])


@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 8), st.integers(1, 8), st.integers(1, 4),
       st.integers(1, 4), seeds, st.sampled_from(DTYPES), st.sampled_from(["nearest", "bilinear"]))
def test_upsample_matches_torch(n, c, h, w, sh, sw, seed, dtype, mode):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    dy = rng.standard_normal((n, c, h * sh, w * sw)).astype(dtype)
    y, dx = layer_grad(layers.Upsample((sh, sw), mode=mode), x, dy)
    options = {} if mode == "nearest" else {"align_corners": False}
    t_y, t_dx = grad_of(lambda t: TF.interpolate(t, scale_factor=(sh, sw), mode=mode, **options), x, dy)
    np.testing.assert_allclose(y, t_y, **TOL[dtype])
    np.testing.assert_allclose(dx, t_dx, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_avg_pool_matches_torch_adaptive(dtype, keepdims):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5, 7)).astype(dtype)
    dy = rng.standard_normal((3, 4, 1, 1)).astype(dtype)
    y, dx = layer_grad(layers.GlobalAvgPool2D(keepdims=keepdims), x, dy)
    t_y, t_dx = grad_of(lambda t: TF.adaptive_avg_pool2d(t, 1), x, dy)
    np.testing.assert_allclose(y.reshape(t_y.shape), t_y, **TOL[dtype])
    np.testing.assert_allclose(dx, t_dx, **TOL[dtype])


def test_pool_unpool_pair_matches_torch_end_to_end():
    """A MaxPool2D/MaxUnpool2D pair in a Sequential: values and input gradient as in PyTorch."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 8, 6))
    pool = layers.MaxPool2D(2)
    net = me.Sequential(pool, layers.MaxUnpool2D(pool))
    dz = rng.standard_normal(x.shape)
    z, backward = net.forward(x)
    dx = backward(dz, me.DeltaSet())

    def torch_net(t):
        pooled, idx = TF.max_pool2d(t, 2, return_indices=True)
        return TF.max_unpool2d(pooled, idx, 2, output_size=x.shape[2:])

    t_z, t_dx = grad_of(torch_net, x, dz)
    np.testing.assert_array_equal(z, t_z)
    np.testing.assert_array_equal(dx, t_dx)
