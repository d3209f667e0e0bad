"""predict and evaluate in evaluation mode and in batches; Accuracy; per-epoch validation,
early stopping on a metric, the per-epoch progress bar."""
from __future__ import annotations

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train
from minieye.core import Layer


class _Moody(Layer):
    """Adds 1 in training mode, nothing in evaluation mode (what Dropout/BatchNorm do, in miniature)."""

    def forward(self, x):
        return (x + 1.0 if self.training else x), (lambda dy, deltas: dy)


def classifier(seed=1):
    return me.Sequential(layers.Dense(4, 8, dtype="float64", seed=seed), layers.Tanh(),
                         layers.Dense(8, 3, dtype="float64", seed=seed + 1))


def blobs(n=90, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 4)) * 0.6 + np.eye(3, 4)[labels] * 2.0
    return x, labels


def test_predict_in_batches_equals_one_pass_and_handles_several_inputs():
    net = classifier()
    x, _ = blobs(23)
    whole = net(x)
    for size in (1, 5, 23, 100):
        np.testing.assert_allclose(train.predict(net, x, batch_size=size), whole, rtol=1e-13, atol=1e-15)
    assert train.predict(net, x[:0], batch_size=4).shape == (0, 3)
    graph = me.Graph()
    a, b = graph.input(), graph.input()
    graph.output(graph.add(layers.Add(), a, b))
    np.testing.assert_array_equal(train.predict(graph, (x, 2 * x), batch_size=4), 3 * x)
    with pytest.raises(ValueError, match="rows"):
        train.predict(graph, (x, x[:5]))
    source = layers.Source(value=np.arange(3.0))  # no inputs: Validation on an image being learned
    np.testing.assert_array_equal(train.predict(source, ()), np.arange(3.0))
    assert train.evaluate(source, losses.MSE(), (), np.zeros(3)) == {"loss": 5.0 / 3.0}
    with pytest.raises(ValueError, match="batch_size"):
        train.predict(net, x, batch_size=0)
    with pytest.raises(TypeError, match=r"instance, not the class: ReLU\(...\)"):
        train.predict(layers.ReLU, x)


def test_predict_and_evaluate_use_evaluation_mode_and_restore_the_mode():
    moody = _Moody()
    x = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(train.predict(moody, x, batch_size=2), x)
    assert moody.training is True
    moody.eval()
    train.predict(moody, x)
    assert moody.training is False
    moody.train()
    scores = train.evaluate(moody, losses.MSE(), x, x)
    assert scores == {"loss": 0.0} and moody.training is True
    # mixed modes (a layer held in evaluation mode while fine-tuning the rest) come back as they were
    held, free = _Moody().eval(), _Moody()
    net = me.Sequential(held, free)
    np.testing.assert_array_equal(train.predict(net, x), x)
    assert (held.training, free.training, net.training) == (False, True, True)


def test_evaluate_loss_and_metrics_match_a_direct_computation():
    net = classifier()
    x, labels = blobs()
    loss = losses.SoftmaxCrossEntropy()

    def top_two(prediction, y):
        return float(np.mean((np.argsort(prediction, axis=1)[:, -2:] == y[:, None]).any(axis=1)))

    scores = train.evaluate(net, loss, x, labels, metrics=[train.Accuracy(), top_two], batch_size=16)
    prediction = net(x)
    assert scores["loss"] == pytest.approx(float(loss(prediction, labels)), rel=1e-12)
    assert scores["accuracy"] == np.mean(prediction.argmax(axis=1) == labels)
    assert scores["top_two"] >= scores["accuracy"]
    assert set(train.evaluate(net, None, x, labels, metrics=[train.Accuracy()])) == {"accuracy"}
    with pytest.raises(TypeError, match="instance"):
        train.evaluate(net, loss, x, labels, metrics=[train.Accuracy])
    with pytest.raises(TypeError, match=r"instance, not the class: MSE\(...\)"):
        train.evaluate(net, losses.MSE, x, labels)


