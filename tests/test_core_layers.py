"""Values, configuration and errors of the core layers (gradients are in the layer table)."""
import numpy as np
import pytest

import minieye as me
from minieye import layers as L

RNG = np.random.default_rng(5)
IMG = RNG.normal(size=(2, 3, 4, 5))


def test_dense_matches_the_formula_on_any_leading_axes():
    d = L.Dense(5, 3, dtype="float64", seed=0)
    d.bias.value[...] = [1.0, 2.0, 3.0]
    x = RNG.normal(size=(2, 4, 5))
    assert np.allclose(d(x), x @ d.weight.value.T + d.bias.value)
    assert L.Dense(5, 3, bias=False).bias is None and len(L.Dense(5, 3, bias=False).parameters()) == 1
    assert d(x.astype(np.float32)).dtype == np.float64  # the layer's dtype wins
    assert L.Dense(5, 3)(np.ones((1, 5), dtype=np.int64)).dtype == np.float32


def test_bias_scale_linear():
    b = L.Bias((3, 1, 1), dtype="float64")
    b.bias.value[...] = np.arange(3.0).reshape(3, 1, 1)
    assert np.allclose(b(IMG), IMG + np.arange(3.0).reshape(1, 3, 1, 1))
    with pytest.raises(ValueError, match=r"Bias\(3, 1, 1\) forward: expected x whose trailing axes broadcast"):
        b(np.zeros((2, 4, 4, 5)))
    assert np.allclose(L.Linear(2.0, -1.0, dtype="float64")(IMG), 2 * IMG - 1)
    assert np.allclose(L.Scale(-3.0, dtype="float64")(IMG), -3 * IMG)
    assert L.Scale(2.0).scale.shape == () and L.Scale(2.0).offset is None
    with pytest.raises(ValueError, match="scale a real number"):
        L.Linear("2")


@pytest.mark.parametrize("layer, fn", [
    (L.ReLU(), lambda x: np.maximum(x, 0)),
    (L.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (L.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (L.Tanh(), np.tanh),
    (L.Abs(), np.abs),
    (L.Square(), np.square),
    (L.Log(), lambda x: np.log(np.abs(x) + 1)),
    (L.Clamp(-0.5, 0.25), lambda x: np.clip(x, -0.5, 0.25)),
    (L.Clamp(low=0.0), lambda x: np.maximum(x, 0)),
])
def test_elementwise_values_and_dtype(layer, fn):
    x = np.abs(IMG) + 1 if isinstance(layer, L.Log) else IMG
    expected = fn(IMG) if isinstance(layer, L.Log) else fn(x)
    assert np.allclose(layer(x), expected)
    assert layer(x.astype(np.float32)).dtype == np.float32 and layer(x).dtype == np.float64


def test_sigmoid_and_softmax_do_not_overflow():
    big = np.array([[-1000.0, 0.0, 1000.0]])
    assert np.allclose(L.Sigmoid()(big), [[0, 0.5, 1]])
    s = L.Softmax()(big)
    assert np.all(np.isfinite(s)) and np.allclose(s.sum(axis=-1), 1)
    assert np.allclose(L.Softmax(axis=1)(IMG).sum(axis=1), 1)
    with pytest.raises(ValueError, match=r"Softmax\(axis=4\) forward: expected x with an axis 4"):
        L.Softmax(axis=4)(IMG)


def test_log_keeps_nan_visible():
    with np.errstate(all="ignore"):
        y = L.Log()(np.array([-1.0, 0.0, 1.0]))
    assert np.isnan(y[0]) and y[1] == -np.inf and y[2] == 0


def test_clamp_and_leaky_relu_validate():
    with pytest.raises(ValueError, match=r"Clamp: expected low <= high; got low=1, high=0"):
        L.Clamp(1, 0)
    with pytest.raises(ValueError, match="at least one of low and high"):
        L.Clamp()
    with pytest.raises(ValueError, match="LeakyReLU 'act': expected slope a finite number; got slope='0.1'"):
        L.LeakyReLU("0.1", name="act")
    with pytest.raises(ValueError, match="expected slope a finite number; got slope=nan"):
        L.LeakyReLU(float("nan"))  # a NaN slope made every negative input NaN
    assert L.LeakyReLU(np.float32(0.25)).slope == 0.25 and L.ELU(np.float32(0.5)).alpha == 0.5


def test_leaky_relu_takes_pytorch_keyword():
    assert L.LeakyReLU(negative_slope=0.2).slope == pytest.approx(0.2) and L.LeakyReLU().slope == 0.01
    assert L.LeakyReLU(negative_slope=0.2).config() == L.LeakyReLU(0.2).config()  # saved key stays "slope"
    with pytest.raises(ValueError, match=r"LeakyReLU: expected slope or negative_slope, not both; "
                                         r"got slope=0.1, negative_slope=0.2"):
        L.LeakyReLU(0.1, negative_slope=0.2)
    with pytest.raises(ValueError, match="expected negative_slope a finite number; got negative_slope=nan"):
        L.LeakyReLU(negative_slope=float("nan"))


def test_reshape_flatten():
    assert L.Flatten()(IMG).shape == (2, 60)
    assert L.Reshape((5, -1))(IMG).shape == (2, 5, 12)
    assert np.array_equal(L.Reshape((60,))(IMG), IMG.reshape(2, 60))
    with pytest.raises(ValueError, match=r"Reshape\(7, -1\) forward: expected x of shape \(N, \.\.\.\) with samples"):
        L.Reshape((7, -1))(IMG)
    with pytest.raises(ValueError, match="at most one -1"):
        L.Reshape((-1, -1))


@pytest.mark.parametrize("amount", [1, (1, 2), (0, 1, 2, 0), (2, 2, 3, 3)])
@pytest.mark.parametrize("mode, np_mode", [("zero", "constant"), ("reflect", "reflect"), ("replicate", "edge")])
def test_pad_matches_numpy_and_crop_undoes_it(amount, mode, np_mode):
    pad = L.Pad(amount, mode=mode)
    left, right, top, bottom = pad.amount
    x = RNG.normal(size=(2, 1, 4, 4))
    expected = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=np_mode)
    assert np.array_equal(pad(x), expected)
    assert np.array_equal(L.Crop(amount)(pad(x)), x)


def test_pad_and_crop_errors():
    with pytest.raises(ValueError, match=r"Pad\(4, 4, 4, 4\)\[reflect\] forward: expected reflect padding smaller"):
        L.Pad(4, mode="reflect")(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="mode one of"):
        L.Pad(1, mode="wrap")
    with pytest.raises(ValueError, match=r"Crop\(2, 2, 2, 2\) forward: expected x \(\.\.\., H, W\) with H > 4"):
        L.Crop(2)(np.zeros((1, 1, 4, 9)))
    with pytest.raises(ValueError, match="amount an int, an \\(h, w\\) pair"):
        L.Crop((1, 2, 3))
    with pytest.raises(ValueError, match="non-negative integer"):
        L.Pad(-1)


def test_combiners():
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3))
    assert np.allclose(L.Add()(a, b, a), 2 * a + b)
    assert np.allclose(L.Multiply()(a, b), a * b)
    assert np.allclose(L.Add()(a, np.ones(3)), a + 1)  # broadcasting
    assert L.Concat()(a, b).shape == (2, 6) and L.Concat(axis=0)(a, b).shape == (4, 3)
    with pytest.raises(ValueError, match="Add forward: expected inputs of broadcastable shapes; got \\(2, 3\\), \\(4,\\)"):
        L.Add()(a, np.ones(4))
    with pytest.raises(ValueError, match="Concat\\(axis=1\\) forward: expected inputs equal in every axis but 1"):
        L.Concat()(a, np.ones((3, 3)))
    # a zero factor: the gradient of the other factors is the product of the rest, not y / x
    z = np.zeros((2, 3))
    y, backward = L.Multiply().forward(z, a, b)
    dz, da, db = backward(np.ones((2, 3)), me.DeltaSet())
    assert np.allclose(dz, a * b) and np.allclose(da, 0) and np.all(np.isfinite(db))


