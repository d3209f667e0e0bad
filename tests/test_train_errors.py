"""Training set up wrong says what is wrong, before any work is lost.

Each case was, before, a deep TypeError (``Dense.forward() missing 1 required positional
argument``, ``'History' object is not iterable``), a silent wrong answer (Accuracy 1.0 on a
regression, a parameter outside the network trained to nothing) or an error raised only at
the first save, after the training done before it.
"""
from __future__ import annotations

import numpy as np
import pytest

import minieye as me
from minieye import layers as L, losses, train

RNG = np.random.default_rng(0)
X = RNG.standard_normal((40, 3))
Y = np.tanh(X @ np.array([[1.0], [-2.0], [0.5]]))


def _net():
    return me.Sequential(L.Dense(3, 8, dtype="float64", seed=1), L.Tanh(), L.Dense(8, 1, dtype="float64", seed=2))


def _problem(**kwargs):
    return train.Problem(_net(), losses.MSE(), X, Y, **kwargs)


@pytest.mark.parametrize("make, message", [
    (lambda: train.Problem(_net(), losses.MSE(), X[:0], Y[:0]), r"inputs\[0\] with at least one row.*\(0, 3\)"),
    (lambda: train.Problem(_net(), losses.MSE(), X, Y, params=[me.Parameter(np.ones(3))]),
     r"params of the network or the loss; got params\[0\] \('param'\) is in neither"),
    (lambda: train.Problem(_net(), losses.MSE(), X).evaluate(),
     r"2 arrays for the loss .* as MSE takes; got 1\. targets=None gives the loss the prediction alone"),
    (lambda: train.Problem(_net(), L.Dense(1, 1), X, Y).evaluate(), r"1 arrays for the loss.*Dense\(1->1\).*got 2"),
    (lambda: train.Problem(_net(), L.ReLU(), X).evaluate(),
     r"the loss ReLU to return a 0-d array \(a scalar\); got an array of shape \(40, 1\)"),
    (lambda: train.Problem(_net(), losses.MSE(), None, Y).evaluate(),
     r"1 inputs, as Sequential\[3\] takes; got 0\. pass the data as inputs"),
])
def test_a_problem_that_cannot_work_is_refused_naming_what_is_wrong(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_params_may_be_one_parameter_given_alone():
    net = _net()
    problem = train.Problem(net, losses.MSE(), X, Y, params=net[0].weight)
    assert problem.params == [net[0].weight]


def test_one_monitor_given_alone_is_used_and_a_function_gets_the_fix():
    history = train.History()
    result = train.Trainer(_problem(), monitors=history).run(max_iterations=3)
    assert len(history.records) == result.iterations == 3
    with pytest.raises(TypeError, match=r"monitors a sequence of train monitors.*train\.Callback\(fn\)"):
        train.Trainer(_problem(), monitors=lambda trainer, record: None)
    with pytest.raises(TypeError, match=r"monitors\[0\] is .*train\.Callback\(fn\)"):
        train.Trainer(_problem(), monitors=[lambda trainer, record: None])


@pytest.mark.parametrize("make", [lambda folder: train.Checkpoint(folder / "missing" / "run.ckpt", every=5),
                                  lambda folder: train.History(folder / "missing" / "log.csv", every=5)])
def test_a_monitor_that_cannot_save_fails_when_the_run_starts_not_at_its_first_save(tmp_path, make):
    trainer = train.Trainer(_problem(), train.Adam(), train.FixedStep(0.01), monitors=[make(tmp_path)])
    with pytest.raises(FileNotFoundError, match=r"cannot write '.*missing.*': the folder '.*missing' does not exist"):
        trainer.run(max_iterations=20)
    assert trainer.iteration == 0  # no training was done (and lost) before the error


def test_accuracy_refuses_a_single_score_and_targets_that_are_not_classes():
    accuracy = train.Accuracy()
    with pytest.raises(ValueError, match=r"C >= 2 classes; got shape \(40, 1\).*always class 0"):
        accuracy(Y, Y)  # a regression's output and targets: was 1.0
    scores = RNG.standard_normal((40, 3))
    with pytest.raises(ValueError, match=r"one-hot or class probabilities.*give integer labels"):
        accuracy(scores, RNG.standard_normal((40, 3)))
    labels = scores.argmax(axis=1)
    assert accuracy(scores, labels) == accuracy(scores, np.eye(3)[labels]) == 1.0
    assert accuracy(scores, np.full((40, 3), 1 / 3) + np.eye(3)[labels] * 1e-3 - 1e-3 / 3) == 1.0


@pytest.mark.parametrize("rows, batch_size", [(40, None), (40, 4), (20, 8)])
def test_resuming_with_other_data_or_batches_is_refused_naming_both(tmp_path, rows, batch_size):
    """Before, the saved batch order was applied to other data: 'row indices in [0, 20); got 4 to 39',
    or a silent run on another batching."""
    trainer = train.Trainer(_problem(batch_size=8), train.Adam(), train.FixedStep(0.01))
    trainer.run(max_iterations=5)
    train.save_checkpoint(trainer, tmp_path / "run.ckpt")
    other = train.Trainer(train.Problem(_net(), losses.MSE(), X[:rows], Y[:rows], batch_size=batch_size),
                          train.Adam(), train.FixedStep(0.01))
    with pytest.raises(ValueError, match=r"batch_size=8 and 40 rows as in the checkpoint.*"
                                         rf"got batch_size={batch_size} and {rows if batch_size else None} rows"):
        other.run(max_iterations=8, resume_from=tmp_path / "run.ckpt")
    same = train.Trainer(_problem(batch_size=8), train.Adam(), train.FixedStep(0.01))
    assert same.run(max_iterations=8, resume_from=tmp_path / "run.ckpt").iterations == 8


def test_a_metric_returning_an_array_is_refused_naming_it():
    def error(prediction, y):
        return np.abs(prediction - y)  # forgot the mean

    with pytest.raises(ValueError, match=r"metric 'error' to return one number; got ndarray of shape \(40, 1\)"):
        train.evaluate(_net(), losses.MSE(), X, Y, metrics=[error])


def test_the_history_json_of_a_run_stopped_on_nan_data_is_strict_json(tmp_path):
    import json
    bad = X.copy()
    bad[2, 1] = np.nan
    result = train.Trainer(train.Problem(_net(), losses.MSE(), bad, Y),
                           monitors=[train.History(tmp_path / "log.json")]).run(max_iterations=3)
    assert result.stop_reason == "non_finite" and np.isnan(result.loss)

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    doc = json.loads((tmp_path / "log.json").read_text(), parse_constant=refuse)  # was: NaN
    assert doc["loss"] is None and doc["stop_reason"] == "non_finite"


def test_monitor_settings_are_checked_when_made_and_one_metric_may_be_given_alone():
    with pytest.raises(TypeError, match=r"Validation: expected restore_best True or False; got restore_best='no'"):
        train.Validation(X, Y, restore_best="no")  # bool('no') is True
    with pytest.raises(ValueError, match=r"Validation: expected batch_size a positive integer; got batch_size=0"):
        train.Validation(X, Y, batch_size=0)
    with pytest.raises(TypeError, match=r"Validation: expected loss a minieye loss layer.*pass an instance"):
        train.Validation(X, Y, loss=losses.MSE)
    with pytest.raises(TypeError, match=r"Checkpoint: expected at_end True or False"):
        train.Checkpoint("run.ckpt", at_end="no")

    def mean_error(prediction, y):
        return float(np.abs(prediction - y).mean())

    assert set(train.evaluate(_net(), losses.MSE(), X, Y, metrics=mean_error)) == {"loss", "mean_error"}
    assert train.Validation(X, Y, metrics=mean_error).metrics == (mean_error,)
