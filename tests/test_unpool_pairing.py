"""MaxPool2D/MaxUnpool2D pairing: encoder-decoders in Sequential and Graph, several and
interleaved batches, nested networks, threads, errors, and saving.

The convolutions are minieye's Conv2D/ConvTranspose2D when they are there; otherwise a
private 1x1 channel mixer stands in (it keeps H and W, which is all the pairing needs).
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import minieye as me
from minieye import functional as F, layers
from minieye.core import Layer, Parameter
from minieye.testing import check_gradients

HAVE_CONV = hasattr(layers, "Conv2D") and hasattr(layers, "ConvTranspose2D")


class _Mix(Layer):
    """1x1 convolution without bias: y[n, o] = sum_i w[o, i] x[n, i]. Shapes: (N, I, H, W) -> (N, O, H, W)."""

    def __init__(self, c_in: int, c_out: int, seed: int = 0):
        super().__init__()
        self.w = Parameter(np.random.default_rng(seed).standard_normal((c_out, c_in)), name="w", dtype="float64")

    def forward(self, x):
        y = np.einsum("oi,nihw->nohw", self.w.value, x)

        def backward(dy, deltas):
            deltas.add(self.w, np.einsum("nohw,nihw->oi", dy, x))
            return np.einsum("oi,nohw->nihw", self.w.value, dy)

        return y, backward


def conv(c_in: int, c_out: int, seed: int) -> Layer:
    if HAVE_CONV:
        return layers.Conv2D(c_in, c_out, 3, padding=1, dtype="float64", seed=seed)
    return _Mix(c_in, c_out, seed)


def conv_t(c_in: int, c_out: int, seed: int) -> Layer:
    if HAVE_CONV:
        return layers.ConvTranspose2D(c_in, c_out, 3, padding=1, dtype="float64", seed=seed)
    return _Mix(c_in, c_out, seed)


def deconvnet_sequential():
    """conv, pool, conv, pool, unpool, convT, unpool, convT (DeconvNet's shape, tiny)."""
    p1, p2 = layers.MaxPool2D(2, name="p1"), layers.MaxPool2D(2, name="p2")
    net = me.Sequential(conv(2, 3, 1), p1, conv(3, 4, 2), p2,
                        layers.MaxUnpool2D(p2), conv_t(4, 3, 3), layers.MaxUnpool2D(p1), conv_t(3, 2, 4))
    return net


def deconvnet_graph():
    """The same network as a Graph, plus a skip connection around the inner pair."""
    p1, p2 = layers.MaxPool2D(2, name="p1"), layers.MaxPool2D((2, 3), stride=(2, 2), padding=(0, 1), name="p2")
    g = me.Graph()
    x = g.input()
    e1 = g.add(p1, g.add(conv(2, 3, 1), x))
    e2 = g.add(p2, g.add(conv(3, 3, 2), e1))
    d2 = g.add(conv_t(3, 3, 3), g.add(layers.MaxUnpool2D(p2), e2))
    d1 = g.add(layers.MaxUnpool2D(p1), g.add(layers.Add(), d2, e1))
    g.output(g.add(conv_t(3, 2, 4), d1))
    return g


def explicit(x: np.ndarray, net: me.Sequential) -> np.ndarray:
    """deconvnet_sequential's forward written with F.max_pool2d / F.max_unpool2d."""
    c1, p1, c2, p2, u2, t2, u1, t1 = net.layers
    a = c1(x)
    b, s1 = F.max_pool2d(a, 2)
    c = c2(b)
    d, s2 = F.max_pool2d(c, 2)
    e = t2(F.max_unpool2d(d, s2, c.shape[2:]))
    return t1(F.max_unpool2d(e, s1, a.shape[2:]))


def forward_backward(net: Layer, x: np.ndarray, dy: np.ndarray):
    y, backward = net.forward(x)
    deltas = me.DeltaSet()
    return y, backward(dy, deltas), deltas


def images(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    return rng.standard_normal((n, 2, h, w))


# -- it computes the right thing ------------------------------------------------------------
def test_sequential_matches_explicit_switches():
    net = deconvnet_sequential()
    x = images(np.random.default_rng(0), 3, 8, 12)
    y = net(x)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, explicit(x, net), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("build", [deconvnet_sequential, deconvnet_graph], ids=["sequential", "graph"])
def test_encoder_decoder_gradients(build):
    net = build()
    x = images(np.random.default_rng(1), 2, 8, 8)  # continuous values: ties have probability 0
    check_gradients(net, x, rng=np.random.default_rng(2), directions=4)


# -- several batches, interleaved passes, threads ------------------------------------------------
@pytest.mark.parametrize("build", [deconvnet_sequential, deconvnet_graph], ids=["sequential", "graph"])
def test_interleaved_batches_use_their_own_switches(build):
    net = build()
    rng = np.random.default_rng(3)
    xa, xb = images(rng, 2, 8, 8), images(rng, 3, 12, 16)  # different shapes: a stale switch would show
    dya, dyb = rng.standard_normal(net(xa).shape), rng.standard_normal(net(xb).shape)
    ref_a, ref_b = forward_backward(net, xa, dya), forward_backward(net, xb, dyb)

    ya, back_a = net.forward(xa)
    yb, back_b = net.forward(xb)
    deltas_b, deltas_a = me.DeltaSet(), me.DeltaSet()
    dxb = back_b(dyb, deltas_b)  # backwards in the other order than the forwards
    dxa = back_a(dya, deltas_a)
    for (y, dx, deltas), ref in (((ya, dxa, deltas_a), ref_a), ((yb, dxb, deltas_b), ref_b)):
        np.testing.assert_array_equal(y, ref[0])
        np.testing.assert_array_equal(dx, ref[1])
        for p in net.parameters():
            np.testing.assert_array_equal(deltas[p], ref[2][p])


def test_many_batches_equal_single_samples():
    net = deconvnet_sequential()
    x = images(np.random.default_rng(4), 4, 8, 8)
    whole = net(x)
    for i in range(len(x)):
        np.testing.assert_allclose(net(x[i:i + 1]), whole[i:i + 1], rtol=1e-12, atol=1e-12)


def test_concurrent_passes_in_threads():
    """The scope is a context variable, so passes in two threads cannot see each other's switches.

    Built from the NumPy mixer and small arrays, so no Numba parallel region starts: the
    workqueue threading layer (a fallback where OpenMP and TBB are missing) aborts on
    parallel launches from several threads at once.
    """
    p1, p2 = layers.MaxPool2D(2), layers.MaxPool2D(2)
    net = me.Sequential(_Mix(2, 3, 1), p1, _Mix(3, 4, 2), p2, layers.MaxUnpool2D(p2), _Mix(4, 3, 3),
                        layers.MaxUnpool2D(p1), _Mix(3, 2, 4))
    rng = np.random.default_rng(5)
    xs = [images(rng, 2, 8, 8 + 4 * (i % 2)) for i in range(8)]
    want = [net(x) for x in xs]
    got: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        for _ in range(5):
            got[i] = net(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, y in enumerate(want):
        np.testing.assert_array_equal(got[i], y)


def test_pool_and_unpool_in_nested_networks_share_the_pass():
    pool = layers.MaxPool2D(2)
    encoder = me.Sequential(conv(2, 3, 1), pool)
    decoder = me.Sequential(layers.MaxUnpool2D(pool), conv_t(3, 2, 2))
    g = me.Graph()
    x = g.input()
    g.output(g.add(decoder, g.add(encoder, x)))
    x0 = images(np.random.default_rng(6), 2, 6, 6)
    flat = me.Sequential(*encoder.layers, *decoder.layers)
    np.testing.assert_array_equal(g(x0), flat(x0))
    check_gradients(g, x0, rng=np.random.default_rng(7))


def test_two_decoders_may_read_the_same_pool():
    pool = layers.MaxPool2D(2)
    g = me.Graph()
    x = g.input()
    pooled = g.add(pool, x)
    g.output(g.add(layers.MaxUnpool2D(pool), pooled), g.add(layers.MaxUnpool2D(pool), pooled))
    x0 = images(np.random.default_rng(8), 1, 4, 4)
    a, b = g(x0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, F.max_unpool2d(*F.max_pool2d(x0, 2), (4, 4)))


def test_overlapping_windows_add_up_in_the_unpool():
    pool = layers.MaxPool2D(3, stride=1)
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = 5.0  # the maximum of all four overlapping windows
    z = me.Sequential(pool, layers.MaxUnpool2D(pool))(x)
    assert z[0, 0, 1, 1] == 20.0 and np.count_nonzero(z) == 1


# -- errors ------------------------------------------------------------------------------------
def test_unpool_without_its_pool_in_the_pass_is_an_error():
    pool = layers.MaxPool2D(2, name="p1")
    unpool = layers.MaxUnpool2D(pool, name="u1")
    y = np.zeros((1, 1, 2, 2))
    with pytest.raises(me.ShapeError, match=r"MaxUnpool2D.*'u1'.*switches recorded by its MaxPool2D.*'p1'"):
        unpool(y)
    with pytest.raises(me.ShapeError, match="switches recorded"):
        unpool.forward(y)  # no scope open at all
    pool(np.zeros((1, 1, 4, 4)))  # a pass that ended: its switches are gone
    with pytest.raises(me.ShapeError, match="switches recorded"):
        me.Sequential(unpool, pool)(y)  # the unpool before its pool


def test_pool_run_twice_in_one_pass():
    """A pool may run twice; an unpool reading it then refuses (which run was meant is unknowable)."""
    pool = layers.MaxPool2D(2, name="shared")
    x0 = images(np.random.default_rng(9), 1, 4, 4)
    g = me.Graph()
    x = g.input()
    g.output(g.add(layers.Add(), g.add(pool, x), g.add(pool, x)))
    np.testing.assert_array_equal(g(x0), 2 * pool(x0))  # no unpool: fine
    g = me.Graph()
    x = g.input()
    a, b = g.add(pool, x), g.add(pool, x)
    g.output(g.add(layers.MaxUnpool2D(pool), a), b)
    with pytest.raises(me.ShapeError, match=r"one run of its MaxPool2D.*'shared'.*got 2 runs"):
        g(x0)


def test_shared_weights_with_one_pair_per_place():
    """Two pool/unpool pairs around the same (shared) convolutions."""
    c1, c2 = conv(2, 3, 1), conv_t(3, 2, 2)
    pairs = [layers.MaxPool2D(2) for _ in range(2)]
    branches = [me.Sequential(c1, p, layers.MaxUnpool2D(p), c2) for p in pairs]
    g = me.Graph()
    xa, xb = g.input(), g.input()
    g.output(g.add(layers.Add(), g.add(branches[0], xa), g.add(branches[1], xb)))
    rng = np.random.default_rng(10)
    a, b = images(rng, 1, 4, 4), images(rng, 1, 4, 4)
    np.testing.assert_allclose(g(a, b), branches[0](a) + branches[1](b), rtol=1e-12)
    assert len(g.parameters()) == len(c1.parameters()) + len(c2.parameters())


def test_one_autoencoder_block_at_two_nodes():
    """pool(a), unpool, pool(b), unpool: each run's unpool follows its pool, so the block can be shared."""
    pool = layers.MaxPool2D(2)
    block = me.Sequential(conv(2, 3, 1), pool, layers.MaxUnpool2D(pool), conv_t(3, 2, 2))
    g = me.Graph()
    xa, xb = g.input(), g.input()
    g.output(g.add(layers.Add(), g.add(block, xa), g.add(block, xb)))
    rng = np.random.default_rng(12)
    a, b = images(rng, 2, 4, 4), images(rng, 2, 6, 8)  # different shapes: mixed-up switches would fail
    np.testing.assert_allclose(g(a, b[:, :, :4, :4]), block(a) + block(b[:, :, :4, :4]), rtol=1e-12)
    g2 = me.Graph()  # chained: the second run's input is the first run's output
    x = g2.input()
    g2.output(g2.add(block, g2.add(block, x)))
    np.testing.assert_allclose(g2(b), block(block(b)), rtol=1e-12)
    check_gradients(g2, b, rng=np.random.default_rng(13), directions=4)
    check_gradients(g, a, b[:, :, :4, :4], rng=np.random.default_rng(14), directions=4)


def test_two_blocks_sharing_one_pool_pair_with_their_own_unpools():
    pool = layers.MaxPool2D(2)
    first, second = (me.Sequential(pool, layers.MaxUnpool2D(pool)) for _ in range(2))
    x0 = images(np.random.default_rng(15), 1, 4, 4)
    y = me.Sequential(first, layers.ReLU(), second)(x0)
    z = np.maximum(F.max_unpool2d(*F.max_pool2d(x0, 2), (4, 4)), 0)
    np.testing.assert_array_equal(y, F.max_unpool2d(*F.max_pool2d(z, 2), (4, 4)))


def test_unpool_after_the_pool_ran_again_reads_the_latest_run():
    """Documented rule: the latest run, once every earlier run was read by some unpool."""
    pool = layers.MaxPool2D(2)
    unpool_a, unpool_b = layers.MaxUnpool2D(pool), layers.MaxUnpool2D(pool)
    g = me.Graph()
    x, x2 = g.input(), g.input()
    first = g.add(pool, x)
    out_a = g.add(unpool_a, first)
    second = g.add(pool, x2)
    g.output(out_a, g.add(unpool_b, second))
    rng = np.random.default_rng(16)
    a, b = images(rng, 1, 4, 4), images(rng, 1, 6, 6)
    ya, yb = g(a, b)
    np.testing.assert_array_equal(ya, F.max_unpool2d(*F.max_pool2d(a, 2), (4, 4)))
    np.testing.assert_array_equal(yb, F.max_unpool2d(*F.max_pool2d(b, 2), (6, 6)))


def test_unpool_shape_mismatch_and_bad_partner():
    pool = layers.MaxPool2D(2)
    with pytest.raises(me.ShapeError, match=r"x of its pool's output shape \(1, 2, 2, 2\)"):
        me.Sequential(pool, _Mix(2, 3), layers.MaxUnpool2D(pool))(np.zeros((1, 2, 4, 4)))
    with pytest.raises(me.ShapeError, match="pool: the MaxPool2D layer"):
        layers.MaxUnpool2D(layers.AvgPool2D(2))
    net = me.Sequential(pool, layers.MaxUnpool2D(pool))
    _, backward = net.forward(np.zeros((1, 2, 4, 4)))
    with pytest.raises(me.ShapeError, match="dy"):
        backward(np.zeros((1, 2, 4, 5)), me.DeltaSet())


# -- configuration and saving -----------------------------------------------------------------------
def test_config_references_the_pool():
    pool = layers.MaxPool2D(3, stride=2, padding=1, name="p")
    unpool = layers.MaxUnpool2D(pool, name="u")
    assert unpool.config() == {"name": "u", "pool": pool}
    twin = layers.MaxUnpool2D(**unpool.config())
    assert twin.pool is pool and twin.label() == unpool.label()
    assert pool.config() == {"name": "p", "kernel_size": 3, "stride": 2, "padding": 1}
    assert layers.MaxPool2D(**pool.config()).describe() == "MaxPool2D(k=3, s=2, p=1)"


def test_save_and_load_keeps_the_pairing(tmp_path):
    pytest.importorskip("minieye.io")
    from minieye.testing.roundtrip import check_roundtrip

    if HAVE_CONV:
        net = deconvnet_sequential()
    else:  # the stand-in mixer is not a registered layer
        p1, p2 = layers.MaxPool2D(2), layers.MaxPool2D(2)
        net = me.Sequential(p1, p2, layers.MaxUnpool2D(p2), layers.MaxUnpool2D(p1))
    x = images(np.random.default_rng(11), 2, 8, 8)
    loaded = check_roundtrip(net, x, path=tmp_path / "deconvnet.minieye")
    unpools = [layer for layer in loaded.layers if isinstance(layer, layers.MaxUnpool2D)]
    pools = [layer for layer in loaded.layers if isinstance(layer, layers.MaxPool2D)]
    assert [u.pool for u in unpools] == [pools[1], pools[0]]  # the loaded pools, not the originals


# -- a standalone unpool: explicit switches, no network --------------------------------------------
def test_unpool_with_explicit_switches_works_outside_a_network(tmp_path):
    from minieye.testing.roundtrip import check_roundtrip
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 3, 6, 4))
    y, s = F.max_pool2d(x, 2)
    unpool = layers.MaxUnpool2D(switches=s, output_size=(6, 4), name="u")
    s[...] = 0  # the layer keeps its own checked copy
    z = unpool(y)  # a plain call: no network, no pool run
    np.testing.assert_array_equal(z, F.max_unpool2d(y, F.max_pool2d(x, 2)[1], (6, 4)))
    check_gradients(unpool, y, rng=np.random.default_rng(3))
    assert "switches (2, 3, 3, 2) -> (6, 4)" in unpool.describe()
    loaded = check_roundtrip(unpool, y, path=tmp_path / "unpool.minieye")
    np.testing.assert_array_equal(loaded(y), z)
    with pytest.raises(me.ShapeError, match=r"MaxUnpool2D\(switches .*\) 'u' forward: expected x of its pool's "
                                            r"output shape \(2, 3, 3, 2\)"):
        unpool(y[:, :, :2])


@pytest.mark.parametrize("kwargs, message", [
    (dict(switches=np.zeros((1, 1, 2, 2), int)), r"MaxUnpool2D: expected output_size"),
    (dict(switches=np.full((1, 1, 2, 2), 16), output_size=(4, 4)), r"MaxUnpool2D: expected switches in \[0, 16\)"),
    (dict(switches=np.zeros((1, 2, 2), int), output_size=(4, 4)), r"MaxUnpool2D: expected switches with 4 dim"),
    (dict(pool=layers.MaxPool2D(2), switches=np.zeros((1, 1, 2, 2), int)), r"MaxUnpool2D: expected pool: .*"
                                                                          r"switches= and output_size= without"),
])
def test_unpool_with_bad_explicit_switches_is_refused(kwargs, message):
    with pytest.raises(me.ShapeError, match=message):
        layers.MaxUnpool2D(**kwargs)
