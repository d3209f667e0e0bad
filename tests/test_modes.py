"""Training and evaluation modes: propagation through networks, Dropout masks, BatchNorm's
running statistics, what io keeps of both, and that the harness catches a wrong batch-norm backward."""
import numpy as np
import pytest

import minieye as me
from minieye import layers as L
from minieye.randomness import fixed_noise
from minieye.testing import check_gradients, check_layer
from minieye.testing.roundtrip import check_roundtrip

RNG = np.random.default_rng(0)


def _nested():
    inner = me.Sequential(L.Dense(4, 4, seed=0), L.Dropout(0.5), name="inner")
    g = me.Graph()
    x = g.input()
    g.output(g.add(L.BatchNorm1D(4), g.add(inner, x)))
    return me.Sequential(g, L.ReLU(), L.Dropout(0.2)), inner, g


def test_train_and_eval_return_the_layer_and_reach_every_layer_inside():
    net, inner, g = _nested()
    everything = [net, g, inner, *inner.layers, *g.layers, *net.layers]
    assert all(layer.training for layer in everything)
    assert net.eval() is net
    assert not any(layer.training for layer in everything)
    assert net.train() is net and all(layer.training for layer in everything)
    assert inner.train(False) is inner and not inner[1].training and net.training and g.layers[1].training
    with pytest.raises(TypeError, match=r"train: expected mode a bool; got 'eval'"):
        net.train("eval")


def test_dropout_zeroes_a_fraction_p_and_scales_the_rest_and_is_the_identity_in_eval():
    x = np.ones((200, 50), dtype=np.float32)
    drop = L.Dropout(0.3, seed=1)
    y, backward = drop.forward(x)
    assert y.dtype == np.float32 and set(np.unique(y)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.01
    dy = RNG.normal(size=x.shape).astype(np.float32)
    np.testing.assert_array_equal(backward(dy, me.DeltaSet()), dy * y)     # the forward's mask
    assert not np.array_equal(drop(x), y)                                  # a new mask each forward
    np.testing.assert_array_equal(L.Dropout(0.3, seed=1).forward(x)[0], y)  # same seed, same masks
    assert np.array_equal(drop.eval()(x), x) and np.array_equal(drop.forward(x)[1](dy, None), dy)
    assert not L.Dropout(1.0).forward(x)[0].any()
    with pytest.raises(ValueError, match=r"Dropout: expected p in \[0, 1\]; got p=1.5"):
        L.Dropout(1.5)


def test_a_dropout_backward_keeps_its_mask_after_other_forwards():
    drop = L.Dropout(0.5, seed=3)
    x = RNG.normal(size=(6, 7))
    y, backward = drop.forward(x)
    for _ in range(3):
        drop.forward(x)
    dx = backward(np.ones_like(y), me.DeltaSet())
    np.testing.assert_array_equal(dx != 0, y != 0)


def test_fixed_noise_gives_every_pass_the_same_masks_and_two_dropouts_different_ones():
    x = np.ones((4, 30))
    drop = L.Dropout(0.5)
    net = me.Sequential(drop, drop)       # one layer at two places: two draws per pass
    with fixed_noise(5):
        a, b = net(x), net(x)
        single = me.Sequential(L.Dropout(0.5, seed=9))(x)   # another object, the first draw of a pass
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 4.0} and not np.array_equal(a, single * single)  # second mask differs
    np.testing.assert_array_equal(a != 0, (single != 0) & (a != 0))  # ... and the first is the same
    with fixed_noise(6):
        assert not np.array_equal(net(x), a)
    with pytest.raises(ValueError, match="fixed_noise: expected seed an int >= 0"):
        with fixed_noise(-1):
            pass


def test_batch_norm_updates_running_statistics_in_training_forward_only():
    bn = L.BatchNorm2D(3, momentum=0.25, dtype="float64")
    x = RNG.normal(2.0, 3.0, size=(5, 3, 4, 4))
    y, backward = bn.forward(x)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean, 0.25 * mean)
    np.testing.assert_allclose(bn.running_var, 0.75 + 0.25 * var)
    assert bn.num_batches_tracked == 1 and bn.num_batches_tracked.dtype == np.int64
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)) / (x.var(axis=(0, 2, 3)) + 1e-5))
    saved = bn.running_mean.copy(), bn.running_var.copy()
    backward(np.ones_like(y), me.DeltaSet())                    # backward leaves them alone
    bn.eval()
    z = bn(x)
    for _ in range(2):
        np.testing.assert_array_equal(bn(x), z)                 # eval forwards are pure
    np.testing.assert_array_equal(bn.running_mean, saved[0])
    np.testing.assert_array_equal(bn.running_var, saved[1])
    expected = (x - saved[0][:, None, None]) / np.sqrt(saved[1][:, None, None] + 1e-5)
    np.testing.assert_allclose(z, expected, rtol=1e-12)
    np.testing.assert_allclose(bn.eval()(x[:1]), expected[:1], rtol=1e-12)   # one sample is fine in eval


