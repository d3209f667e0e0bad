"""Layer-table rows for the pooling family (minieye/layers/pool.py), 1-, 2- and 3-D.

Max-pool rows draw pairwise-distinct values (minieye.testing.strategies.arrays with
distinct=True): a tie would put the finite differences on a kink. An unpool paired
with a pool works with it in the same pass, so those rows are small networks holding
a pool/unpool pair (the harness runs them like any layer); the ``-switches`` rows are
standalone unpools holding explicit switches.
"""
from __future__ import annotations

from hypothesis import strategies as st

import minieye as me
from minieye import functional as F, layers
from minieye.testing import strategies as ms
from minieye.testing.case import LayerCase


@st.composite
def _window(draw, max_side: int = 6, nd: int = 2):
    """(kernel, stride, padding, (N, C, *spatial)) with padding <= kernel // 2 and the kernel fitting.

    3-D volumes stay small (sides up to 4) so that a gradient check stays quick."""
    max_side = min(max_side, 4) if nd == 3 else max_side
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    spatial = tuple(draw(st.integers(max(1, k - 2 * p), max_side)) for k, p in zip(kernel, padding))
    return kernel, stride, padding, (draw(ms.batch_sizes()), draw(ms.channels()), *spatial)


@st.composite
def max_pool(draw, nd: int = 2):
    kernel, stride, padding, shape = draw(_window(nd=nd))
    x = draw(ms.arrays(shape, distinct=True))
    layer = getattr(layers, f"MaxPool{nd}D")(kernel, stride, padding, name=draw(st.sampled_from([None, "pool"])))
    return layer, (x,)


@st.composite
def pool_unpool(draw, nd: int = 2):
    """Sequential(pool, unpool): overlapping windows included (repeated switches add up)."""
    kernel, stride, padding, shape = draw(_window(nd=nd))
    x = draw(ms.arrays(shape, distinct=True))
    pool = getattr(layers, f"MaxPool{nd}D")(kernel, stride, padding)
    return me.Sequential(pool, getattr(layers, f"MaxUnpool{nd}D")(pool, name="unpool")), (x,)


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
def unpool_with_switches(draw, nd: int = 2):
    """A standalone unpool holding the switches of one pooled batch (fixed N: not batch-invariant)."""
    kernel, stride, padding, shape = draw(_window(nd=nd))
    y, switches = getattr(F, f"max_pool{nd}d")(draw(ms.arrays(shape, distinct=True)), kernel, stride, padding)
    layer = getattr(layers, f"MaxUnpool{nd}D")(switches=switches, output_size=shape[2:])
    return layer, (draw(ms.arrays(y.shape)),)


@st.composite
def avg_pool(draw, nd: int = 2):
    kernel, stride, padding, shape = draw(_window(nd=nd))
    x = draw(ms.arrays(shape))
    layer = getattr(layers, f"AvgPool{nd}D")(kernel, stride, padding, count_include_pad=draw(st.booleans()))
    return layer, (x,)


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
    LayerCase(layers.MaxUnpool2D, unpool_with_switches(), id="MaxUnpool2D-switches", batch_invariant=False),
    LayerCase(layers.MaxUnpool3D, unpool_with_switches(nd=3), id="MaxUnpool3D-switches", batch_invariant=False),
    LayerCase(layers.AvgPool2D, avg_pool()),
    LayerCase(layers.Upsample, upsample()),
    LayerCase(layers.GlobalAvgPool2D, global_avg_pool()),
    LayerCase(layers.MaxPool1D, max_pool(nd=1)),
    LayerCase(layers.MaxUnpool1D, pool_unpool(nd=1), id="MaxUnpool1D-sequential"),
    LayerCase(layers.AvgPool1D, avg_pool(nd=1)),
    LayerCase(layers.MaxPool3D, max_pool(nd=3)),
    LayerCase(layers.MaxUnpool3D, pool_unpool(nd=3), id="MaxUnpool3D-sequential"),
    LayerCase(layers.AvgPool3D, avg_pool(nd=3)),
]
