"""Backward closures refuse a wrong dy, every layer handles an empty batch, and the shared
helpers (checks.generator, checks.where, F.pad / F.pad_adjoint) behave as documented."""
import re

import numpy as np
import pytest

import minieye as me
from minieye import checks, losses
from minieye import functional as F
from minieye import layers as L
from minieye.testing import check_empty_batch, check_rejects_bad_dy

RNG = np.random.default_rng(0)
F64 = "float64"

CONVS = [(L.Conv1D, 1), (L.Conv2D, 2), (L.Conv3D, 3), (L.ConvTranspose1D, 1), (L.ConvTranspose2D, 2),
         (L.ConvTranspose3D, 3)]


@pytest.mark.parametrize("cls, nd", CONVS, ids=[c.__name__ for c, _ in CONVS])
def test_conv_backward_refuses_a_wrong_dy_and_takes_an_empty_batch(cls, nd):
    layer = cls(2, 3, 3, stride=2 if "Transpose" in cls.__name__ else 1, dtype=F64, seed=0)
    x = RNG.normal(size=(2, 2) + (5,) * nd)
    check_rejects_bad_dy(layer, x)
    check_empty_batch(layer, x)
    y, backward = layer.forward(x)
    bad = np.zeros(y.shape[:-1] + (y.shape[-1] + 1,))
    message = f"backward: expected dy of shape {y.shape}; got dy.shape == {bad.shape}"
    with pytest.raises(checks.ShapeError, match=rf"^{cls.__name__}\(2->3, .*\) " + re.escape(message)):
        backward(bad, me.DeltaSet())
    # a dy that fits is used as it is (no copy), and an int or float32 one is converted
    dy = RNG.normal(size=y.shape)
    d1, d2 = me.DeltaSet(), me.DeltaSet()
    np.testing.assert_allclose(backward(dy.astype(np.float32), d1), backward(dy.astype(np.float32).astype(F64), d2))


@pytest.mark.parametrize("cls, nd", CONVS, ids=[c.__name__ for c, _ in CONVS])
def test_conv_empty_batch_shapes(cls, nd):
    layer = cls(2, 3, 3, dtype=F64, seed=0)
    y, backward = layer.forward(np.zeros((0, 2) + (6,) * nd))
    deltas = me.DeltaSet()
    dx = backward(np.zeros(y.shape), deltas)
    assert y.shape[:2] == (0, 3) and dx.shape == (0, 2) + (6,) * nd
    assert deltas[layer.weight].shape == layer.weight.shape and not deltas[layer.weight].any()
    assert deltas[layer.bias].shape == (3,) and not deltas[layer.bias].any()


PARAMETER_FREE = [L.ReLU(), L.LeakyReLU(0.1), L.Sigmoid(), L.Tanh(), L.Abs(), L.Square(), L.Clamp(-1, 1),
                  L.Softmax(), L.Softmax(axis=1), L.Reshape((-1,)), L.Flatten(), L.Crop((1, 0, 0, 1)),
                  L.Pad((1, 0, 2, 0), mode="reflect"), L.Pad(1), L.Sum(), L.Mean()]


@pytest.mark.parametrize("layer", PARAMETER_FREE, ids=lambda layer: layer.label())
def test_parameter_free_layers_check_dy_and_take_an_empty_batch(layer):
    x = RNG.normal(size=(2, 3, 4, 5))
    check_rejects_bad_dy(layer, x)
    check_empty_batch(layer, x)


@pytest.mark.parametrize("layer", [L.Dense(5, 3, dtype=F64, seed=1), L.Bias(5, dtype=F64), L.Linear(2.0, 1.0)],
                         ids=lambda layer: layer.label())
def test_affine_layers_check_dy_and_take_an_empty_batch(layer):
    x = RNG.normal(size=(4, 5))
    check_rejects_bad_dy(layer, x)
    check_empty_batch(layer, x)


def test_dense_wrong_dy_names_the_layer_not_numpy():
    y, backward = L.Dense(5, 3, name="head").forward(np.ones((4, 5)))
    with pytest.raises(checks.ShapeError, match=r"Dense\(5->3\) 'head' backward: expected dy of shape \(4, 3\); "
                                                r"got dy.shape == \(4, 2\)"):
        backward(np.ones((4, 2)), me.DeltaSet())


def test_combiners_check_dy_instead_of_broadcasting_it():
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 1))
    for layer in (L.Add(), L.Multiply(), L.Concat(axis=1)):
        check_rejects_bad_dy(layer, a, a if isinstance(layer, L.Concat) else b)
    y, backward = L.Add().forward(a, b)
    with pytest.raises(checks.ShapeError, match=r"Add backward: expected dy of shape \(2, 3\)"):
        backward(np.ones((1, 3)), me.DeltaSet())  # would broadcast silently


def test_source_and_losses_refuse_a_wrong_dy():
    check_rejects_bad_dy(L.Source((2, 3)))
    check_rejects_bad_dy(losses.MSE(), np.ones((2, 3)), np.zeros((2, 3)))
    _, backward = losses.L1(name="fidelity").forward(np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"L1 'fidelity' backward: expected a scalar dy"):
        backward(np.ones(2), me.DeltaSet())


def test_softmax_of_an_empty_axis_is_empty_not_a_numpy_error():
    y, backward = L.Softmax().forward(np.ones((2, 0)))
    assert y.shape == (2, 0)
    assert backward(np.ones((2, 0)), me.DeltaSet()).shape == (2, 0)


