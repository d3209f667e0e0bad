"""me.summary (a dry forward pass: shapes, counts, nothing changed) and repr(net) (the nested layers)."""
import numpy as np
import pytest

import minieye as me
from minieye import layers as L


def _net():
    return me.Sequential(L.Conv2D(1, 4, 3, padding=1, seed=0), L.BatchNorm2D(4), L.ReLU(), L.MaxPool2D(2),
                         me.Sequential(L.Flatten(), L.Dropout(0.5, seed=3), name="head"),
                         L.Dense(64, 1000, seed=1), L.Dense(1000, 1234, seed=2))


def test_summary_lists_every_layer_with_its_output_shape_and_counts():
    net = _net()
    report = me.summary(net, (2, 1, 8, 8))
    text = str(report)
    assert [r.output_shape for r in report.rows] == [
        (2, 1234), (2, 4, 8, 8), (2, 4, 8, 8), (2, 4, 8, 8), (2, 4, 4, 4), (2, 64), (2, 64), (2, 64),
        (2, 1000), (2, 1234)]
    assert [r.params for r in report.rows] == [1300282, 40, 8, 0, 0, 0, 0, 0, 65000, 1235234]
    assert [r.depth for r in report.rows] == [0, 1, 1, 1, 1, 1, 2, 2, 1, 1]
    assert report.total_params == report.trainable_params == sum(p.size for p in net.parameters()) == 1300282
    assert "Total parameters: 1,300,282" in text and "1,235,234" in text and "(4) Sequential[2] 'head'" in text
    assert "    (1) Dropout(0.5)" in text and "(2, 4, 4, 4)" in text
    net[5].freeze()
    assert "Non-trainable parameters: 65,000" in str(me.summary(net, (1, 1, 8, 8)))


def test_the_dry_pass_changes_nothing():
    net = _net()
    net[4].eval()
    modes = [layer.training for layer in (net, *net.layers, *net[4].layers)]
    bn = net[1]
    me.summary(net, (1, 1, 8, 8))   # one sample: fine, the pass runs in evaluation mode
    assert [layer.training for layer in (net, *net.layers, *net[4].layers)] == modes
    assert not bn.running_mean.any() and np.all(bn.running_var == 1)
    x = np.ones((1, 64), dtype=np.float32)
    net[4][1].train()
    np.testing.assert_array_equal(net[4][1](x), L.Dropout(0.5, seed=3)(x))  # its generator did not advance


def test_graph_rows_name_their_nodes_and_shared_weights_are_counted_once():
    g = me.Graph()
    a, b = g.input(), g.input()
    shared = L.Dense(5, 3, seed=0)
    h1, h2 = g.add(shared, a), g.add(shared, b)
    g.output(g.add(L.Add(), h1, h2), h1)
    report = me.summary(g, [(2, 5), (2, 5)])
    assert report.total_params == 18 and report.rows[0].output_shape == ((2, 3), (2, 3))
    assert [r.layer for r in report.rows[1:]] == ["(n2 <- n0) Dense(5->3)", "(n3 <- n1) Dense(5->3)",
                                                  "(n4 <- n2, n3) Add"]
    assert [r.shared for r in report.rows] == [False, False, True, False] and "shared" in str(report)


def test_a_network_without_inputs_and_bad_shapes():
    source = me.Sequential(L.Source((1, 2, 3, 3)), L.Tanh())
    assert me.summary(source, None).rows[-1].output_shape == (1, 2, 3, 3)
    with pytest.raises(ValueError, match=r"Conv2D\(1->4, 3x3\) forward: expected x.shape\[1\] == in_channels"):
        me.summary(_net(), (1, 3, 8, 8))
    with pytest.raises(ValueError, match="summary: expected input_shape a tuple of ints"):
        me.summary(_net(), "1x1x8x8")
    with pytest.raises(ValueError, match=r"summary\(Sequential\[7\]\): expected 1 input shape\(s\), as the network "
                                         r"takes; got 0: input_shape=None"):
        me.summary(_net(), None)
    with pytest.raises(TypeError, match="summary: expected a Layer"):
        me.summary([L.ReLU()], (1, 2))


def test_repr_shows_nested_layers_like_pytorch():
    g = me.Graph(name="g")
    x = g.input()
    h = g.add(L.Dense(3, 3, seed=0), x)
    g.output(g.add(L.Add(), x, h))
    net = me.Sequential(L.Dense(2, 3, seed=1), me.Sequential(L.BatchNorm1D(3), L.GELU(), name="block"), g)
    assert repr(net) == """Sequential(
  (0): Dense(2->3)
  (1): Sequential 'block'(
    (0): BatchNorm1D(3)
    (1): GELU
  )
  (2): Graph 'g'(
    (n0): input
    (n1) <- (n0): Dense(3->3)
    (n2) <- (n0, n1): Add
    outputs: n2
  )
)"""
    assert repr(me.Sequential()) == "Sequential()" and repr(L.Dropout(0.25)) == "Dropout(0.25)"
