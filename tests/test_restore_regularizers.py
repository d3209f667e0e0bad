"""Regularizer values and signs (the gradients go through the layer table's harness rows)."""
import numpy as np
import pytest

import minieye as me
from minieye import losses


def grad(layer, x):
    value, backward = layer.forward(x)
    return float(value), backward(1.0, me.DeltaSet())


def test_total_variation_values():
    flat = np.full((1, 1, 5, 6), 0.3)
    assert grad(losses.TotalVariation(), flat)[0] == pytest.approx(0.0, abs=1e-12)
    step = np.zeros((1, 1, 4, 4))
    step[..., 2:] = 1.0  # one vertical edge of height 1, 4 rows long
    eps = 1e-6
    assert grad(losses.TotalVariation(eps), step)[0] == pytest.approx(4 / 16, rel=1e-4)
    # isotropic: a diagonal ramp's gradient magnitude is sqrt(2) per pixel (inside)
    ramp = np.add.outer(np.arange(6.0), np.arange(6.0))[None, None]
    value = grad(losses.TotalVariation(eps), ramp)[0]
    assert value == pytest.approx((25 * np.sqrt(2) + 10) / 36, rel=1e-4)


def test_tikhonov_and_nonnegativity_values():
    x = np.array([[[[-1.0, 2.0], [0.5, -0.5]]]])
    assert grad(losses.Tikhonov(0), x)[0] == pytest.approx((1 + 4 + 0.25 + 0.25) / 4)
    assert grad(losses.Tikhonov(1), x)[0] == pytest.approx((9 + 1 + 2.25 + 6.25) / 4)
    value, g = grad(losses.NonNegativity(), x)
    assert value == pytest.approx((1 + 0.25) / 4)
    np.testing.assert_allclose(g, np.array([[[[-0.5, 0.0], [0.0, -0.25]]]]))


def test_entropy_sign_and_normalisation():
    rng = np.random.default_rng(0)
    x = rng.random((2, 1, 6, 6)) + 0.1
    value, g = grad(losses.Entropy(offset=0.0), x)
    p = x[0].ravel() / x[0].sum()
    assert value == pytest.approx(np.mean([np.sum(q * np.log(q)) for q in
                                           (p, x[1].ravel() / x[1].sum())]))
    # scaling an image does not change p: the gradient is orthogonal to x (per sample)
    for i in range(2):
        assert abs(np.vdot(g[i], x[i])) < 1e-12
    # a small step against the gradient raises the entropy and flattens the image
    after = x - 0.5 * g / np.abs(g).max() * 0.01
    assert grad(losses.Entropy(offset=0.0), after)[0] < value
    assert after.std() < x.std()
    # the uniform image has maximal entropy: value -log(n) and zero gradient
    value, g = grad(losses.Entropy(offset=0.0), np.ones((1, 1, 4, 4)))
    assert value == pytest.approx(-np.log(16)) and np.abs(g).max() < 1e-12


def test_entropy_outside_its_domain_is_infinite_not_clipped():
    x = np.ones((1, 1, 3, 3))
    x[0, 0, 1, 1] = -1.0
    value, backward = losses.Entropy().forward(x)
    assert np.isinf(value)
    with pytest.raises(ValueError, match="non-negative"):
        backward(1.0, me.DeltaSet())


def test_regularizers_in_a_weighted_sum_and_bad_config():
    objective = losses.MSE() + 0.1 * losses.TotalVariation()
    x = np.random.default_rng(1).random((1, 1, 4, 4))
    assert float(objective(x, x)) == pytest.approx(0.1 * float(losses.TotalVariation()(x)))
    with pytest.raises(ValueError, match="eps a finite number > 0"):
        losses.TotalVariation(eps=0)
    for bad in (dict(eps=True), dict(power=True), dict(power=2.5), dict(eps=float("inf"))):
        with pytest.raises(ValueError, match=r"TotalVariation: expected (eps|power|0 < power)"):
            losses.TotalVariation(**bad)  # a bool is refused as Conv2D(stride=True) is, not read as 1
    with pytest.raises(ValueError, match="order"):
        losses.Tikhonov(order=2)
    rebuilt = losses.TotalVariation(**losses.TotalVariation(eps=0.01, power=0.8).config())
    assert (rebuilt.eps, rebuilt.power) == (0.01, 0.8)


def test_second_order_tv_ignores_ramps_and_sees_curvature():
    eps = 1e-6
    ramp = np.add.outer(np.arange(8.0), 2 * np.arange(8.0))[None, None]
    value_ramp = grad(losses.SecondOrderTV(eps), ramp)[0]
    # only the last two rows/columns, where the Neumann boundary bends the ramp, contribute
    g = grad(losses.SecondOrderTV(eps), ramp)[1]
    assert np.abs(g[..., :5, :5]).max() < 1e-9 and value_ramp > 0
    # rows 0..5: second difference 2; row 6: the Neumann edge, 0 - (49 - 36) = -13; row 7: 0
    bowl = np.add.outer(np.arange(8.0) ** 2, np.zeros(8))[None, None]
    assert grad(losses.SecondOrderTV(eps), bowl)[0] == pytest.approx((6 * 8 * 2 + 8 * 13) / 64, rel=1e-5)
    assert grad(losses.TotalVariation(eps), ramp)[0] > 1.0  # TV, by contrast, pays for the slope
    rebuilt = losses.SecondOrderTV(**losses.SecondOrderTV(eps=0.02).config())
    assert rebuilt.eps == 0.02 and "SecondOrderTV" in rebuilt.describe()
    with pytest.raises(ValueError, match="eps a finite number > 0"):
        losses.SecondOrderTV(eps=-1)
