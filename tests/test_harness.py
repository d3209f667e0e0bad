"""The harness must catch deliberately wrong layers and pass correct ones."""
import numpy as np
import pytest

import minieye as me
from minieye import layers as L
from minieye import losses
from minieye.checks import check_gradient
from minieye.core import DeltaSet, Layer, Parameter
from minieye.testing import (check_backward_twice, check_batch_invariance, check_config, check_empty_batch,
                             check_float32, check_frozen, check_gradients, check_interleaved, check_layer,
                             check_no_mutation, check_noncontiguous, check_rejects_bad_dy)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 4))


def dense(cls=L.Dense, **kw):
    layer = cls(4, 2, dtype="float64", seed=1, **kw)
    if layer.bias is not None:
        layer.bias.value[...] = [0.3, -0.2]
    return layer


class SignFlip(L.Dense):
    def forward(self, x):
        y, backward = super().forward(x)
        return y, lambda dy, deltas: -backward(dy, deltas)


class _Rewired(L.Dense):
    """Runs the correct backward into scratch, then hands on parameter gradients through ``pass_on``."""

    def pass_on(self, deltas, scratch):
        raise NotImplementedError

    def forward(self, x):
        y, backward = super().forward(x)

        def wrapped(dy, deltas):
            scratch = DeltaSet()
            dx = backward(dy, scratch)
            self.pass_on(deltas, scratch)
            return dx

        return y, wrapped


class MissingBiasGrad(_Rewired):
    def pass_on(self, deltas, scratch):
        deltas.add(self.weight, scratch[self.weight])


class WrongWeightScale(_Rewired):
    def pass_on(self, deltas, scratch):
        deltas.add(self.weight, 1.5 * scratch[self.weight])
        deltas.add(self.bias, scratch[self.bias])


class FrozenLeak(_Rewired):
    def pass_on(self, deltas, scratch):
        for p in (self.weight, self.bias):  # writes around DeltaSet.add, ignoring frozen
            deltas._deltas[p] = np.array(scratch.get(p, np.zeros_like(p.value)))


class MutatesInput(L.Dense):
    def forward(self, x):
        y, backward = super().forward(x)
        if isinstance(x, np.ndarray):
            x *= 1.0001
        return y, backward


class MutatesDy(L.Dense):
    def forward(self, x):
        y, backward = super().forward(x)

        def wrapped(dy, deltas):
            dx = backward(dy, deltas)
            dy *= 0.0
            return dx

        return y, wrapped


class BatchMixing(Layer):
    """Subtracts the batch mean: correct gradients, but sample i depends on sample j."""

    def forward(self, x):
        x = np.asarray(x)
        return x - x.mean(axis=0), lambda dy, deltas: dy - dy.mean(axis=0)


class Twice(Layer):
    """Doubles its input: correct, parameter-free, used as a well-behaved custom layer."""

    def forward(self, x):
        x = np.asarray(x)
        return 2 * x, lambda dy, deltas: 2 * check_gradient(dy, x.shape, x.dtype, "Twice backward")


class IgnoresDyShape(Layer):
    """Doubles its input but takes any dy: right gradients, yet a wrong dy broadcasts silently."""

    def forward(self, x):
        x = np.asarray(x)
        return 2 * x, lambda dy, deltas: 2 * np.asarray(dy)


class SumsDyFlat(Layer):
    """Per-sample sum whose backward refuses a long dy but indexes a short one: IndexError."""

    def forward(self, x):
        x = np.asarray(x)
        n = x.shape[0]

        def backward(dy, deltas):
            dy = np.asarray(dy).reshape(-1)
            if dy.size > n:
                raise ValueError("SumsDyFlat backward: dy too long")
            return np.stack([np.full(x.shape[1:], dy[i]) for i in range(n)])

        return x.sum(axis=1), backward


class EmptyBatchCrash(L.Dense):
    """A Dense whose bias gradient reshapes dy with -1 (fails for N = 0, as Conv's once did)."""

    def forward(self, x):
        y, backward = super().forward(x)

        def wrapped(dy, deltas):
            np.asarray(dy).reshape(np.shape(dy)[0], -1)
            return backward(dy, deltas)

        return y, wrapped


class Stateful(Layer):
    """Keeps the last input on the layer: a second forward before backward corrupts the first."""

    def forward(self, x):
        self.last = np.asarray(x)
        return self.last ** 2, lambda dy, deltas: 2 * self.last * dy


class MemoryOrder(Layer):
    """Reads its input in memory order: wrong for strided or column-major inputs."""

    def forward(self, x):
        x = np.asarray(x)
        y = x.ravel(order="K").reshape(x.shape) * 2  # memory order, not index order
        return y, lambda dy, deltas: 2 * np.asarray(dy)


