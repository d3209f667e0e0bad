"""Epochs: every row once per epoch; a second run() continues exactly; checkpoints keep the epoch;
the timeout is honoured inside a line search."""
from __future__ import annotations

import time

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train
from minieye.core import Layer


def make_problem(batch_size=16, seed=0, n=50):
    rng = np.random.default_rng(42)
    x = rng.standard_normal((n, 5))
    y = np.sin(x @ rng.standard_normal((5, 3)))
    net = me.Sequential(layers.Dense(5, 7, dtype="float64", seed=1), layers.Tanh(),
                        layers.Dense(7, 3, dtype="float64", seed=2))
    return net, train.Problem(net, losses.MSE(), x, y, batch_size=batch_size, rng=np.random.default_rng(seed))


OPTIMIZERS = {
    "adam": lambda: (train.Adam(), train.FixedStep(0.01)),  # steps checked on the next batch (train/ahead.py)
    "momentum": lambda: (train.Momentum(0.9), train.Backtracking()),
    "lbfgs": lambda: (train.LBFGS(history=4), train.ArmijoWolfe()),
}


def fingerprint(result):
    return [(r.iteration, r.loss, r.step, r.gradient_norm, r.evaluations) for r in result.history]


def test_an_epoch_visits_every_row_once_in_a_fresh_order():
    _, problem = make_problem(batch_size=16, n=50)
    drawn = []
    draw = problem.draw_batch
    problem.draw_batch = lambda: drawn.append(draw()) or drawn[-1]
    result = train.Trainer(problem, train.Adam(), train.FixedStep(0.01)).run(epochs=3)
    assert result.stop_reason == "epochs" and result.iterations == 12  # 16 + 16 + 16 + 2 rows per epoch
    assert problem.batches_per_epoch == 4
    used = drawn[:12]  # one batch may have been drawn ahead for the next iteration
    assert [len(b) for b in used] == [16, 16, 16, 2] * 3
    epochs = [np.concatenate(used[i:i + 4]) for i in (0, 4, 8)]
    for rows in epochs:
        assert sorted(rows) == list(range(50))
    assert not np.array_equal(epochs[0], epochs[1])
    assert [e["epoch"] for e in result.epoch_history] == [1, 2, 3]
    assert [e["iteration"] for e in result.epoch_history] == [4, 8, 12]
    assert result.epoch_history[0]["loss"] == pytest.approx(np.mean([r.loss for r in result.history[:4]]))
    np.testing.assert_array_equal(result.curve("loss"), [e["loss"] for e in result.epoch_history])


def test_full_batch_epochs_are_iterations_and_max_iterations_still_works():
    net, problem = make_problem(batch_size=None)
    result = train.Trainer(problem).run(epochs=3)
    assert result.stop_reason == "epochs" and result.iterations == 3 and len(result.epoch_history) == 3
    _, problem = make_problem()
    result = train.Trainer(problem, train.Adam(), train.FixedStep(0.01)).run(max_iterations=6, epochs=5)
    assert result.stop_reason == "max_iterations" and result.iterations == 6
    assert len(result.epoch_history) == 1
    with pytest.raises(ValueError, match="epochs"):
        train.Trainer(problem).run(epochs=-1)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_two_runs_equal_one_run_of_the_summed_length(name):
    net_a, problem_a = make_problem()
    straight = train.Trainer(problem_a, *OPTIMIZERS[name]()).run(max_iterations=46)
    net_b, problem_b = make_problem()
    trainer = train.Trainer(problem_b, *OPTIMIZERS[name]())
    first = trainer.run(max_iterations=23)
    assert first.iterations == 23
    second = trainer.run(max_iterations=23)
    assert second.iterations == 46 and second.initial_loss == straight.initial_loss
    assert fingerprint(second) == fingerprint(straight)
    assert second.epoch_history == straight.epoch_history
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        assert np.array_equal(pa.value, pb.value)


def test_epoch_runs_add_up_and_reset_starts_afresh():
    net_a, problem_a = make_problem()
    straight = train.Trainer(problem_a, train.Adam(), train.FixedStep(0.01)).run(epochs=3)
    net_b, problem_b = make_problem()
    trainer = train.Trainer(problem_b, train.Adam(), train.FixedStep(0.01))
    trainer.run(epochs=1)
    result = trainer.run(epochs=2)
    assert (result.stop_reason, trainer.epoch) == ("epochs", 3)
    assert fingerprint(result) == fingerprint(straight) and result.epoch_history == straight.epoch_history
    trainer.reset()
    again = trainer.run(max_iterations=2)
    assert again.iterations == 2 and len(again.history) == 2 and trainer.orientation.count == 2
    # parameters changed between runs: the next run starts afresh from them
    for p in net_b.parameters():
        p.value[...] *= 0.5
    assert trainer.run(max_iterations=1).iterations == 1


