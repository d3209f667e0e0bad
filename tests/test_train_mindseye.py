"""MindsEye's three learning problems, solved by L-BFGS in float64 to below 1e-9.

For a component C, a random frozen copy T (other weights) produces targets
``Y = T(X)`` from random inputs X. Then the trainer must

* learn the weights: fit C's weights so that ``C(X) = Y``;
* learn the input:   fit a Source ``S`` so that ``T(S) = Y`` (T frozen);
* learn both:        fit S and C's weights together.

Each problem has an exact solution (the truth), so the loss must reach ~0.
"""
from __future__ import annotations

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train

F64 = "float64"


def dense(seed):
    return me.Sequential(layers.Dense(5, 3, dtype=F64, seed=seed))


def dense_tanh(seed):
    return me.Sequential(layers.Dense(5, 3, dtype=F64, seed=seed), layers.Tanh())


def dense_tanh_dense(seed):
    return me.Sequential(layers.Dense(4, 6, dtype=F64, seed=seed), layers.Tanh(),
                         layers.Dense(6, 3, dtype=F64, seed=seed + 100))


def conv(seed):
    return me.Sequential(layers.Conv2D(2, 3, 3, padding=1, dtype=F64, rng=np.random.default_rng(seed)))


# Sizes where the truth is reachable from a random start (with many more samples a
# two-layer tanh net has slow saddles: SciPy's L-BFGS-B stalls there just the same).
COMPONENTS = {
    "dense": (dense, (12, 5)),
    "dense-tanh": (dense_tanh, (12, 5)),
    "dense-tanh-dense": (dense_tanh_dense, (8, 4)),
    "conv2d": (conv, (1, 2, 6, 6)),
}


def targets(make, input_shape):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(input_shape)
    truth = make(seed=1).freeze()
    return x, truth(x), rng


def learn_weights(make, input_shape):
    x, y, _ = targets(make, input_shape)
    learner = make(seed=2)
    return train.Problem(learner, losses.MSE(), x, y)


def learn_input(make, input_shape):
    x, y, rng = targets(make, input_shape)
    frozen = make(seed=1).freeze()
    source = layers.Source(value=rng.standard_normal(input_shape), dtype=F64)
    return train.Problem(me.Sequential(source, frozen), losses.MSE(), (), y)


def learn_both(make, input_shape):
    x, y, rng = targets(make, input_shape)
    g = me.Graph()  # a source-only Graph: no inputs at all
    source = g.add(layers.Source(value=rng.standard_normal(input_shape), dtype=F64))
    g.output(g.add(make(seed=2), source))
    return train.Problem(g, losses.MSE(), None, y)


@pytest.mark.parametrize("kind", [learn_weights, learn_input, learn_both], ids=lambda f: f.__name__)
@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_lbfgs_solves_the_three_learning_problems(component, kind):
    make, input_shape = COMPONENTS[component]
    problem = kind(make, input_shape)
    result = train.Trainer(problem, train.LBFGS(), train.ArmijoWolfe()).run(max_iterations=1000, target_loss=1e-12)
    assert result.loss < 1e-9, (component, kind.__name__, result.loss, result.message)
    value, _ = problem.evaluate()
    assert value == result.loss  # the parameters hold the reported point


def test_learn_input_with_an_explicit_parameter_list():
    # the network's weights are unfrozen, but only the source is chosen: weights must not move
    x, y, rng = targets(dense, (12, 5))
    source = layers.Source(value=rng.standard_normal((12, 5)), dtype=F64)
    net = dense(seed=1)
    before = [p.value.copy() for p in net.parameters()]
    problem = train.Problem(me.Sequential(source, net), losses.MSE(), (), y, params=[source.value])
    result = train.Trainer(problem).run(max_iterations=200, target_loss=1e-12)
    assert result.loss < 1e-9
    assert all(np.array_equal(a, p.value) for a, p in zip(before, net.parameters()))
