"""Values, routing and errors of the basic losses (gradients are in the layer table)."""
import numpy as np
import pytest

import minieye as me
from minieye import layers as L
from minieye import losses

RNG = np.random.default_rng(3)


def test_mse_and_l1_values_and_dtypes():
    p, t = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 2.0], [5.0, 4.0]])
    assert losses.MSE()(p, t) == pytest.approx((1 + 4) / 4)
    assert losses.L1()(p, t) == pytest.approx((1 + 2) / 4)
    assert losses.MSE()(p, t).shape == ()
    assert losses.MSE()(p.astype(np.float32), t).dtype == np.float32
    value, backward = losses.MSE().forward(p, t)
    dp, dt = backward(np.array(2.0), me.DeltaSet())
    assert np.allclose(dp, 2 * 2 * (p - t) / 4) and np.allclose(dt, -dp)


def test_cross_entropy_matches_log_softmax_and_gives_no_label_gradient():
    logits, labels = RNG.normal(size=(4, 3)) * 5, np.array([0, 2, 1, 2])
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(4), labels].mean()
    value, backward = losses.SoftmaxCrossEntropy().forward(logits, labels)
    assert value == pytest.approx(expected)
    dz, dlabels = backward(1.0, me.DeltaSet())
    assert dlabels is None
    assert np.allclose(dz.sum(axis=1), 0)  # softmax minus one-hot sums to zero per row
    big = np.array([[1000.0, 0.0]])  # no overflow
    assert np.isfinite(losses.SoftmaxCrossEntropy()(big, np.array([1])))


def test_cross_entropy_per_pixel_equals_per_row():
    logits, labels = RNG.normal(size=(2, 3, 2, 2)), RNG.integers(0, 3, size=(2, 2, 2))
    rows = np.moveaxis(logits, 1, -1).reshape(-1, 3)
    per_pixel = losses.SoftmaxCrossEntropy()(logits, labels)
    assert per_pixel == pytest.approx(float(losses.SoftmaxCrossEntropy()(rows, labels.reshape(-1))))


@pytest.mark.parametrize("logits, labels, message", [
    (np.zeros((2, 3)), np.array([0, 3]), r"labels in \[0, 3\); got labels in \[0, 3\]"),
    (np.zeros((2, 3)), np.array([0, -1]), r"labels in \[0, 3\)"),
    (np.zeros((2, 3)), np.array([0, 1, 2]), r"labels of shape \(2,\) for logits of shape \(2, 3\)"),
    (np.zeros((2, 3, 4, 4)), np.zeros((2, 4)), r"labels of shape \(2, 4, 4\)"),
    (np.zeros((2, 3)), np.array([0.5, 1.0]), "integer class labels"),
    (np.zeros(3), np.array([0]), r"logits of shape \(N, C\)"),
])
def test_cross_entropy_refuses_bad_labels(logits, labels, message):
    with pytest.raises(ValueError, match="SoftmaxCrossEntropy forward: expected " + message):
        losses.SoftmaxCrossEntropy()(logits, labels)


def test_pair_losses_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match=r"MSE 'fit' forward: expected prediction and target of the same shape"):
        losses.MSE(name="fit")(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="complex"):
        losses.L1()(np.zeros(2, dtype=complex), np.zeros(2))


def test_arithmetic_builds_flat_weighted_sums():
    mse, l1 = losses.MSE(), losses.L1()
    combo = mse + 0.1 * l1
    assert isinstance(combo, losses.WeightedSum)
    assert combo.terms() == [(1.0, mse), (0.1, l1)]
    assert (2 * combo).weights == [2.0, 0.2]
    assert (combo - l1).weights == [1.0, 0.1, -1.0]
    assert (mse / 4).weights == [0.25] and (-mse).weights == [-1.0]
    assert sum([mse, l1]).terms() == [(1.0, mse), (1.0, l1)]
    p, t = RNG.normal(size=(3, 2)), RNG.normal(size=(3, 2))
    assert combo(p, t) == pytest.approx(float(mse(p, t)) + 0.1 * float(l1(p, t)))
    with pytest.raises(TypeError):
        mse + 1.0


def test_terms_receive_their_first_inputs():
    regularizer = me.Sequential(L.Square(), L.Sum(axis=(0, 1)))  # takes the prediction only
    objective = losses.MSE() + losses.WeightedSum([(0.5, regularizer)])  # a plain Layer has no arithmetic
    assert objective.n_inputs == 2
    p, t = RNG.normal(size=(3, 2)), RNG.normal(size=(3, 2))
    assert objective(p, t) == pytest.approx(float(losses.MSE()(p, t)) + 0.5 * (p ** 2).sum())
    value, backward = objective.forward(p, t)
    dp, dt = backward(1.0, me.DeltaSet())
    assert np.allclose(dp, 2 * (p - t) / p.size + p) and np.allclose(dt, -2 * (p - t) / p.size)
    only_regularizer = losses.WeightedSum([(2.0, regularizer)])
    assert only_regularizer.n_inputs == 1
    assert np.allclose(only_regularizer.forward(p)[1](1.0, me.DeltaSet()), 4 * p)


def test_weighted_sum_refuses_bad_terms_and_inputs():
    with pytest.raises(ValueError, match="terms as \\(weight, loss\\) pairs"):
        losses.WeightedSum([(1.0, "mse")])
    for weight in (True, np.nan, "2"):  # weights as checks.check_real takes them: a bool is not a number
        with pytest.raises(ValueError, match="term 0's weight a finite number"):
            losses.WeightedSum([(weight, losses.MSE())])
    with pytest.raises(ValueError, match="at least one"):
        losses.WeightedSum([])
    with pytest.raises(ValueError, match="expected 2 inputs; got 1"):
        (losses.MSE() + losses.L1())(np.zeros(3))
    with pytest.raises(ValueError, match="0-d array"):
        losses.WeightedSum([(1.0, L.Square())])(np.zeros(3))


def test_loss_backward_wants_a_scalar():
    value, backward = losses.MSE().forward(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="scalar dy"):
        backward(np.ones(3), me.DeltaSet())
