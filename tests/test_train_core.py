"""Trainer core: least squares, Rosenbrock, line-search conditions, constraints, failures, configuration."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train
from minieye.core import Layer


class Rosenbrock(Layer):
    """Loss layer on a 2-vector: (1 - x)^2 + 100 (y - x^2)^2 (minimum 0 at (1, 1))."""

    n_inputs = 1

    def forward(self, p):
        x, y = float(p[0]), float(p[1])
        value = np.asarray((1 - x) ** 2 + 100 * (y - x * x) ** 2)

        def backward(dy, deltas):
            d = float(dy)
            return d * np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])

        return value, backward


class Blowup(Layer):
    """sum(exp(k * x)) / n: finite near 0, overflows to inf for a large step."""

    n_inputs = 1

    def forward(self, x):
        with np.errstate(over="ignore"):  # overflow is the point of this layer
            e = np.exp(30.0 * x)
            value = np.asarray(e.sum() / x.size + ((x - 0.5) ** 2).sum())

        def backward(dy, deltas):
            return float(dy) * (30.0 * e / x.size + 2 * (x - 0.5))

        return value, backward


def least_squares(seed=1, n=60, k=10):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, k)) * np.linspace(1, 5, k)  # condition number ~ 5^2
    w_true = rng.standard_normal((1, k))
    b = a @ w_true.T
    net = me.Sequential(layers.Dense(k, 1, bias=False, dtype="float64", init="zeros"))
    return net, train.Problem(net, losses.MSE(), a, b), w_true


def rosenbrock(start=(-1.2, 1.0)):
    source = layers.Source(value=np.array(start, dtype=np.float64))
    return source, train.Problem(me.Sequential(source), Rosenbrock())


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


def test_non_finite_trials_are_rejected_and_shrunk():
    source = layers.Source(value=np.zeros(4, dtype=np.float64))
    problem = train.Problem(me.Sequential(source), Blowup())
    for search in (train.ArmijoWolfe(), train.Backtracking(), train.Quadratic(), train.FixedStep(10.0)):
        source.value.value[...] = 0.0
        trainer = train.Trainer(problem, train.GradientDescent(), search)
        result = trainer.run(max_iterations=5)
        assert np.isfinite(source.value.value).all()
        assert math.isfinite(result.loss), search
        if not isinstance(search, train.FixedStep):  # a fixed step need not descend
            assert result.loss < result.initial_loss, search


def test_nan_input_stops_cleanly_at_the_last_good_point():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    y = x @ np.array([[1.0], [2.0], [-1.0]])
    x[17, 1] = np.nan
    net = me.Sequential(layers.Dense(3, 1, dtype="float64", seed=0))
    before = [p.value.copy() for p in net.parameters()]
    result = train.Trainer(train.Problem(net, losses.MSE(), x, y)).run(max_iterations=10)
    assert result.stop_reason == "non_finite" and result.iterations == 0
    assert "inputs[0]" in result.message
    assert all(np.array_equal(a, p.value) for a, p in zip(before, net.parameters()))
    # mini-batches: the run goes on until a batch holds the bad row, then stops with finite parameters
    problem = train.Problem(net, losses.MSE(), x, y, batch_size=8, rng=np.random.default_rng(3))
    seen = []
    trainer = train.Trainer(problem, train.Adam(), train.FixedStep(0.01),
                            monitors=[train.Callback(lambda t, r: seen.append(t.current.x.copy()))])
    result = trainer.run(max_iterations=200)
    assert result.stop_reason == "non_finite" and 0 < result.iterations < 200
    assert all(np.isfinite(p.value).all() for p in net.parameters())
    assert np.array_equal(problem.get_vector(), seen[-1])  # the last accepted point


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


def test_stop_conditions():
    _, problem = rosenbrock()
    result = train.Trainer(problem).run(max_iterations=3)
    assert (result.stop_reason, result.iterations, len(result.history)) == ("max_iterations", 3, 3)
    _, problem = rosenbrock()
    result = train.Trainer(problem).run(max_iterations=None, target_loss=1.0)
    assert result.stop_reason == "target_loss" and result.loss <= 1.0 and result.history[-2].loss > 1.0
    _, problem = rosenbrock()
    result = train.Trainer(problem).run(max_iterations=500, gradient_tolerance=1e-3)
    assert result.stop_reason == "gradient_tolerance" and result.history[-1].gradient_norm <= 1e-3
    _, problem = rosenbrock()
    result = train.Trainer(problem, train.GradientDescent(), train.FixedStep(1e-7)).run(
        max_iterations=1000, tolerance=1e-2, patience=5)
    assert result.stop_reason == "no_progress" and result.iterations == 5
    _, problem = rosenbrock()
    result = train.Trainer(problem, train.GradientDescent(), train.Backtracking()).run(
        max_iterations=None, timeout=0.05)
    assert result.stop_reason == "timeout" and result.history[-1].time >= 0.04
    _, problem = rosenbrock()
    result = train.Trainer(problem, monitors=[train.Callback(lambda t, r: r.iteration == 4)]).run()
    assert result.stop_reason == "monitor" and result.iterations == 4


def test_same_seed_same_trajectory():
    def run(seed):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((64, 4))
        y = np.tanh(x @ rng.standard_normal((4, 2)))
        net = me.Sequential(layers.Dense(4, 8, dtype="float64", seed=1), layers.Tanh(),
                            layers.Dense(8, 2, dtype="float64", seed=2))
        problem = train.Problem(net, losses.MSE(), x, y, batch_size=16, rng=seed)
        return train.Trainer(problem, train.LBFGS(), train.ArmijoWolfe()).run(max_iterations=15).losses

    assert np.array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


def test_bad_configuration_is_refused_with_named_arguments():
    net, problem, _ = least_squares()
    cases = [
        (lambda: train.Problem("net", losses.MSE()), "net"),
        (lambda: train.Problem(net, losses.MSE(), np.zeros((5, 10)), np.zeros((6, 1)), batch_size=2), "rows"),
        (lambda: train.Problem(net, losses.MSE(), np.zeros((5, 10)), np.zeros((5, 1)), batch_size=9), "batch_size"),
        (lambda: train.Problem(net, losses.MSE(), np.zeros((5, 10)), None, rng="x"), "rng"),
        (lambda: train.Problem(net, losses.MSE(), np.zeros((5, 10)), params=[np.zeros(3)]), "params"),
        (lambda: train.Problem(net, losses.MSE(), np.zeros((5, 10)), np.zeros((5, 10)).astype(complex)), "dtype"),
        (lambda: train.Trainer(problem, train.LBFGS), "instance"),
        (lambda: train.Trainer(problem, line_search="wolfe"), "line_search"),
        (lambda: train.LBFGS(history=0), "history"),
        (lambda: train.ArmijoWolfe(c1=0.5, c2=0.1), "c2"),
        (lambda: train.FixedStep(-1.0), "rate"),
        (lambda: train.Momentum(momentum=1.5), "momentum"),
        (lambda: train.Trainer(problem).run(max_iterations=-1), "max_iterations"),
        (lambda: train.Trainer(problem).run(timeout=0), "timeout"),
        (lambda: train.Box(net.layers[0].weight, 1.0, 0.0), "lower <= upper"),
        (lambda: train.History("log.txt"), ".csv or .json"),
    ]
    for make, fragment in cases:
        with pytest.raises(ValueError, match="expected") as info:
            make()
        assert fragment in str(info.value), (fragment, str(info.value))
    frozen = me.Sequential(layers.Dense(2, 2)).freeze()
    with pytest.raises(ValueError, match="unfrozen"):
        train.Problem(frozen, losses.MSE(), np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="frozen"):
        train.Problem(frozen, losses.MSE(), np.zeros((1, 2)), np.zeros((1, 2)), params=frozen.parameters())
    other = me.Parameter(np.zeros(3))
    with pytest.raises(ValueError, match="optimises"):
        train.Problem(net, losses.MSE(), np.zeros((5, 10)), np.zeros((5, 1)), constraints=[train.Box(other, 0)])


def test_ctrl_c_inside_a_line_search_keeps_the_last_good_point():
    calls = [0]

    class Interrupting(Rosenbrock):
        def forward(self, p):
            calls[0] += 1
            if calls[0] == 12:
                raise KeyboardInterrupt
            return super().forward(p)

    source = layers.Source(value=np.array([-1.2, 1.0]))
    problem = train.Problem(me.Sequential(source), Interrupting())
    result = train.Trainer(problem).run(max_iterations=100)
    assert result.stop_reason == "interrupted" and 0 < result.iterations < 11
    assert problem.evaluate()[0] == result.loss == result.history[-1].loss


class TwoOutputMSE(Layer):
    """mean((p1 - t1)^2) + mean((p2 - t2)^2): a loss over a two-output network."""

    n_inputs = 4

    def forward(self, p1, p2, t1, t2):
        d1, d2 = p1 - t1, p2 - t2
        value = np.asarray((d1 ** 2).mean() + (d2 ** 2).mean())

        def backward(dy, deltas):
            g1, g2 = 2 * float(dy) * d1 / d1.size, 2 * float(dy) * d2 / d2.size
            return g1, g2, -g1, -g2

        return value, backward


def test_graph_with_two_inputs_and_two_outputs_in_mini_batches():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((64, 3)), rng.standard_normal((64, 2))
    t1, t2 = a @ rng.standard_normal((3, 2)) + b @ rng.standard_normal((2, 2)), b @ rng.standard_normal((2, 1))
    g = me.Graph()
    xa, xb = g.input(), g.input()
    hb = g.add(layers.Dense(2, 2, dtype="float64", seed=1), xb)
    out1 = g.add(layers.Add(), g.add(layers.Dense(3, 2, dtype="float64", seed=2), xa), hb)
    out2 = g.add(layers.Dense(2, 1, dtype="float64", seed=3), xb)
    g.output(out1, out2)
    problem = train.Problem(g, TwoOutputMSE(), (a, b), (t1, t2), batch_size=16, rng=0)
    result = train.Trainer(problem, train.LBFGS(), train.ArmijoWolfe()).run(max_iterations=60, target_loss=1e-20)
    full = train.Problem(g, TwoOutputMSE(), (a, b), (t1, t2))
    assert full.evaluate()[0] < 1e-12, result.message


class CountingIdentity(Layer):
    """y = x, counting forward and backward passes."""

    def __init__(self):
        super().__init__()
        self.forwards = self.backwards = 0

    def forward(self, x):
        self.forwards += 1

        def backward(dy, deltas):
            self.backwards += 1
            return dy

        return x, backward


def test_values_only_line_searches_skip_the_backward_pass_of_rejected_steps():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 4)), rng.standard_normal((64, 2))
    counter = CountingIdentity()
    net = me.Sequential(layers.Dense(4, 2, dtype="float64", seed=0), counter)
    result = train.Trainer(train.Problem(net, losses.MSE(), x, y), train.GradientDescent(),
                           train.Backtracking()).run(max_iterations=10)
    assert result.evaluations == counter.forwards > result.iterations + 1
    assert counter.backwards == result.iterations + 1  # the start and each accepted step
    # mini-batches with a fixed step: one backward per batch; the step's value is still checked
    counter.forwards = counter.backwards = 0
    problem = train.Problem(net, losses.MSE(), x, y, batch_size=16, rng=0)
    result = train.Trainer(problem, train.Adam(), train.FixedStep(0.01)).run(max_iterations=10)
    assert counter.backwards == 10 and counter.forwards == 20 == result.evaluations
    assert all(math.isfinite(r.gradient_norm) and r.gradient_norm > 0 for r in result.history)


class MeanSquare(losses.Loss):
    """mean(p^2): a one-input regularizer on the prediction."""

    n_inputs = 1

    def forward(self, p):
        value = np.asarray((p * p).mean())

        def backward(dy, deltas):
            return 2 * self.scalar_dy(dy) * p / p.size

        return value, backward


def test_weighted_sum_of_a_loss_and_a_regularizer():
    # minimise mean((p - t)^2) + 0.25 mean(p^2): p* = t / 1.25
    t = np.linspace(-1, 1, 12).reshape(3, 4)
    source = layers.Source(value=np.zeros((3, 4)))
    problem = train.Problem(me.Sequential(source), losses.MSE() + 0.25 * MeanSquare(), (), t)
    train.Trainer(problem).run(max_iterations=50, gradient_tolerance=1e-14)
    assert np.allclose(source.value.value, t / 1.25, atol=1e-12)


def test_float32_image_in_a_box_through_a_frozen_blur():
    # the restoration set-up: Source image -> frozen conv -> MSE against the observation
    rng = np.random.default_rng(8)
    truth = rng.uniform(0, 1, (1, 1, 16, 16)).astype(np.float32)
    blur = layers.Conv2D(1, 1, 3, padding=1, bias=False)
    blur.weight.value[...] = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32).reshape(1, 1, 3, 3) / 16
    blur.freeze()
    observed = blur(truth)
    image = layers.Source(value=np.full_like(truth, 0.5))
    problem = train.Problem(me.Sequential(image, blur), losses.MSE(), (), observed,
                            constraints=[train.Box(image.value, 0.0, 1.0)])
    result = train.Trainer(problem).run(max_iterations=200)
    assert image.value.value.dtype == np.float32
    assert 0.0 <= image.value.value.min() and image.value.value.max() <= 1.0
    assert result.loss < 1e-4 * result.initial_loss
    # the blur kills the highest frequency, so the image is not fully recoverable: about 0.05 vs 0.25 at the start
    assert np.abs(image.value.value - truth).mean() < 0.5 * np.abs(0.5 - truth).mean()


def test_a_problem_subclass_that_overrides_evaluate_vector_is_used_by_the_trainer():
    # minieye.distributed's DistributedProblem computes on workers through evaluate_vector
    calls = []

    class Elsewhere(train.Problem):
        def evaluate_vector(self, batch=None):
            calls.append(batch)
            return super().evaluate_vector(batch)

    _, problem = rosenbrock()
    problem.__class__ = Elsewhere
    for search in (train.ArmijoWolfe(), train.Backtracking()):
        calls.clear()
        result = train.Trainer(problem, train.LBFGS(), search).run(max_iterations=5)
        assert len(calls) == result.evaluations > 5