def test_reducers():
    assert np.allclose(L.Sum()(IMG), IMG.sum(axis=(1, 2, 3)))
    assert np.allclose(L.Mean(axis=1, keepdims=True)(IMG), IMG.mean(axis=1, keepdims=True))
    assert L.Mean(axis=(0, 1, 2, 3))(IMG).shape == ()
    with pytest.raises(ValueError, match="distinct axes"):
        L.Sum(axis=(1, -3))(IMG)


def test_source():
    s = L.Source(value=np.arange(6.0).reshape(2, 3))
    assert s.n_inputs == 0 and s.dtype == np.float64 and s.shape == (2, 3)
    y = s()
    y[0, 0] = 99  # the output is a copy: the parameter is untouched
    assert s.value.value[0, 0] == 0
    assert L.Source((1, 1, 2, 2)).value.dtype == np.float32
    assert L.Source(value=np.float64(3.0)).shape == ()
    with pytest.raises(ValueError, match="exactly one of shape and value"):
        L.Source()


@pytest.mark.parametrize("layer", [
    L.Dense(3, 2, bias=False, init="glorot", dtype="float64", seed=4, name="d"), L.Bias((2, 1, 1)),
    L.Linear(2.0, 1.0), L.Scale(0.5, dtype="float64"), L.LeakyReLU(0.3), L.Clamp(None, 2.0), L.Softmax(1),
    L.Reshape((3, -1)), L.Crop((1, 2)), L.Pad((1, 2, 3, 4), mode="reflect"), L.Concat(-1),
    L.Sum(axis=(1, 2), keepdims=True), L.Mean(), L.Source((2, 2), dtype="float64"),
])
def test_config_round_trips(layer):
    twin = type(layer)(**layer.config())
    assert twin.config() == layer.config() and twin.label() == layer.label()
    assert [(p.shape, p.dtype) for p in twin.parameters()] == [(p.shape, p.dtype) for p in layer.parameters()]
