"""Line searches on random one-dimensional functions: the conditions they promise hold."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minieye import train

floats = st.floats


def wavy(a, b, c, w):
    """phi(t) = a t^2 + b t + c sin(w t), with phi'(0) = b + c w < 0 (enforced by the strategy)."""
    calls = []

    def phi(t):
        calls.append(t)
        return train.Trial(t, a * t * t + b * t + c * math.sin(w * t), 2 * a * t + b + c * w * math.cos(w * t), True)

    return phi, calls


problems = st.tuples(floats(0.01, 10), floats(-10, -0.1), floats(-0.5, 0.5), floats(0.1, 5)).filter(
    lambda p: p[1] + p[2] * p[3] < -0.05)


@given(problems, floats(1e-4, 100))
def test_armijo_wolfe_accepts_only_strong_wolfe_points(params, t0):
    a, b, c, w = params
    phi, calls = wavy(a, b, c, w)
    slope0 = b + c * w
    search = train.ArmijoWolfe()
    trial = search.search(phi, 0.0, slope0, t0)
    assert trial is not None  # a smooth function bounded below always has a Wolfe point
    assert trial.loss <= search.c1 * trial.t * slope0
    assert abs(trial.slope) <= search.c2 * abs(slope0)
    assert len(calls) <= search.max_evaluations


@given(problems, floats(1e-4, 100))
def test_backtracking_and_quadratic_give_sufficient_decrease(params, t0):
    a, b, c, w = params
    slope0 = b + c * w
    for search in (train.Backtracking(), train.Quadratic()):
        phi, _ = wavy(a, b, c, w)
        trial = search.search(phi, 0.0, slope0, t0)
        assert trial is not None and trial.loss <= search.c1 * trial.t * slope0


def test_non_finite_region_is_bisected_away():
    # finite only for t < 0.3: the search must come back inside and still satisfy Wolfe
    def phi(t):
        if t >= 0.3:
            return train.Trial(t, math.inf, math.nan, False)
        return train.Trial(t, (t - 0.2) ** 2 - 0.04, 2 * (t - 0.2), True)

    trial = train.ArmijoWolfe().search(phi, 0.0, -0.4, 1.0)
    assert trial.t < 0.3 and abs(trial.slope) <= 0.9 * 0.4


def test_no_acceptable_step_returns_none():
    def phi(t):  # the slope at 0 lies: the function only goes up
        return train.Trial(t, t, 1.0, True)

    for search in (train.ArmijoWolfe(), train.Backtracking(), train.Quadratic()):
        assert search.search(phi, 0.0, -1.0, 1.0) is None


def test_curved_path_slope_matches_finite_differences():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(5), rng.standard_normal(5)
    path = train.CurvedPath(a, b)
    assert np.allclose(path.displacement(0.0), 0) and np.allclose(path.displacement(1.0), b)
    assert np.allclose(path.tangent(0.0), a)
    for t in (0.0, 0.3, 1.0, 1.7):
        numeric = (path.displacement(t + 1e-6) - path.displacement(t - 1e-6)) / 2e-6
        assert np.allclose(path.tangent(t), numeric, atol=1e-8)
