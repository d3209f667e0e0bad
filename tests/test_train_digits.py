"""Every orientation trains a small classifier on scikit-learn's digits (shipped with it, no download)."""
from __future__ import annotations

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train

datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def digits():
    x, y = datasets.load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = (x[order] / 16.0).astype(np.float32), y[order]
    return x[:1400], y[:1400], x[1400:], y[1400:]


def classifier(graph=False):
    if not graph:
        return me.Sequential(layers.Dense(64, 32, seed=1), layers.ReLU(), layers.Dense(32, 10, seed=2))
    g = me.Graph()  # the same function as a Graph, with a skip connection
    x = g.input()
    h = g.add(layers.ReLU(), g.add(layers.Dense(64, 32, seed=1), x))
    g.output(g.add(layers.Add(), g.add(layers.Dense(32, 10, seed=2), h), g.add(layers.Dense(64, 10, seed=3), x)))
    return g


ORIENTATIONS = {
    "gradient-descent": (train.GradientDescent, train.Backtracking),
    "momentum": (train.Momentum, lambda: train.FixedStep(0.1)),
    "nesterov": (train.Nesterov, lambda: train.FixedStep(0.1)),
    "adam": (train.Adam, lambda: train.FixedStep(0.01)),
    "lbfgs": (train.LBFGS, train.ArmijoWolfe),
    "lbfgs-quadratic": (train.LBFGS, train.Quadratic),
    "qqn": (train.QQN, train.ArmijoWolfe),
    "owlqn": (lambda: train.OWLQN(l1=1e-4), train.Backtracking),
}


@pytest.mark.parametrize("name", sorted(ORIENTATIONS))
def test_each_orientation_reduces_the_loss(digits, name):
    x, y, _, _ = digits
    orientation, search = ORIENTATIONS[name]
    problem = train.Problem(classifier(graph=name == "lbfgs"), losses.SoftmaxCrossEntropy(), x[:400], y[:400])
    result = train.Trainer(problem, orientation(), search()).run(max_iterations=20)
    assert result.stop_reason == "max_iterations"
    assert result.loss < 0.3 * result.initial_loss, (name, result.initial_loss, result.loss)
    if name not in ("momentum", "nesterov", "adam"):  # line searches that insist on descent
        assert np.all(np.diff(result.losses) <= 0)


def test_adam_with_mini_batches_reaches_95_percent_on_held_out_digits(digits):
    x, y, x_test, y_test = digits
    net = classifier()
    problem = train.Problem(net, losses.SoftmaxCrossEntropy(), x, y, batch_size=64, rng=np.random.default_rng(0))
    result = train.Trainer(problem, train.Adam(), train.FixedStep(0.003)).run(max_iterations=600)
    accuracy = float((net(x_test).argmax(axis=1) == y_test).mean())
    assert accuracy >= 0.95, accuracy  # measured: 0.972
    assert result.loss < 0.2


def test_lbfgs_with_mini_batches_and_validation(digits):
    x, y, x_test, y_test = digits
    net = classifier()
    problem = train.Problem(net, losses.SoftmaxCrossEntropy(), x, y, batch_size=256, rng=np.random.default_rng(1))
    validation = train.Validation(x_test, y_test, every=5, patience=4)
    train.Trainer(problem, train.LBFGS(history=5), train.ArmijoWolfe(), monitors=[validation]).run(max_iterations=60)
    accuracy = float((net(x_test).argmax(axis=1) == y_test).mean())
    assert accuracy >= 0.93, accuracy
