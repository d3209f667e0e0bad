"""Trainer stops and failures: non-finite values, stop conditions, seeds, configuration errors, Ctrl-C."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train
from tests.train_toys import Blowup, GradPoison, Rosenbrock, least_squares, rosenbrock


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
    problem = train.Problem(net, losses.MSE(), x, y, batch_size=8, rng=np.random.default_rng(2))  # row 17 in batch 4
    seen = []
    trainer = train.Trainer(problem, train.Adam(), train.FixedStep(0.01),
                            monitors=[train.Callback(lambda t, r: seen.append(t.current.x.copy()))])
    result = trainer.run(max_iterations=200)
    assert result.stop_reason == "non_finite" and 0 < result.iterations < 200
    assert all(np.isfinite(p.value).all() for p in net.parameters())
    assert np.array_equal(problem.get_vector(), seen[-1])  # the last accepted point



@pytest.mark.parametrize("complete_early", [False, True])
def test_a_nan_gradient_after_a_step_checked_ahead_stops_at_the_last_good_state(complete_early, tmp_path):
    """Adam + FixedStep checks a step's loss on the next mini-batch and defers that batch's
    backward pass to the next iteration. A finite loss there with a non-finite gradient (row 17,
    in batch 4, makes GradPoison's gradient NaN) stops the run at the accepted point, with no
    NaN kept and the bad batch's forward pass undone in the buffers; a later run goes on. The
    same when a monitor runs that backward pass early (``complete_gradient``, as a checkpoint
    does), and a checkpoint saved then resumes to the same stop."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    y = x @ np.array([[1.0], [2.0], [-1.0]])
    x[17] = 1e5
    poison = GradPoison()
    net = me.Sequential(layers.Dense(3, 1, dtype="float64", seed=0), poison)
    problem = train.Problem(net, losses.MSE(), x, y, batch_size=8, rng=np.random.default_rng(2))
    seen = []
    def watch(t, record):
        seen.append((t.current.x.copy(), poison.peak.copy()))
        if complete_early:
            t.complete_gradient()
            assert t.current.grad is None or np.isfinite(t.current.grad).all()
            t.save_checkpoint(tmp_path / f"at-{record.iteration}.ckpt")

    trainer = train.Trainer(problem, train.Adam(), train.FixedStep(0.01), monitors=[train.Callback(watch)])
    result = trainer.run(max_iterations=200)
    assert result.stop_reason == "non_finite" and "gradient" in result.message
    assert result.iterations == len(result.history) == len(seen) == 3 and math.isfinite(result.loss)
    assert np.array_equal(problem.get_vector(), seen[-1][0])  # the last accepted point
    assert trainer.current.grad is None  # the NaN gradient is not kept
    assert np.array_equal(poison.peak, seen[-2][1]) and poison.peak[0] < 1e3  # batch 4's forward undone
    if complete_early:
        resumed = train.Trainer(problem, train.Adam(), train.FixedStep(0.01)).resume(tmp_path / "at-3.ckpt")
        assert resumed.stop_reason == "non_finite" and resumed.iterations == 3
        assert np.array_equal(problem.get_vector(), seen[-1][0])
    again = trainer.run(max_iterations=1)  # draws batch 5 and goes on from the same point
    assert again.stop_reason == "max_iterations" and again.iterations == 4


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


class Sideways(train.GradientDescent):
    """Moves at right angles to the gradient of a 2-vector: the slope is exactly 0, the gradient is not."""

    def direction(self, it):
        return train.LinePath(np.array([-it.grad[1], it.grad[0]]))


def test_no_descent_is_its_own_stop_reason_not_gradient_tolerance():
    _, problem = rosenbrock()
    result = train.Trainer(problem, Sideways(), train.ArmijoWolfe()).run(max_iterations=10, gradient_tolerance=1e-8)
    assert result.stop_reason == "no_descent" and result.iterations == 0, result.message
    assert "no descent direction (slope 0" in result.message and "gradient norm" in result.message
    assert np.linalg.norm(problem.evaluate_vector()[1]) > 1e-8  # the gradient was not small
    assert "no_descent" in train.STOP_REASONS
    _, problem = rosenbrock()  # a fixed step does not need descent: it moves on
    result = train.Trainer(problem, Sideways(), train.FixedStep(1e-3)).run(max_iterations=3)
    assert result.stop_reason == "max_iterations"


@pytest.mark.parametrize("kwargs, message", [
    (dict(timeout=True), r"timeout a finite number > 0; got timeout=True"),
    (dict(timeout=0), r"timeout a finite number > 0"),
    (dict(tolerance=-1e-3), r"tolerance a finite number >= 0"),
    (dict(target_loss=math.nan), r"target_loss a finite number; got target_loss=nan"),
])
def test_run_refuses_bad_stop_settings_as_checks_do(kwargs, message):
    problem = train.Problem(me.Sequential(layers.Source(value=np.zeros(2))), Rosenbrock())
    with pytest.raises(ValueError, match=message):
        train.Trainer(problem).run(**kwargs)
    assert train.Trainer(problem).run(max_iterations=1, target_loss=-1.0).iterations == 1  # any sign
