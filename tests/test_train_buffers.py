"""BatchNorm's running statistics under the trainer: only accepted points move them (train/buffers.py)."""
from __future__ import annotations

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train


def _net() -> me.Sequential:
    return me.Sequential(layers.Dense(3, 5, dtype="float64", seed=0), layers.BatchNorm1D(5, dtype=np.float64),
                         layers.Tanh(), layers.Dense(5, 1, dtype="float64", seed=1))


def _data(bad_row: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    y = np.sin(x @ np.array([[1.0], [2.0], [-1.0]]))
    if bad_row is not None:
        x[bad_row, 1] = np.nan
    return x, y


def _stats(net: me.Sequential) -> tuple[np.ndarray, np.ndarray]:
    norm = net.layers[1]
    return norm.running_mean.copy(), norm.running_var.copy()


def _replayed(points: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The statistics of one forward pass at the start and at each accepted point, from fresh ones."""
    replay = _net()
    problem = train.Problem(replay, losses.MSE(), x, y)
    for point in points:
        problem.set_vector(point)
        problem.evaluate()
    return _stats(replay)


def test_line_search_trials_leave_only_the_accepted_points_update():
    x, y = _data()
    net = _net()
    problem = train.Problem(net, losses.MSE(), x, y)
    points = [problem.get_vector()]
    trainer = train.Trainer(problem, train.LBFGS(), train.ArmijoWolfe(),
                            monitors=[train.Callback(lambda t, r: points.append(t.current.x.copy()))])
    result = trainer.run(max_iterations=8)
    assert result.evaluations > result.iterations + 1  # the searches did evaluate rejected trials
    for got, expected in zip(_stats(net), _replayed(points, x, y)):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the trial overflows on purpose
def test_a_non_finite_trial_does_not_poison_the_running_statistics():
    x, y = _data()
    net = _net()
    problem = train.Problem(net, losses.MSE(), x, y)
    problem.evaluate()  # the start point's update, which the trainer's first evaluation repeats
    once = _stats(net)
    net.layers[1].running_mean[...], net.layers[1].running_var[...] = 0.0, 1.0
    result = train.Trainer(problem, train.GradientDescent(), train.FixedStep(1e300, max_halvings=3)).run(
        max_iterations=5)
    assert result.stop_reason == "non_finite" and result.iterations == 0
    for got, expected in zip(_stats(net), once):
        np.testing.assert_array_equal(got, expected)


def test_a_mini_batch_with_nan_stops_with_finite_running_statistics():
    x, y = _data(bad_row=17)
    net = _net()
    problem = train.Problem(net, losses.MSE(), x, y, batch_size=8, rng=np.random.default_rng(2))
    result = train.Trainer(problem, train.Adam(), train.FixedStep(0.01)).run(max_iterations=200)
    assert result.stop_reason == "non_finite" and 0 < result.iterations < 200
    assert all(np.isfinite(s).all() for s in _stats(net))


def test_checkpoint_resume_mid_run_gives_the_same_running_statistics(tmp_path):
    """Mini-batches, L-BFGS and a line search with rejected trials: the run resumed from a checkpoint
    written at iteration 4 ends with the same parameters and running statistics, bit for bit."""
    x, y = _data()

    def trainer(net, monitors=()):
        problem = train.Problem(net, losses.MSE(), x, y, batch_size=16, rng=np.random.default_rng(3))
        return train.Trainer(problem, train.LBFGS(), train.ArmijoWolfe(), monitors=list(monitors))

    straight_net = _net()
    straight = trainer(straight_net).run(max_iterations=8)
    assert straight.evaluations > straight.iterations + 1
    path = tmp_path / "mid.ckpt"
    trainer(_net(), [train.Checkpoint(path, every=4, at_end=False)]).run(max_iterations=6)
    resumed_net = _net()
    resumed = trainer(resumed_net).run(max_iterations=8, resume_from=path)
    assert resumed.iterations == straight.iterations and resumed.loss == straight.loss
    np.testing.assert_array_equal(resumed_net.layers[0].weight.value, straight_net.layers[0].weight.value)
    for got, expected in zip(_stats(resumed_net), _stats(straight_net)):
        np.testing.assert_array_equal(got, expected)


def test_ctrl_c_inside_a_line_search_leaves_the_last_accepted_points_statistics():
    """An interrupt in a trial's forward pass: the parameters and the running statistics are those the
    last accepted point left (the replay of the accepted points), not the interrupted trial's."""
    x, y = _data()
    net = _net()
    problem = train.Problem(net, losses.MSE(), x, y)
    points, calls = [problem.get_vector()], [0]
    forward = problem.forward_vector

    def interrupting(batch):  # Ctrl-C once BatchNorm has updated its statistics
        calls[0] += 1
        out = forward(batch)
        if calls[0] == 8:  # the second trial of iteration 5, after a rejected one
            raise KeyboardInterrupt
        return out

    problem.forward_vector = interrupting
    trainer = train.Trainer(problem, train.LBFGS(), train.ArmijoWolfe(),
                            monitors=[train.Callback(lambda t, r: points.append(t.current.x.copy()))])
    result = trainer.run(max_iterations=100)
    assert result.stop_reason == "interrupted" and 0 < result.iterations < 8
    np.testing.assert_array_equal(problem.get_vector(), points[-1])
    for got, expected in zip(_stats(net), _replayed(points, x, y)):
        np.testing.assert_array_equal(got, expected)


def test_an_accepted_step_whose_gradient_is_not_finite_leaves_the_last_finite_points_statistics():
    """A values-only search (Backtracking) accepts a step on its loss; its gradient, computed
    afterwards, is NaN: the run stops with the parameters and the running statistics of the last
    point whose loss and gradient were finite (docs/training.md)."""
    x, y = _data()
    net = _net()
    problem = train.Problem(net, losses.MSE(), x, y)
    points = [problem.get_vector()]
    forward = problem.forward_vector

    def nan_gradient_after_the_first_iteration(batch):
        loss, pending = forward(batch)
        return (loss, pending) if len(points) < 2 else (loss, lambda: np.full_like(pending(), np.nan))

    problem.forward_vector = nan_gradient_after_the_first_iteration
    trainer = train.Trainer(problem, train.GradientDescent(), train.Backtracking(),
                            monitors=[train.Callback(lambda t, r: points.append(t.current.x.copy()))])
    result = trainer.run(max_iterations=10)
    assert result.stop_reason == "non_finite" and result.iterations == len(points) - 1 == 1
    np.testing.assert_array_equal(problem.get_vector(), points[-1])
    for got, expected in zip(_stats(net), _replayed(points, x, y)):
        np.testing.assert_array_equal(got, expected)


def test_ctrl_c_while_the_current_point_is_evaluated_on_a_new_mini_batch_leaves_no_trace():
    """Mini-batches: each iteration first evaluates the current point on the new batch. A Ctrl-C
    there, once BatchNorm has updated its statistics, leaves them as before that evaluation (a
    continued run evaluates a batch there again)."""
    x, y = _data()
    net = _net()
    problem = train.Problem(net, losses.MSE(), x, y, batch_size=16, rng=np.random.default_rng(3))
    trainer = train.Trainer(problem, train.LBFGS(), train.ArmijoWolfe())
    forward, stale_calls, before = problem.forward_vector, [0], []

    def interrupting(batch):
        if trainer.stale:  # the current point on a new batch (Trainer._loop)
            stale_calls[0] += 1
            before.append(_stats(net))
        out = forward(batch)
        if stale_calls[0] == 3 and trainer.stale:
            raise KeyboardInterrupt
        return out

    problem.forward_vector = interrupting
    result = trainer.run(max_iterations=10)
    assert result.stop_reason == "interrupted" and result.iterations == 3
    for got, expected in zip(_stats(net), before[-1]):
        np.testing.assert_array_equal(got, expected)
