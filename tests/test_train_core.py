"""Trainer core: least squares, Rosenbrock, line-search conditions, constraints."""
from __future__ import annotations

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train
from tests.train_toys import least_squares, rosenbrock


def test_lbfgs_armijo_wolfe_solves_least_squares_to_machine_precision():
    net, problem, w_true = least_squares()
    result = train.Trainer(problem, train.LBFGS(), train.ArmijoWolfe()).run(max_iterations=60)
    w = net.layers[0].weight.value
    assert np.abs(w - w_true).max() < 1e-12
    assert result.loss < 1e-26
    # a 10-d problem with condition number ~25: loss 1e-20 within 30 iterations (SciPy's L-BFGS-B: about 28)
    assert np.argmax(result.losses < 1e-20) < 30
    assert result.stop_reason in ("line_search_failed", "gradient_tolerance", "max_iterations")
    assert result.history[-1].loss == result.loss


def test_rosenbrock_converges_with_each_quasi_newton_and_line_search():
    for orientation, search in [(train.LBFGS(), train.ArmijoWolfe()), (train.QQN(), train.ArmijoWolfe()),
                                (train.LBFGS(), train.Backtracking()), (train.LBFGS(), train.Quadratic())]:
        source, problem = rosenbrock()
        result = train.Trainer(problem, orientation, search).run(max_iterations=300, gradient_tolerance=1e-10)
        assert result.loss < 1e-14, (orientation, search, result.loss, result.message)
        assert np.allclose(source.value.value, [1.0, 1.0], atol=1e-6)
    source, problem = rosenbrock()
    result = train.Trainer(problem).run(max_iterations=200, gradient_tolerance=1e-10)
    assert result.iterations < 60  # L-BFGS on Rosenbrock from (-1.2, 1): about 35 iterations


class RecordingWolfe(train.ArmijoWolfe):
    """ArmijoWolfe that keeps (phi(0), phi'(0), accepted trial) for every search."""

    def __init__(self):
        super().__init__()
        self.accepted = []

    def search(self, phi, loss0, slope0, t0):
        trial = super().search(phi, loss0, slope0, t0)
        if trial is not None:
            self.accepted.append((loss0, slope0, trial))
        return trial


@pytest.mark.parametrize("orientation", [train.LBFGS, train.QQN, train.GradientDescent])
def test_wolfe_conditions_hold_at_accepted_steps(orientation):
    search = RecordingWolfe()
    _, problem = rosenbrock()
    train.Trainer(problem, orientation(), search).run(max_iterations=25)
    assert len(search.accepted) == 25
    for loss0, slope0, trial in search.accepted:
        assert slope0 < 0
        assert trial.loss <= loss0 + search.c1 * trial.t * slope0  # sufficient decrease
        assert abs(trial.slope) <= search.c2 * abs(slope0)  # strong curvature


def quadratic_phi(a=2.0, b=-3.0):
    """phi(t) = a t^2 + b t (minimum at t = -b / 2a = 0.75)."""
    calls = []

    def phi(t):
        calls.append(t)
        return train.Trial(t, a * t * t + b * t, 2 * a * t + b, True)

    return phi, calls


@pytest.mark.parametrize("search", [train.ArmijoWolfe(), train.Quadratic(), train.Backtracking()])
def test_line_searches_on_a_parabola(search):
    phi, calls = quadratic_phi()
    trial = search.search(phi, 0.0, -3.0, 2.0)
    assert trial.loss <= 1e-4 * trial.t * -3.0
    if not isinstance(search, train.Backtracking):
        assert abs(trial.t - 0.75) < 0.75 * 0.5  # strong Wolfe with c2 <= 0.9 around the minimum
    if isinstance(search, train.Quadratic):
        assert trial.t == pytest.approx(0.75) and len(calls) == 2  # exact after one interpolation


def test_armijo_wolfe_extrapolates_from_a_tiny_first_step():
    phi, calls = quadratic_phi()
    trial = train.ArmijoWolfe().search(phi, 0.0, -3.0, 1e-6)
    assert abs(trial.slope) <= 0.9 * 3.0 and len(calls) < 15


def test_box_constraint_is_hard_and_reaches_the_constrained_optimum():
    # minimise |x - c|^2 with c partly outside [0, 1]: the answer is clip(c, 0, 1)
    c = np.array([-0.5, 0.3, 1.7, 0.9, 2.0])
    source = layers.Source(value=np.full(5, 0.5))
    problem = train.Problem(me.Sequential(source), losses.MSE(), (), c,
                            constraints=[train.Box(source.value, 0.0, 1.0)])
    seen_min, seen_max = [], []
    monitor = train.Callback(lambda t, r: (seen_min.append(source.value.value.min()),
                                           seen_max.append(source.value.value.max())) and None)
    result = train.Trainer(problem, monitors=[monitor]).run(max_iterations=50, gradient_tolerance=1e-12)
    assert np.allclose(source.value.value, np.clip(c, 0, 1), atol=1e-10)
    assert min(seen_min) >= 0.0 and max(seen_max) <= 1.0
    assert result.stop_reason == "gradient_tolerance"


def test_nonnegative_constraint_with_lbfgs_on_least_squares():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((30, 6))
    b = a @ np.array([1.0, -2.0, 0.5, -0.1, 3.0, 0.0])[:, None]
    net = me.Sequential(layers.Dense(6, 1, bias=False, dtype="float64", init="zeros"))
    weight = net.layers[0].weight
    problem = train.Problem(net, losses.MSE(), a, b, constraints=[train.NonNegative(weight)])
    train.Trainer(problem).run(max_iterations=100, gradient_tolerance=1e-12)
    scipy = pytest.importorskip("scipy.optimize")
    reference = scipy.nnls(a, b[:, 0])[0]
    assert np.allclose(weight.value[0], reference, atol=1e-7)
    assert weight.value.min() >= 0


def test_owlqn_gives_a_sparse_lasso_solution():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((40, 12))
    w_true = np.zeros(12)
    w_true[[1, 5, 9]] = [2.0, -1.5, 1.0]
    b = a @ w_true[:, None] + 0.01 * rng.standard_normal((40, 1))
    net = me.Sequential(layers.Dense(12, 1, bias=False, dtype="float64", init="zeros"))
    problem = train.Problem(net, losses.MSE(), a, b)
    result = train.Trainer(problem, train.OWLQN(l1=0.05), train.Backtracking()).run(max_iterations=200)
    w = net.layers[0].weight.value[0]
    assert set(np.flatnonzero(w)) == {1, 5, 9}
    # optimality of the lasso: |grad_j| <= l1 where w_j == 0, grad_j = -l1 sign(w_j) elsewhere
    _, grad = problem.evaluate_vector()
    assert np.all(np.abs(grad[w == 0]) <= 0.05 + 1e-8)
    assert np.allclose(grad[w != 0], -0.05 * np.sign(w[w != 0]), atol=1e-7)
    assert result.loss == pytest.approx(problem.evaluate()[0] + 0.05 * np.abs(w).sum())