def test_batch_norm_refuses_one_value_per_channel_in_training_and_wrong_shapes():
    with pytest.raises(ValueError, match=r"BatchNorm1D\(3\) forward: expected more than one value per channel "
                                         r"in training mode; got x.shape == \(1, 3\). use a larger batch, or eval"):
        L.BatchNorm1D(3)(np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"expected x of shape \(N, C, H, W\) with C == num_features \(3\); "
                                         r"got x.shape == \(2, 4, 5, 5\)"):
        L.BatchNorm2D(3)(np.ones((2, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"expected x of shape \(N, C\) or \(N, C, L\)"):
        L.BatchNorm1D(3)(np.ones((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="GroupNorm: expected num_channels divisible by num_groups"):
        L.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"LayerNorm\(4\) forward: expected x of shape \(..., 4\)"):
        L.LayerNorm(4)(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"momentum in \[0, 1\] or None"):
        L.BatchNorm1D(3, momentum=2.0)


def test_running_statistics_and_modes_are_saved_and_loaded(tmp_path):
    net = me.Sequential(L.Dense(3, 4, seed=0), L.BatchNorm1D(4), L.Dropout(0.3, seed=2), name="n")
    x = RNG.normal(size=(8, 3)).astype(np.float32)
    for _ in range(3):
        net.forward(x)
    net.eval()
    me.io.save(net, tmp_path / "bn.minieye")
    loaded = me.io.load(tmp_path / "bn.minieye")
    assert not any(layer.training for layer in [loaded, *loaded.layers])
    np.testing.assert_array_equal(loaded[1].running_mean, net[1].running_mean)
    np.testing.assert_array_equal(loaded[1].running_var, net[1].running_var)
    assert loaded[1].running_var.dtype == np.float32 and not np.all(net[1].running_var == 1)
    np.testing.assert_array_equal(loaded(x), net(x))
    check_roundtrip(L.BatchNorm2D(2, dtype="float64").eval(), RNG.normal(size=(2, 2, 3, 3)))


def test_a_version_1_file_loads_in_training_mode_and_damaged_buffers_are_refused(tmp_path):
    meta, arrays = me.io.encode(L.BatchNorm1D(2).eval())
    old = {**meta, "version": 1, "layers": [{k: v for k, v in r.items() if k not in ("training", "buffers")}
                                             for r in meta["layers"]]}
    with pytest.raises(ValueError, match=r"holds buffers \[\] but the layer has \['num_batches_tracked', 'running_mean'"):
        me.io.decode(old, arrays)
    dense = me.io.encode(L.Dense(2, 2, seed=0))
    old_dense = {**dense[0], "version": 1, "layers": [{k: v for k, v in r.items() if k != "training"}
                                                      for r in dense[0]["layers"]]}
    assert me.io.decode(old_dense, dense[1]).training
    arrays[meta["layers"][0]["buffers"]["running_var"]] = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"buffer 'running_var' was built with shape \(2,\) and dtype float32, "
                                         r"but the file holds shape \(3,\)"):
        me.io.decode(meta, arrays)


class _EvalFormulaInTraining(L.BatchNorm1D):
    """A deliberately wrong BatchNorm: in training mode its backward ignores that the batch
    statistics depend on x (the evaluation-mode formula)."""

    def forward(self, x):
        y, backward = super().forward(x)
        r = 1 / np.sqrt(x.var(axis=0) + self.eps)

        def wrong(dy, deltas):
            backward(dy, deltas)
            return dy * self.weight.value * r

        return y, wrong


def test_the_harness_catches_a_batch_norm_backward_that_misses_the_batch_statistics():
    layer = _EvalFormulaInTraining(3, dtype="float64")
    x = RNG.normal(size=(5, 3))
    with pytest.raises(AssertionError, match="input 0 .*culprit"):
        check_gradients(layer, x)
    check_layer(L.BatchNorm1D(3, dtype="float64"), x, batch_invariant=False)


def test_the_harness_sees_dropout_as_one_function_and_eval_buffers_as_fixed():
    check_layer(me.Sequential(L.Dense(4, 5, dtype="float64", seed=0), L.Dropout(0.5)), RNG.normal(size=(3, 4)),
                batch_invariant=False)

    class Leaky(L.BatchNorm1D):  # updates its statistics in evaluation mode too: caught
        def forward(self, x):
            self.running_mean += 1
            return super().forward(x)

    with pytest.raises(AssertionError, match="buffer 'running_mean' changed in a forward pass in evaluation mode"):
        check_layer(Leaky(3, dtype="float64").eval(), RNG.normal(size=(4, 3)))


def test_a_conv_net_with_batch_norm_and_dropout_trains_and_predicts_in_evaluation_mode():
    from sklearn.datasets import load_digits

    from minieye import losses, train

    images, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = (images[order] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), labels[order]
    net = me.Sequential(L.Conv2D(1, 16, 3, padding=1, seed=1), L.BatchNorm2D(16), L.ReLU(), L.MaxPool2D(2),
                        L.Flatten(), L.Dropout(0.3, seed=3), L.Dense(256, 10, seed=2))
    problem = train.Problem(net, losses.SoftmaxCrossEntropy(), images[:1400], labels[:1400], batch_size=64, rng=0)
    train.Trainer(problem, train.Adam(), train.FixedStep(0.003)).run(max_iterations=150)
    held_out = images[1400:]
    assert not np.array_equal(net(held_out), net(held_out))            # training mode: new masks each call
    scores = net.eval()(held_out)
    np.testing.assert_array_equal(net(held_out), scores)
    assert (scores.argmax(axis=1) == labels[1400:]).mean() > 0.96
    assert 0.05 < float(np.abs(net[1].running_mean).mean()) and not np.allclose(net[1].running_var, 1)
