"""train.Problem: several inputs and outputs, evaluation counts, weighted losses, images, subclasses."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train
from minieye.core import Layer
from tests.train_toys import rosenbrock


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
    # mini-batches with a fixed step: one forward and one backward per batch; the step's value is
    # checked on the next batch, whose evaluation the next iteration starts from
    counter.forwards = counter.backwards = 0
    start = [p.value.copy() for p in net.parameters()]
    problem = train.Problem(net, losses.MSE(), x, y, batch_size=16, rng=0)
    result = train.Trainer(problem, train.Adam(), train.FixedStep(0.01)).run(max_iterations=10)
    assert counter.backwards == 10 and counter.forwards == 11 == result.evaluations
    assert all(math.isfinite(r.gradient_norm) and r.gradient_norm > 0 for r in result.history)
    ahead = problem.get_vector()
    # the same trajectory as checking each step on its own batch (the former scheme, 2 forwards each)
    for p, value in zip(net.parameters(), start):
        p.value[...] = value

    class CheckingStep(train.FixedStep):
        compares_values = True

    counter.forwards = counter.backwards = 0
    problem = train.Problem(net, losses.MSE(), x, y, batch_size=16, rng=0)
    result = train.Trainer(problem, train.Adam(), CheckingStep(0.01)).run(max_iterations=10)
    assert counter.backwards == 10 and counter.forwards == 20 == result.evaluations
    np.testing.assert_array_equal(problem.get_vector(), ahead)


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


class FrozenSpy(Layer):
    """y = x @ w.T, recording at each backward call whether ``w`` was frozen then."""

    def __init__(self, seed):
        super().__init__()
        self.w = me.Parameter(np.random.default_rng(seed).standard_normal((3, 3)), name="w", dtype="float64")
        self.seen = []

    def forward(self, x):
        def backward(dy, deltas):
            self.seen.append(self.w.frozen)
            deltas.add(self.w, dy.T @ x)
            return dy @ self.w.value
        return x @ self.w.value.T, backward


def test_params_subset_freezes_the_others_only_while_it_evaluates():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 3))
    first, second, third = FrozenSpy(1), FrozenSpy(2), FrozenSpy(3)
    net = me.Sequential(first, layers.Tanh(), second, third)
    full = train.Problem(net, losses.MSE(), x, y).evaluate()[1]
    problem = train.Problem(net, losses.MSE(), x, y, params=[second.w])
    for spy in (first, second, third):
        spy.seen.clear()
    value, deltas = problem.evaluate()
    assert list(deltas) == [second.w]  # only the chosen parameter's gradient was computed
    np.testing.assert_allclose(deltas[second.w], full[second.w], rtol=1e-13)
    assert first.seen == [] and third.seen == [True] and second.seen == [False]  # first: no backward at all
    assert not any(p.frozen for p in net.parameters())  # restored
    third.w.frozen = True  # a user's own frozen flag stays as it was
    problem.evaluate()
    assert third.w.frozen and not first.w.frozen
    third.w.frozen = False
    good, third.w.value = third.w.value, np.zeros((3, 4))
    with pytest.raises(ValueError):  # restored also when the pass raises (a shape error in matmul)
        problem.evaluate()
    third.w.value = good
    assert not any(p.frozen for p in net.parameters())
    x_before = problem.get_vector()
    result = train.Trainer(problem).run(max_iterations=5)
    assert result.loss < value and not np.array_equal(problem.get_vector(), x_before)
    assert not any(p.frozen for p in net.parameters())


def test_params_subsets_in_two_threads_do_not_see_each_others_selection():
    # held_frozen is per thread (context): two Problems on one network, each optimising a
    # different layer, evaluated concurrently, get exactly their single-threaded gradients
    import threading
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 3))
    first, second = FrozenSpy(1), FrozenSpy(2)
    net = me.Sequential(first, layers.Tanh(), second)
    problems = [train.Problem(net, losses.MSE(), x, y, params=[p]) for p in (first.w, second.w)]
    expected = [dict(pr.evaluate()[1].items()) for pr in problems]
    start, errors = threading.Barrier(2), []

    def work(i):
        start.wait()
        for _ in range(200):
            deltas = problems[i].evaluate()[1]
            if list(deltas) != list(expected[i]) or not all(np.array_equal(deltas[p], g) for p, g in expected[i].items()):
                errors.append(i)
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert not first.w.frozen and not second.w.frozen and not first.w._frozen


def test_named_arrays_names_inputs_and_targets_as_messages_do():
    x, y1, y2 = np.zeros((4, 2)), np.zeros((4, 1)), np.ones((4, 3))
    net = layers.Dense(2, 1, dtype="float64", seed=0)
    single = train.Problem(net, losses.MSE(), x, y1).named_arrays()
    assert [name for name, _ in single] == ["inputs[0]", "targets"]
    np.testing.assert_array_equal(single[0][1], x)
    several = train.Problem(net, losses.MSE(), (x,), (y1, y2)).named_arrays()
    assert [name for name, _ in several] == ["inputs[0]", "targets[0]", "targets[1]"]
    np.testing.assert_array_equal(several[2][1], y2)
    assert train.Problem(layers.Source(value=np.zeros(3)), layers.Sum(), None, None).named_arrays() == []
    assert train.Problem(net, losses.MSE(), (x,), (y1, y2[:3])).row_counts() == {
        "inputs[0]": 4, "targets[0]": 4, "targets[1]": 3}


def test_a_list_of_labels_is_one_array_and_a_wrong_number_of_inputs_is_named():
    """PyTorch and Keras users pass labels as plain lists; a list of arrays is one per input."""
    net = layers.Dense(3, 2, dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((3, 3))
    as_list = train.Problem(net, losses.SoftmaxCrossEntropy(), x, [0, 1, 1]).evaluate()[0]
    assert as_list == train.Problem(net, losses.SoftmaxCrossEntropy(), x, np.array([0, 1, 1])).evaluate()[0]
    scores = train.evaluate(net, losses.SoftmaxCrossEntropy(), x, [0, 1, 1], metrics=[train.Accuracy()])
    assert scores["loss"] == pytest.approx(as_list, rel=1e-12)
    with pytest.raises(ValueError, match=r"Problem: expected 1 inputs, as Dense\(3->2\) takes; got 2\. a tuple or "
                                         r"list is read as one array per input"):
        train.Problem(net, losses.MSE(), [x, x], None)
    with pytest.raises(ValueError, match=r"train.predict: expected 1 inputs in x, as Dense\(3->2\) takes; got 3"):
        train.predict(net, [list(row) for row in x])
    with pytest.raises(ValueError, match=r"train.evaluate: expected 2 inputs to the loss \(1 prediction\(s\), then "
                                         r"the targets in y\), as SoftmaxCrossEntropy takes; got 3"):
        train.evaluate(net, losses.SoftmaxCrossEntropy(), x, (np.zeros(3, int), np.zeros(3, int)))


def test_a_batch_of_bad_row_indices_is_a_clear_error():
    net = me.Sequential(layers.Dense(3, 2, dtype="float64", seed=1))
    problem = train.Problem(net, losses.MSE(), np.ones((5, 3)), np.ones((5, 2)))
    assert problem.evaluate_vector(np.array([4, 0, 4]))[0] == pytest.approx(problem.evaluate_vector()[0])
    for batch, message in ((np.array([], int), "non-empty 1-D array of integer row indices"),
                           (np.array([0.5]), "dtype float64"), (np.array([[1]]), r"shape \(1, 1\)"),
                           (np.array([1, 5]), r"row indices in \[0, 5\); got indices from 1 to 5"),
                           (np.array([-1]), "indices from -1 to -1")):
        with pytest.raises(ValueError, match=message):
            problem.evaluate_vector(batch)
