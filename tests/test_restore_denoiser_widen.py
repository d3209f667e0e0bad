"""widen_unet: a wider U-Net that computes what the trained one computes, and whose copies can part."""
import numpy as np
import pytest

import minieye as me
from minieye import layers
from minieye.network import Graph, Sequential
from minieye.restore.denoiser_unet import build_unet, network_reach, widen_unet


def _trained_like(seed=1):
    """A float64 U-Net with weights of order one everywhere (as if trained; biases too)."""
    net = build_unet(4, down=(1, 2), up=(1, 1), dtype="float64")
    rng = np.random.default_rng(seed)
    for p in net.parameters():
        p.value[...] = rng.standard_normal(p.value.shape) * 0.3
    return net


def _convs(net):
    return [layer for layer in net.layers if hasattr(layer, "weight")]


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_the_widened_network_computes_the_same_output(noise):
    net = _trained_like()
    before = [p.value.copy() for p in net.parameters()]
    wide = widen_unet(net, 1.5, seed=3, noise=noise)
    assert [(c.in_channels, c.out_channels) for c in _convs(wide)] == [
        (2, 6), (6, 6), (6, 12), (12, 12), (12, 24), (24, 24), (24, 24), (24, 12), (12, 12), (12, 6), (6, 6), (6, 1)]
    x = np.random.default_rng(0).standard_normal((2, 2, 16, 20))
    y = net(x)
    assert np.abs(y).max() > 10  # not a near-zero output that any network would match
    np.testing.assert_allclose(wide(x), y, rtol=0, atol=1e-11 * np.abs(y).max())
    assert all(np.array_equal(p.value, b) for p, b in zip(net.parameters(), before))  # net unchanged
    assert network_reach(wide) == network_reach(net)
    assert all(p.value.dtype == np.float64 for p in wide.parameters())


def test_widths_by_channel_count_and_a_saved_copy():
    net = build_unet(4, down=(1, 1), up=(1, 1), dtype="float32", seed=2)
    wide = widen_unet(net, {4: 5, 16: 16}, seed=0)  # level 2 (8 channels) keeps its width
    assert [c.out_channels for c in _convs(wide)] == [5, 5, 8, 8, 16, 16, 8, 8, 5, 5, 1]
    assert all(p.value.dtype == np.float32 for p in wide.parameters())
    x = np.random.default_rng(0).random((1, 2, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(wide(x), net(x), atol=1e-5)
    np.testing.assert_array_equal(widen_unet(net, {4: 5, 16: 16}, seed=0)(x), wide(x))  # the seed decides


def _first_layer_gradient(wide, x):
    y, backward = wide.forward(x)
    deltas = me.DeltaSet()
    backward(np.random.default_rng(5).standard_normal(y.shape), deltas)
    first = _convs(wide)[0]
    return first.weight.value.reshape(first.out_channels, -1), deltas[first.weight].reshape(first.out_channels, -1)


def test_even_splits_keep_copies_identical_uneven_ones_part_them():
    x = np.random.default_rng(4).standard_normal((2, 2, 16, 16))
    for noise, parted in ((0.0, False), (0.1, True)):
        weight, grad = _first_layer_gradient(widen_unet(_trained_like(), 1.5, seed=3, noise=noise), x)
        for copy in (4, 5):  # the new channels copy an old one's filter exactly ...
            old = [j for j in range(4) if np.array_equal(weight[j], weight[copy])]
            assert len(old) == 1
            a, b = grad[old[0]], grad[copy]
            cosine = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
            # ... and get the same gradient only when split evenly; Adam would not undo a mere scale
            assert (cosine < 0.999) == parted, (noise, cosine)


def test_widen_refuses_what_it_cannot_widen():
    net = build_unet(4, down=(1,), up=(1,))
    with pytest.raises(ValueError, match="widen_unet.*at least the 4 channels"):
        widen_unet(net, 0.5)
    with pytest.raises(ValueError, match="widen_unet.*Graph"):
        widen_unet(Sequential(layers.Conv2D(2, 4, 3), layers.ReLU()), 2)
    with pytest.raises(ValueError, match="widen_unet.*noise >= 0"):
        widen_unet(net, 2, noise=-1.0)
    g = Graph()
    h = g.add(layers.Tanh(), g.add(layers.Conv2D(2, 4, 3, padding=1), g.input()))
    g.output(g.add(layers.Conv2D(4, 1, 3, padding=1), h))
    with pytest.raises(ValueError, match="widen_unet.*Tanh"):
        widen_unet(g, 2)
    g = Graph()
    conv, relu = layers.Conv2D(4, 4, 3, padding=1), layers.ReLU()
    h = g.add(relu, g.add(layers.Conv2D(2, 4, 3, padding=1), g.input()))
    g.output(g.add(layers.Conv2D(4, 1, 3, padding=1), g.add(conv, g.add(conv, h))))
    with pytest.raises(ValueError, match="widen_unet.*each appear once"):
        widen_unet(g, 2)
