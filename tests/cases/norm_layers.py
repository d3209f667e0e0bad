"""Layer-table rows for normalisation and dropout (minieye/layers/norm.py, dropout.py), in both modes.

Training-mode BatchNorm mixes the samples of a batch (its statistics), and training-mode
Dropout draws one mask for the whole batch, so their rows are not batch-invariant; the
evaluation-mode rows are. The harness runs every forward inside ``randomness.fixed_noise``, so a
Dropout row sees the same mask in each of them. BatchNorm draws pairwise-distinct values:
two nearly equal values in a channel would make its variance, and so its Lipschitz
constant, huge for the finite differences.
"""
import math

from hypothesis import strategies as st

import minieye as me
from minieye import layers as L
from minieye.testing import LayerCase
from minieye.testing import strategies as ms

F64 = "float64"


def _randomize_affine(draw, layer):
    """Random weight and bias (ones and zeros would hide a wrong gradient), where there are any."""
    for p in layer.parameters():
        p.value[...] = draw(ms.arrays(p.shape, low=0.5 if p.name == "weight" else -1.0, high=2.0))
    return layer


@st.composite
def batch_norm(draw, cls, training):
    n, c = draw(ms.batch_sizes(1, 3)), draw(ms.channels())
    spatial = {L.BatchNorm1D: draw(st.sampled_from([(), (draw(ms.spatial_sizes()),)])),
               L.BatchNorm2D: (draw(ms.spatial_sizes()), draw(ms.spatial_sizes()))}[cls]
    if training and n * math.prod(spatial) < 2:
        n = 2  # training mode needs more than one value per channel
    layer = cls(c, eps=draw(st.sampled_from([1e-5, 1e-3])), momentum=draw(st.sampled_from([0.1, 0.5, 1.0, None])),
                affine=draw(st.booleans()), dtype=F64)
    _randomize_affine(draw, layer)
    if not training:
        layer.running_mean[...] = draw(ms.arrays((c,)))
        layer.running_var[...] = draw(ms.arrays((c,), low=0.5, high=2.0))
        layer.eval()
    return layer, (draw(ms.arrays((n, c, *spatial), distinct=training)),)


@st.composite
def layer_norm(draw):
    lead = draw(st.sampled_from([(), (2,), (1, 3)]))
    normalized = tuple(draw(st.lists(st.integers(2, 4), min_size=1, max_size=2)))
    layer = _randomize_affine(draw, L.LayerNorm(normalized, elementwise_affine=draw(st.booleans()), dtype=F64))
    return layer, (draw(ms.arrays((draw(ms.batch_sizes()), *lead, *normalized), distinct=True)),)


@st.composite
def group_norm(draw):
    groups, per_group = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    # one channel per group needs spatial positions to normalise over
    spatial = draw(st.sampled_from([(2,), (3, 2), (2, 2)] if per_group == 1 else [(), (2,), (2, 3)]))
    layer = _randomize_affine(draw, L.GroupNorm(groups, groups * per_group, affine=draw(st.booleans()), dtype=F64))
    shape = (draw(ms.batch_sizes()), groups * per_group, *spatial)
    return layer, (draw(ms.arrays(shape, distinct=True)),)


@st.composite
def dropout(draw, training):
    layer = L.Dropout(draw(st.sampled_from([0.0, 0.25, 0.5, 1.0])), seed=draw(st.none() | ms.seeds()))
    if not training:
        layer.eval()
    return layer, (draw(ms.arrays(st.one_of(ms.matrix_shapes(), ms.image_shapes()))),)


@st.composite
def small_net(draw, training):
    """Dense -> BatchNorm1D -> Tanh -> Dropout in one mode, set on the network (it reaches every layer)."""
    fin, hidden = draw(ms.features(2, 4)), draw(ms.features(2, 4))
    bn = L.BatchNorm1D(hidden, dtype=F64)
    net = me.Sequential(L.Dense(fin, hidden, dtype=F64, seed=draw(ms.seeds())), bn, L.Tanh(),
                        L.Dropout(0.5, seed=1)).train(training)
    if not training:
        bn.running_mean[...] = draw(ms.arrays((hidden,)))
    return net, (draw(ms.arrays((draw(ms.batch_sizes(2, 4)), fin), distinct=True)),)


CASES = [
    LayerCase(L.BatchNorm1D, batch_norm(L.BatchNorm1D, True), id="BatchNorm1D-train", batch_invariant=False),
    LayerCase(L.BatchNorm1D, batch_norm(L.BatchNorm1D, False), id="BatchNorm1D-eval"),
    LayerCase(L.BatchNorm2D, batch_norm(L.BatchNorm2D, True), id="BatchNorm2D-train", batch_invariant=False),
    LayerCase(L.BatchNorm2D, batch_norm(L.BatchNorm2D, False), id="BatchNorm2D-eval"),
    LayerCase(L.LayerNorm, layer_norm()),
    LayerCase(L.GroupNorm, group_norm()),
    LayerCase(L.Dropout, dropout(True), id="Dropout-train", batch_invariant=False),
    LayerCase(L.Dropout, dropout(False), id="Dropout-eval"),
    LayerCase(me.Sequential, small_net(True), id="Sequential-BatchNorm-Dropout-train", batch_invariant=False),
    LayerCase(me.Sequential, small_net(False), id="Sequential-BatchNorm-Dropout-eval"),
]
