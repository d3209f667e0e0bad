"""Layer-table rows for the pooling family (minieye/layers/pool.py).

Max-pool rows draw pairwise-distinct values (minieye.testing.strategies.arrays with
distinct=True): a tie would put the finite differences on a kink. MaxUnpool2D only
works with its MaxPool2D in the same pass, so its rows are small networks holding
a pool/unpool pair (the harness runs them like any layer).
"""
from __future__ import annotations

from hypothesis import strategies as st

import minieye as me
from minieye import layers
from minieye.testing import strategies as ms
from minieye.testing.case import LayerCase


@st.composite
def _window(draw, max_side: int = 6):
    """(kernel, stride, padding, (N, C, H, W)) with padding <= kernel // 2 and the kernel fitting."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h = draw(st.integers(max(1, kh - 2 * ph), max_side))
    w = draw(st.integers(max(1, kw - 2 * pw), max_side))
    return (kh, kw), stride, (ph, pw), (draw(ms.batch_sizes()), draw(ms.channels()), h, w)


@st.composite
def max_pool(draw):
    kernel, stride, padding, shape = draw(_window())
    x = draw(ms.arrays(shape, distinct=True))
    return layers.MaxPool2D(kernel, stride, padding, name=draw(st.sampled_from([None, "pool"]))), (x,)


@st.composite
def pool_unpool(draw):
    """Sequential(pool, unpool): overlapping windows included (repeated switches add up)."""
    kernel, stride, padding, shape = draw(_window())
    x = draw(ms.arrays(shape, distinct=True))
    pool = layers.MaxPool2D(kernel, stride, padding)
    return me.Sequential(pool, layers.MaxUnpool2D(pool, name="unpool")), (x,)


@st.composite
def pool_unpool_graph(draw):
    """A Graph where the pooled values feed an AvgPool2D(1) before the unpool (a layer between
    the pair, as in DeconvNet) and the pool's input also skips to an Add (fan-out)."""
    kernel, stride, padding, shape = draw(_window())
    x = draw(ms.arrays(shape, distinct=True))
    pool = layers.MaxPool2D(kernel, stride, padding)
    g = me.Graph()
    inp = g.input()
    pooled = g.add(pool, inp)
    between = g.add(layers.AvgPool2D(1), pooled)
    up = g.add(layers.MaxUnpool2D(pool), between)
    g.output(g.add(layers.Add(), up, inp))
    return g, (x,)


@st.composite
def avg_pool(draw):
    kernel, stride, padding, shape = draw(_window())
    x = draw(ms.arrays(shape))
    return layers.AvgPool2D(kernel, stride, padding, count_include_pad=draw(st.booleans())), (x,)


@st.composite
def upsample(draw):
    shape = (draw(ms.batch_sizes()), draw(ms.channels()), draw(ms.spatial_sizes(1, 4)), draw(ms.spatial_sizes(1, 4)))
    scale = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    layer = layers.Upsample(scale, mode=draw(st.sampled_from(["nearest", "bilinear"])))
    return layer, (draw(ms.arrays(shape)),)


@st.composite
def global_avg_pool(draw):
    shape = draw(ms.image_shapes())
    return layers.GlobalAvgPool2D(keepdims=draw(st.booleans())), (draw(ms.arrays(shape)),)


CASES = [
    LayerCase(layers.MaxPool2D, max_pool()),
    LayerCase(layers.MaxUnpool2D, pool_unpool(), id="MaxUnpool2D-sequential"),
    LayerCase(layers.MaxUnpool2D, pool_unpool_graph(), id="MaxUnpool2D-graph"),
    LayerCase(layers.AvgPool2D, avg_pool()),
    LayerCase(layers.Upsample, upsample()),
    LayerCase(layers.GlobalAvgPool2D, global_avg_pool()),
]