class Float64Always(L.Dense):
    def forward(self, x):
        y, backward = super().forward(x)
        return y.astype(np.float64), backward


class BadConfig(L.Dense):
    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features}  # drops dtype


def test_correct_layers_pass():
    check_layer(dense(), X)
    check_layer(Twice(), X)
    check_layer(losses.MSE(), X, X + 1, batch_invariant=False)


def test_sign_flip_is_caught_and_the_input_named():
    with pytest.raises(AssertionError) as info:
        check_gradients(dense(SignFlip), X, rng=1)
    text = str(info.value)
    assert text.startswith("Dense(4->2) on inputs (3, 4) with parameters weight(2, 4), bias(2,)"), text
    culprits = [line for line in text.splitlines() if "culprit" in line]
    assert len(culprits) == 1 and "input 0" in culprits[0], text


def test_missing_bias_gradient_is_caught_and_named():
    with pytest.raises(AssertionError) as info:
        check_gradients(dense(MissingBiasGrad), X, rng=2)
    culprits = [line for line in str(info.value).splitlines() if "culprit" in line]
    assert len(culprits) == 1 and "'bias'" in culprits[0], str(info.value)
    assert "Dense(4->2)" in str(info.value)  # describe() of the class it extends


def test_wrong_scale_on_one_parameter_is_caught_with_numbers():
    with pytest.raises(AssertionError) as info:
        check_gradients(dense(WrongWeightScale), X, rng=3)
    text = str(info.value)
    weight_line = next(line for line in text.splitlines() if "'weight'" in line)
    assert "culprit" in weight_line
    analytic, numeric = (float(weight_line.split(word)[1].split(",")[0].split()[0]) for word in ("analytic", "numeric"))
    assert analytic == pytest.approx(1.5 * numeric, rel=1e-4)


def test_input_mutation_is_caught():
    with pytest.raises(AssertionError, match="input 0 was modified"):
        check_no_mutation(dense(MutatesInput), X)


def test_dy_mutation_is_caught():
    with pytest.raises(AssertionError, match="dy 0 was modified"):
        check_no_mutation(dense(MutatesDy), X)


def test_gradient_for_a_frozen_parameter_is_caught():
    with pytest.raises(AssertionError, match="frozen parameter 'weight' received a gradient"):
        check_frozen(dense(FrozenLeak), X)
    layer = dense()
    check_frozen(layer, X)
    assert not any(p.frozen for p in layer.parameters())  # flags restored


def test_batch_mixing_is_caught_but_its_gradient_is_right():
    check_gradients(BatchMixing(), X)
    with pytest.raises(AssertionError, match="sample 0 alone: output"):
        check_batch_invariance(BatchMixing(), X)


def test_per_call_state_on_the_layer_is_caught():
    with pytest.raises(AssertionError, match="forward on other inputs before backward"):
        check_interleaved(Stateful(), X)
    check_interleaved(dense(), X)


def test_memory_order_assumptions_are_caught():
    check_noncontiguous(Twice(), X)
    with pytest.raises(AssertionError, match="non-contiguous inputs: output"):
        check_noncontiguous(MemoryOrder(), X)


def test_float32_output_dtype_is_checked():
    with pytest.raises(AssertionError, match="float32 version gave output 0 of dtype float64"):
        check_float32(dense(Float64Always), X)


def test_config_round_trip_is_checked():
    with pytest.raises(AssertionError, match="rebuilt"):
        check_config(dense(BadConfig), X)


def test_backward_twice_doubles_deltas():
    check_backward_twice(dense(), X)

    class Accumulating(L.Dense):  # keeps a running total in its closure: the second call adds more
        def forward(self, x):
            y, backward = super().forward(x)
            calls = []

            def wrapped(dy, deltas):
                calls.append(1)
                return backward(np.asarray(dy) * len(calls), deltas)

            return y, wrapped

    with pytest.raises(AssertionError, match="second backward"):
        check_backward_twice(dense(Accumulating), X)


def test_float32_layers_are_refused_by_the_gradient_check():
    with pytest.raises(ValueError, match="dtype='float64'"):
        check_gradients(L.Dense(4, 2), X)
    with pytest.raises(TypeError, match=r"needs a layer instance.*pass Dense\(\.\.\.\)"):
        check_gradients(L.Dense, X)


def test_a_layer_whose_config_misses_a_constructor_argument_is_told_what_config_is_for():
    class Gain(me.Layer):
        def __init__(self, k):
            super().__init__()
            self.k = k

        def forward(self, x):
            return x * self.k, lambda dy, deltas: dy * self.k

    with pytest.raises(AssertionError, match=r"type\(layer\)\(\*\*layer\.config\(\)\) fails .*'k'.*"
                                             r"constructor's keyword arguments"):
        check_config(Gain(2.0), X)


