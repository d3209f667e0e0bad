"""The fused optimizer loops against plain NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

import minieye as me
from minieye import train
from minieye.functional.optim import box_tangent_dot, two_loop


def reference_two_loop(g, pairs):
    """N&W Alg. 7.4 written out with NumPy, pairs oldest first."""
    q, alphas = g.copy(), []
    for s, y in reversed(pairs):
        alpha = s @ q / (s @ y)
        q -= alpha * y
        alphas.append(alpha)
    s, y = pairs[-1]
    q *= (s @ y) / (y @ y)
    for (s, y), alpha in zip(pairs, reversed(alphas)):
        q += (alpha - y @ q / (s @ y)) * s
    return q


@pytest.mark.parametrize("stored, history", [(1, 3), (3, 3), (5, 3), (12, 10)])
def test_lbfgs_two_loop_matches_the_reference_after_the_ring_wraps(stored, history):
    rng = np.random.default_rng(stored)
    n = 40
    orientation = train.LBFGS(history=history)
    pairs = []
    for _ in range(stored):
        s = rng.standard_normal(n)
        y = s * rng.uniform(0.5, 2.0, n)  # positive curvature
        orientation._remember(s, y)
        pairs.append((s, y))
    g = rng.standard_normal(n)
    assert orientation.pairs == min(stored, history)
    np.testing.assert_allclose(orientation.apply_inverse_hessian(g), reference_two_loop(g, pairs[-history:]),
                               rtol=1e-12, atol=1e-12)


def test_two_loop_on_an_exact_quadratic_is_newtons_step_after_n_pairs():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 6))
    hessian = a @ a.T + 6 * np.eye(6)
    orientation = train.LBFGS(history=6)
    for s in np.linalg.eigh(hessian)[1].T:  # n H-conjugate pairs of a quadratic make H exact
        orientation._remember(s, hessian @ s)
    g = rng.standard_normal(6)
    np.testing.assert_allclose(orientation.apply_inverse_hessian(g), np.linalg.solve(hessian, g), rtol=1e-10)


def test_empty_history_is_the_identity():
    g = np.arange(5.0)
    q = two_loop(g, np.zeros((2, 5)), np.zeros((2, 5)), np.ones(2), np.zeros(0, dtype=np.int64), 1.0)
    assert np.array_equal(q, g) and q is not g


def test_box_tangent_dot_matches_the_projected_tangent():
    rng = np.random.default_rng(1)
    n = 200
    lower, upper = np.zeros(n), np.ones(n)
    z = rng.choice([-0.5, 0.0, 0.3, 1.0, 1.5], n)  # outside, on and inside the bounds
    v, g = rng.standard_normal(n), rng.standard_normal(n)
    box = train.Box(me.Parameter(np.zeros(n), dtype="float64"), 0.0, 1.0)
    assert box_tangent_dot(z, v, g, lower, upper) == pytest.approx(g @ box.tangent(z, v), rel=1e-12)