# -- checks.generator ----------------------------------------------------------------


def test_generator_accepts_a_generator_or_an_int_seed():
    g = np.random.default_rng(5)
    assert checks.generator(g, None, "X") is g
    assert checks.generator(3, None, "X").random() == np.random.default_rng(3).random()
    assert checks.generator(None, 3, "X").random() == np.random.default_rng(3).random()
    assert isinstance(checks.generator(None, None, "X"), np.random.Generator)


@pytest.mark.parametrize("rng, seed, message", [
    (np.random.default_rng(0), 1, r"Conv2D 'c' : expected rng or seed, not both".replace(" :", ":")),
    (None, -1, r"Conv2D 'c': expected seed an int >= 0 or None; got seed=-1"),
    (None, 1.5, r"expected seed an int >= 0 or None; got seed=1.5"),
    ("abc", None, r"expected rng a np.random.Generator or an int seed >= 0; got rng='abc'"),
    (-2, None, r"got rng=-2"),
])
def test_generator_refuses_clearly(rng, seed, message):
    with pytest.raises(checks.ShapeError, match=message):
        checks.generator(rng, seed, "Conv2D 'c'")


@pytest.mark.parametrize("make", [lambda **kw: L.Dense(4, 3, **kw), lambda **kw: L.Conv2D(2, 3, 3, **kw),
                                  lambda **kw: L.ConvTranspose3D(2, 3, 3, **kw)], ids=["Dense", "Conv2D", "ConvT3D"])
def test_layers_take_rng_as_an_int_seed_and_refuse_both(make):
    assert np.array_equal(make(rng=3).weight.value, make(seed=3).weight.value)
    assert np.array_equal(make(rng=np.random.default_rng(3)).weight.value, make(seed=3).weight.value)
    with pytest.raises(ValueError, match="rng or seed, not both"):
        make(rng=np.random.default_rng(0), seed=1)
    with pytest.raises(ValueError, match="seed an int >= 0"):
        make(seed=-1)


def test_dense_config_keeps_an_int_rng_as_its_seed():
    layer = L.Dense(4, 3, rng=7)
    assert np.array_equal(type(layer)(**layer.config()).weight.value, layer.weight.value)


def test_where_names_a_layer_with_or_without_a_name():
    assert checks.where("Conv2D", "enc1") == "Conv2D 'enc1'"
    assert checks.where("Conv2D") == checks.where("Conv2D", None) == "Conv2D"


# -- padding: one implementation, PyTorch's order ------------------------------------------


def _dense_adjoint(dy, pad, mode, shape):
    """P^T dy by brute force: the gradient of <pad(x), dy> through every unit vector of x."""
    out = np.zeros(shape)
    for idx in np.ndindex(*shape):
        e = np.zeros(shape)
        e[idx] = 1
        out[idx] = np.vdot(F.pad(e, pad, mode), dy)
    return out


@pytest.mark.parametrize("mode", ["zero", "reflect", "replicate"])
@pytest.mark.parametrize("pad", [1, (2, 1), (3, 0, 1, 2), (0, 2, 3, 0)])
def test_pad_adjoint_matches_brute_force(mode, pad):
    shape = (2, 4, 5)
    dy = RNG.normal(size=F.pad(np.zeros(shape), pad, mode).shape)
    np.testing.assert_allclose(F.pad_adjoint(dy, pad, mode), _dense_adjoint(dy, pad, mode, shape), atol=1e-12)


@pytest.mark.parametrize("mode", ["zero", "reflect", "replicate"])
def test_pad_layer_is_f_pad_in_pytorch_order(mode):
    x = RNG.normal(size=(2, 3, 5, 6))
    amount = (1, 3, 0, 2)  # left, right, top, bottom
    layer = L.Pad(amount, mode=mode)
    y, backward = layer.forward(x)
    assert y.shape == (2, 3, 5 + 0 + 2, 6 + 1 + 3)
    np.testing.assert_array_equal(y, F.pad(x, amount, mode))
    dy = RNG.normal(size=y.shape)
    np.testing.assert_array_equal(backward(dy, me.DeltaSet()), F.pad_adjoint(dy, amount, mode))
    assert L.Crop(amount)(y).shape == x.shape
    np.testing.assert_array_equal(L.Crop(amount)(y), x)


def test_pad_and_crop_agree_with_torch():
    torch = pytest.importorskip("torch")
    x = RNG.normal(size=(1, 2, 5, 6))
    amount = (1, 3, 0, 2)
    for mode, torch_mode in (("zero", "constant"), ("reflect", "reflect"), ("replicate", "replicate")):
        expected = torch.nn.functional.pad(torch.from_numpy(x), amount, mode=torch_mode).numpy()
        np.testing.assert_allclose(L.Pad(amount, mode=mode)(x), expected)
    # a negative pad in torch crops: Crop(amount) is torch's pad by -amount
    expected = torch.nn.functional.pad(torch.from_numpy(x), tuple(-a for a in amount)).numpy()
    np.testing.assert_allclose(L.Crop(amount)(x), expected)


def test_pad_adjoint_is_linear_in_size():
    dy = np.ones((1, 1, 400, 400))
    out = F.pad_adjoint(dy, (3, 3, 3, 3), "reflect")  # a dense fold matrix would be 400 x 394 per axis
    assert out.shape == (1, 1, 394, 394) and out.sum() == dy.sum()
