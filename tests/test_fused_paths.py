"""The fused fast paths against the general code they replace: ReLU and GELU kernels,
max-pool's 2x2 kernel, Adam's one-pass update (float64 gradient checks of the layers run
in the layer table, tests/cases/core_layers.py)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import naive_pool as naive
from minieye import DeltaSet, functional as F, layers as L, train
from minieye.train.orient import Iterate


def _special(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    u = rng.random(x.shape)
    return np.where(u < 0.1, np.nan, np.where(u < 0.2, -np.inf, np.where(u < 0.25, np.inf, x))).astype(x.dtype)


@settings(deadline=None, max_examples=30)
@given(st.integers(1, 2), st.integers(1, 3), st.integers(2, 9), st.integers(2, 9), st.integers(0, 2**32 - 1),
       st.sampled_from([np.float32, np.float64]), st.sampled_from(["normal", "coarse", "special"]))
def test_max_pool_2x2_matches_naive(n, c, h, w, seed, dtype, values):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c, h, w)) if values == "normal" else rng.integers(0, 3, (n, c, h, w))).astype(dtype)
    if values == "special":
        x = _special(x, rng)
    y, switches = F.max_pool2d(x, 2)  # odd sides leave a last row or column out, as PyTorch
    y_ref, s_ref = naive.max_pool(x.astype(np.float64), (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(switches, s_ref)
    np.testing.assert_array_equal(y, y_ref.astype(dtype))


def test_relu_keeps_nan_and_passes_nan_gradients_only_where_open():
    x = np.array([-1.0, 0.0, 2.0, np.nan, -np.inf, np.inf], dtype=np.float32)
    y, backward = L.ReLU().forward(x)
    np.testing.assert_array_equal(y, [0.0, 0.0, 2.0, np.nan, 0.0, np.inf])
    dx = backward(np.array([5.0, 5.0, 5.0, 5.0, np.nan, 1.0], dtype=np.float32), DeltaSet())
    np.testing.assert_array_equal(dx, [0.0, 0.0, 5.0, 0.0, np.nan, 1.0])  # NaN * 0 stays NaN
    assert y.dtype == dx.dtype == np.float32


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 3e-6)])
def test_gelu_matches_the_normal_cdf_formula(dtype, tol):
    from scipy.special import ndtr
    x = np.concatenate([np.linspace(-30, 30, 20001), [-np.inf, np.inf, np.nan]]).astype(dtype)
    y, backward = L.GELU().forward(x)
    dx = backward(np.ones_like(x), DeltaSet())
    x64 = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        y_ref = x64 * ndtr(x64)
        dx_ref = ndtr(x64) + x64 * np.exp(-0.5 * x64 * x64) / np.sqrt(2 * np.pi)
    assert y.dtype == dx.dtype == dtype
    finite = np.isfinite(x64)
    # absolute error relative to max(1, |x|): float32 computes Phi as (1 + erf) / 2, as PyTorch
    scale = np.maximum(1.0, np.abs(x64[finite]))
    assert np.max(np.abs(y[finite] - y_ref[finite]) / scale) < tol
    assert np.max(np.abs(dx[finite] - dx_ref[finite])) < tol
    np.testing.assert_array_equal(y[~finite], [np.nan, np.inf, np.nan])  # -inf * Phi(-inf) = -inf * 0
    if dtype == np.float64:  # the tail keeps its relative accuracy: GELU(-30) ~ -30 * 4.9e-198
        assert abs(y[0] / y_ref[0] - 1) < 1e-12


def test_adam_direction_matches_the_numpy_formula_and_keeps_its_moments():
    rng = np.random.default_rng(0)
    adam, grads = train.Adam(beta1=0.8, beta2=0.99, eps=1e-6), rng.standard_normal((4, 50))
    m = v = np.zeros(50)
    for count, g in enumerate(grads, start=1):
        d = adam.direction(Iterate(np.zeros(50), 0.0, g)).direction
        m, v = 0.8 * m + 0.2 * g, 0.99 * v + 0.01 * g * g
        expected = -(m / (1 - 0.8 ** count)) / (np.sqrt(v / (1 - 0.99 ** count)) + 1e-6)
        np.testing.assert_allclose(d, expected, rtol=1e-13, atol=1e-15)
        state = adam.state_dict()
        np.testing.assert_allclose(state["m"], m, rtol=1e-13)
        state["m"][:] = 0  # a copy: the saved state does not change with later steps, nor they with it
        np.testing.assert_allclose(adam.m, m, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threaded_activations_equal_serial(dtype):
    import minieye as me
    from minieye.functional import activation as FA
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((2, 3, 17, 13)).astype(dtype), rng.standard_normal((2, 3, 17, 13)).astype(dtype)
    with me.options(elementwise_parallel_min_size=1 << 62):
        serial = [FA.relu(x), FA.relu_grad(dy, x), FA.gelu(x), FA.gelu_grad(dy, x)]
    with me.options(elementwise_parallel_min_size=0, threads=2):
        threaded = [FA.relu(x), FA.relu_grad(dy, x), FA.gelu(x), FA.gelu_grad(dy, x)]
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)


def test_dense_holds_blas_to_one_thread_below_the_knob():
    import minieye as me
    from minieye.functional.linear import blas_threads_for
    from minieye.kernels._blas import blas_controllers
    from threadpoolctl import threadpool_limits
    with threadpool_limits(2, user_api="blas"):
        with me.options(dense_parallel_min_work=100):
            with blas_threads_for(99):
                assert all(c.get_num_threads() == 1 for c in blas_controllers())
            with blas_threads_for(100):
                assert all(c.get_num_threads() == 2 for c in blas_controllers())
        assert all(c.get_num_threads() == 2 for c in blas_controllers())  # restored
        layer = L.Dense(7, 5, seed=0, dtype="float64")
        x = np.random.default_rng(0).standard_normal((3, 7))
        y, backward = layer.forward(x)
        deltas = DeltaSet()
        np.testing.assert_allclose(backward(np.ones_like(y), deltas), np.ones((3, 5)) @ layer.weight.value)
        np.testing.assert_allclose(deltas[layer.weight], np.ones((5, 3)) @ x)


def test_networks_skip_the_explaining_wrapper_but_honour_a_replaced_forward(monkeypatch):
    import minieye as me
    relu = L.ReLU()
    net = me.Sequential(relu)
    x = np.array([[-1.0, 2.0]], dtype=np.float32)
    _, backward = net.forward(x)
    with pytest.raises(TypeError, match="deltas is missing"):
        backward(np.ones_like(x))  # the network itself still explains
    calls = []
    original = L.ReLU.forward

    def spy(self, value):
        calls.append(value.shape)
        return original(self, value)

    monkeypatch.setattr(L.ReLU, "forward", spy)
    net.forward(x)
    monkeypatch.setattr(relu, "forward", lambda value: (value * 0, None), raising=False)
    assert net(x).tolist() == [[0.0, 0.0]] and calls == [(1, 2)]