def _validation(problem):
    x, y = problem.inputs[0][:10], problem.targets[:10]
    return train.Validation(x, y, every="epoch", patience=50, restore_best=False, metrics=[_mean_output])


def _mean_output(prediction, y):
    return float(prediction.mean())


@pytest.mark.parametrize("name", ["adam", "lbfgs"])
def test_checkpoint_mid_epoch_resumes_bit_for_bit(tmp_path, name):
    _, problem_a = make_problem()
    straight = train.Trainer(problem_a, *OPTIMIZERS[name](), monitors=[_validation(problem_a)]).run(epochs=3)
    assert set(straight.epoch_history[0]) == {"epoch", "iteration", "loss", "val_loss", "val__mean_output"}
    path = tmp_path / "run.ckpt"
    _, problem_b = make_problem()
    monitors = [_validation(problem_b), train.Checkpoint(path, every=6, at_end=False)]
    train.Trainer(problem_b, *OPTIMIZERS[name](), monitors=monitors).run(max_iterations=7)
    # the file holds iteration 6, the middle of epoch 2; another RNG: the checkpoint restores the order and RNG
    net_c, problem_c = make_problem(seed=99)
    resumed = train.Trainer(problem_c, *OPTIMIZERS[name](), monitors=[_validation(problem_c)]).resume(path, epochs=3)
    assert resumed.stop_reason == "epochs" and resumed.iterations == 12
    assert fingerprint(resumed) == fingerprint(straight)
    assert resumed.epoch_history == straight.epoch_history


class _SlowLoss(Layer):
    """MSE that takes 50 ms per evaluation."""

    n_inputs = 2

    def forward(self, prediction, target):
        time.sleep(0.05)
        return losses.MSE().forward(prediction, target)


class _ManyTrials(train.LineSearch):
    """Evaluates 20 trial steps and keeps the best: one search takes about a second here."""

    uses_slope = False

    def search(self, phi, loss0, slope0, t0):
        trials = [phi(t0 * 0.8 ** k) for k in range(20)]
        return min((t for t in trials if t.finite), key=lambda t: t.loss, default=None)


def test_timeout_is_honoured_inside_a_line_search_at_the_last_accepted_point():
    net, _ = make_problem()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 5)), rng.standard_normal((20, 3))
    problem = train.Problem(net, _SlowLoss(), x, y)
    start = problem.get_vector()
    trainer = train.Trainer(problem, train.GradientDescent(), _ManyTrials())
    result = trainer.run(max_iterations=5, timeout=0.3)
    assert result.stop_reason == "timeout" and "line search" in result.message
    assert result.elapsed < 0.3 + 0.3  # the start, one iteration check and at most one trial beyond it
    assert result.iterations == 0 and np.array_equal(problem.get_vector(), start)  # the last accepted point
    more = trainer.run(max_iterations=1)  # continues: the interrupted iteration is done again
    assert more.iterations == 1 and more.loss < more.initial_loss


def test_checkpoint_keeps_running_statistics_and_dropout_masks(tmp_path):
    def make():
        rng = np.random.default_rng(7)
        x, y = rng.standard_normal((40, 5)), rng.standard_normal((40, 3))
        net = me.Sequential(layers.Dense(5, 8, dtype="float64", seed=1), layers.BatchNorm1D(8, dtype="float64"),
                            layers.ReLU(), layers.Dropout(0.3, seed=2), layers.Dense(8, 3, dtype="float64", seed=3))
        problem = train.Problem(net, losses.MSE(), x, y, batch_size=16, rng=np.random.default_rng(0))
        return net, train.Trainer(problem, train.Adam(), train.FixedStep(0.01))

    net_a, trainer_a = make()
    straight = trainer_a.run(epochs=4)
    path = tmp_path / "bn.ckpt"
    net_b, trainer_b = make()
    trainer_b.run(epochs=2)
    trainer_b.save_checkpoint(path)
    net_c, trainer_c = make()
    resumed = trainer_c.resume(path, epochs=4)
    assert fingerprint(resumed) == fingerprint(straight)
    np.testing.assert_array_equal(net_c[1].running_var, net_a[1].running_var)
    assert not np.array_equal(net_c[1].running_var, np.ones(8))
    for pa, pc in zip(net_a.parameters(), net_c.parameters()):
        assert np.array_equal(pa.value, pc.value)
    with pytest.raises(ValueError, match="layers"):
        train.Trainer(train.Problem(me.Sequential(layers.Dense(5, 8, dtype="float64"), layers.BatchNorm1D(8, dtype="float64"),
                                                  layers.Dense(8, 3, dtype="float64")), losses.MSE(),
                                    np.zeros((40, 5)), np.zeros((40, 3)), batch_size=16),  # the saved batching
                      train.Adam(), train.FixedStep(0.01)).resume(path)