def test_accuracy_on_labels_one_hot_and_pixels():
    accuracy = train.Accuracy()
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert accuracy(scores, np.array([1, 0, 0, 0])) == 0.75
    assert accuracy(scores, np.eye(2)[[1, 0, 0, 0]]) == 0.75
    pixels = np.zeros((2, 3, 4, 5))
    pixels[:, 2] = 1.0
    truth = np.full((2, 4, 5), 2)
    truth[0, 0, 0] = 1
    assert accuracy(pixels, truth) == pytest.approx(39 / 40)
    with pytest.raises(ValueError, match=r"targets of shape \(4,\)"):
        accuracy(scores, np.array([1, 0]))
    with pytest.raises(ValueError, match="integer class labels"):
        accuracy(scores, np.array([0.5, 0, 0, 1]))
    with pytest.raises(ValueError, match="class scores"):
        accuracy(np.zeros(4), np.zeros(4, dtype=int))


def test_per_epoch_validation_fills_the_history_and_the_progress_bar(capsys, tmp_path):
    pytest.importorskip("tqdm")
    import json

    x, labels = blobs(120)
    net = classifier()
    problem = train.Problem(net, losses.SoftmaxCrossEntropy(), x[:90], labels[:90], batch_size=32)
    validation = train.Validation(x[90:], labels[90:], every="epoch", metrics=[train.Accuracy()],
                                  watch="accuracy", patience=10)
    log = train.History(tmp_path / "log.json")  # before Validation in the list: it still sees val_*
    trainer = train.Trainer(problem, train.Adam(), train.FixedStep(0.02), [train.ProgressBar("fit"), log, validation])
    result = trainer.run(epochs=4)
    assert json.loads((tmp_path / "log.json").read_text())["epochs"] == result.epoch_history
    assert result.stop_reason == "epochs" and len(result.epoch_history) == 4
    last = result.epoch_history[-1]
    assert set(last) == {"epoch", "iteration", "loss", "val_loss", "val_accuracy"}
    assert result.curve("val_accuracy")[-1] > 0.9 and result.curve("val_loss")[-1] < result.curve("val_loss")[0]
    assert validation.scores[-1] == {"loss": last["val_loss"], "accuracy": last["val_accuracy"]}
    assert len(validation.scores) == 5  # the starting point, then one check per epoch
    err = capsys.readouterr().err
    assert "fit: epoch 1/4" in err and "fit: epoch 4/4" in err
    assert f"val_accuracy={last['val_accuracy']:.4g}" in err and "(epochs)" in err


def test_early_stopping_on_a_metric_follows_its_direction():
    x, labels = blobs(60)
    calls = []

    def shrinking(prediction, y):  # gets worse at every check when greater is better
        calls.append(1)
        return -float(len(calls))

    for greater, expected in ((True, "monitor"), (False, "epochs")):
        shrinking.greater_is_better = greater
        calls.clear()
        problem = train.Problem(classifier(), losses.SoftmaxCrossEntropy(), x, labels, batch_size=20)
        validation = train.Validation(x, labels, every="epoch", metrics=[shrinking], watch="shrinking",
                                      patience=2, restore_best=True)
        result = train.Trainer(problem, train.Adam(), train.FixedStep(0.01), [validation]).run(epochs=6)
        assert result.stop_reason == expected
        if greater:
            assert result.iterations == 6 and "validation shrinking" in result.message  # 2 epochs of 3 batches
            assert validation.best_iteration == 0 and result.notes["validation"]["best_score"] == -1.0
            np.testing.assert_array_equal(problem.get_vector(), validation.best_x)
    with pytest.raises(ValueError, match="watch one of"):
        train.Validation(x, labels, watch="accuracy")


def test_validation_checks_per_epoch_with_mini_batches_and_per_iteration_without():
    x, labels = blobs(60)
    for batch_size, checks in ((20, 1 + 2), (None, 1 + 4)):  # 2 epochs of 3 batches; 4 full-batch iterations
        problem = train.Problem(classifier(), losses.SoftmaxCrossEntropy(), x, labels, batch_size=batch_size)
        validation = train.Validation(x, labels, patience=100)  # every="auto"
        trainer = train.Trainer(problem, train.Adam(), train.FixedStep(0.01), [validation])
        trainer.run(epochs=2) if batch_size else trainer.run(max_iterations=4)
        assert len(validation.scores) == checks
    with pytest.raises(ValueError, match="every 'auto', 'epoch' or a positive integer"):
        train.Validation(x, labels, every="sometimes")