def test_nondiff_inputs_and_several_inputs():
    logits, labels = RNG.normal(size=(3, 4)), np.array([0, 3, 1])
    check_layer(losses.SoftmaxCrossEntropy(), logits, labels, nondiff=(1,), batch_invariant=False)
    check_layer(L.Multiply(), X, RNG.normal(size=(3, 4)))


def test_custom_layer_with_two_inputs_and_a_parameter():
    class Gate(Layer):
        n_inputs = 2

        def __init__(self, dtype="float64", name=None):
            super().__init__(name)
            self.dtype = np.dtype(dtype)
            self.w = Parameter(np.linspace(-1, 1, 4), name="w", dtype=dtype)

        def config(self):
            return {"dtype": self.dtype.name, **super().config()}

        def forward(self, a, b):
            a, b = np.asarray(a, self.dtype), np.asarray(b, self.dtype)
            w = self.w
            y = np.tanh(a * w.value) * b

            def backward(dy, deltas):
                t = np.tanh(a * w.value)
                g = dy * b * (1 - t * t)
                deltas.add(w, (g * a).sum(axis=0))
                return g * w.value, dy * t

            return y, backward

    check_layer(Gate(), X, RNG.normal(size=(3, 4)))


def test_networks_go_through_the_harness():
    net = me.Sequential(dense(), L.Tanh(), L.Dense(2, 3, dtype="float64", seed=2))
    check_layer(net, X)


def test_a_small_wrong_part_is_not_hidden_by_a_large_right_one():
    class TinyBiasWrong(_Rewired):
        def pass_on(self, deltas, scratch):
            deltas.add(self.weight, scratch[self.weight])
            deltas.add(self.bias, 1.01 * scratch[self.bias])

    big = RNG.normal(size=(3, 4)) * 1e4  # the weight's contribution dwarfs the bias's
    with pytest.raises(AssertionError) as info:
        check_gradients(dense(TinyBiasWrong), big, rng=4)
    culprits = [line for line in str(info.value).splitlines() if "culprit" in line]
    assert len(culprits) == 1 and "'bias'" in culprits[0], str(info.value)


def test_a_backward_that_ignores_dy_shape_is_caught():
    with pytest.raises(AssertionError, match=r"IgnoresDyShape on inputs \(3, 4\): backward accepted dy 0 of shape"):
        check_rejects_bad_dy(IgnoresDyShape(), X)
    with pytest.raises(AssertionError, match="backward accepted dy"):
        check_layer(IgnoresDyShape(), X)
    check_rejects_bad_dy(Twice(), X)  # the same layer checking dy passes


def test_a_backward_failing_on_a_bad_dy_with_another_error_is_caught():
    with pytest.raises(AssertionError, match=r"raised IndexError .* not a ValueError naming the layer"):
        check_rejects_bad_dy(SumsDyFlat(), X)


def test_a_loss_given_a_vector_dy_must_refuse_it():
    check_rejects_bad_dy(losses.MSE(), X, X + 1)

    class LaxLoss(Layer):
        n_inputs = 2

        def forward(self, p, t):
            d = np.asarray(p) - np.asarray(t)
            return np.asarray(np.vdot(d, d)), lambda dy, deltas: (2 * d * dy, -2 * d * dy)

    with pytest.raises(AssertionError, match=r"accepted dy 0 of shape \(2,\) for an output of shape \(\)"):
        check_rejects_bad_dy(LaxLoss(), X[:, :1], X[:, :1])


def test_an_empty_batch_crash_is_caught():
    with pytest.raises(AssertionError, match=r"backward on an empty batch raised ValueError"):
        check_empty_batch(dense(EmptyBatchCrash), X)
    with pytest.raises(AssertionError, match="empty batch"):
        check_layer(dense(EmptyBatchCrash), X)
    check_layer(dense(EmptyBatchCrash), X, empty_batch=False)  # the option that skips it
    check_empty_batch(dense(), X)


def test_an_empty_batch_with_wrong_output_shape_is_caught():
    class DropsBatch(Layer):
        def forward(self, x):
            x = np.asarray(x)
            return x.reshape(-1, x.shape[-1]) if x.size else np.zeros((1, x.shape[-1])), \
                lambda dy, deltas: check_gradient(dy, (len(x), x.shape[-1]), x.dtype, "DropsBatch")

    with pytest.raises(AssertionError, match=r"empty batch gave output 0 of shape \(1, 4\)"):
        check_empty_batch(DropsBatch(), X)
