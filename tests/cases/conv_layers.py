"""Layer-table rows for the convolutions, 1-, 2- and 3-D (drawn geometry, float64, small arrays).

3-D volumes stay small (sides up to 4, one or two channels) so that a gradient check stays quick.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from minieye import layers
from minieye.kernels.conv_geometry import conv_transpose_output_size  # the plain formula (may give < 1)
from minieye.testing.case import LayerCase


@st.composite
def _geometry(draw, transposed: bool, nd: int = 2):
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, 1)) for _ in range(nd))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    n = draw(st.integers(1, 2))
    top = 4 if nd == 3 else 7
    if transposed:
        output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        size = tuple(draw(st.integers(2, min(top, 5))) for _ in range(nd))
        # padding may not eat the whole output
        padding = tuple(p if conv_transpose_output_size(m, kk, s, p, op, d) >= 1 else 0
                        for m, kk, s, p, op, d in zip(size, k, stride, padding, output_padding, dilation))
        layer = getattr(layers, f"ConvTranspose{nd}D")(c_in, c_out, k, stride=stride, padding=padding,
                                                       output_padding=output_padding, dilation=dilation,
                                                       groups=groups, dtype=np.float64, rng=rng)
    else:
        size = tuple(draw(st.integers(max(1, d * (kk - 1) + 1 - 2 * p), max(top, d * (kk - 1) + 1)))
                     for kk, d, p in zip(k, dilation, padding))
        layer = getattr(layers, f"Conv{nd}D")(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation,
                                              groups=groups, dtype=np.float64, rng=rng)
    layer.bias.value[:] = rng.standard_normal(c_out)
    x = rng.standard_normal((n, c_in) + size)
    return layer, (x,)


@st.composite
def _same_padding(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    layer = layers.Conv2D(2, 3, draw(st.sampled_from([1, 3, 5])), padding="same", dtype=np.float64, rng=rng)
    return layer, (rng.standard_normal((2, 2, 6, 5)),)


@st.composite
def _few_taps(draw, transposed: bool):
    """Few input taps per output into 4 or more channels on "same" planes: "auto" runs them by
    ``conv_small`` (for a transposed layer, its convolution: from its output's channels into its input's)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    k = (draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3])))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(d * (kk - 1) // 2 for kk, d in zip(k, dilation))
    few, many = draw(st.integers(1, 27 // (k[0] * k[1]))), draw(st.integers(4, 10))
    size = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    if transposed:
        # output_padding below the dilation (stride 1) makes the output larger than "same": GEMM takes over
        output_padding = tuple(draw(st.integers(0, d - 1)) for d in dilation)
        layer = layers.ConvTranspose2D(many, few, k, padding=padding, output_padding=output_padding,
                                       dilation=dilation, dtype=np.float64, rng=rng)
        x = rng.standard_normal((2, many) + size)
    else:
        layer = layers.Conv2D(few, many, k, padding=padding, dilation=dilation, dtype=np.float64, rng=rng)
        x = rng.standard_normal((2, few) + size)
    layer.bias.value[:] = rng.standard_normal(layer.bias.value.shape)
    return layer, (x,)


@st.composite
def _many_channels(draw, transposed: bool):
    """16 channels on the convolution's input side: "auto" runs them per tap (stride 1)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    k, dilation, padding = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 2))
    size = (draw(st.integers(dilation * (k - 1) + 1, 6)), draw(st.integers(dilation * (k - 1) + 1, 6)))
    c_small = draw(st.integers(2, 16))
    if transposed:
        layer = layers.ConvTranspose2D(c_small, 16, k, padding=0, dilation=dilation, dtype=np.float64, rng=rng)
        x = rng.standard_normal((2, c_small) + size)
    else:
        layer = layers.Conv2D(16, c_small, k, padding=padding, dilation=dilation, dtype=np.float64, rng=rng)
        x = rng.standard_normal((2, 16) + size)
    layer.bias.value[:] = rng.standard_normal(layer.bias.value.shape)
    return layer, (x,)


CASES = [
    LayerCase(layers.Conv2D, _geometry(False), id="Conv2D"),
    LayerCase(layers.Conv2D, _same_padding(), id="Conv2D-same"),
    LayerCase(layers.ConvTranspose2D, _geometry(True), id="ConvTranspose2D"),
    LayerCase(layers.Conv2D, _many_channels(False), id="Conv2D-taps"),
    LayerCase(layers.Conv2D, _few_taps(False), id="Conv2D-small"),
    LayerCase(layers.ConvTranspose2D, _few_taps(True), id="ConvTranspose2D-small"),
    LayerCase(layers.ConvTranspose2D, _many_channels(True), id="ConvTranspose2D-taps"),
    LayerCase(layers.Conv1D, _geometry(False, nd=1), id="Conv1D"),
    LayerCase(layers.ConvTranspose1D, _geometry(True, nd=1), id="ConvTranspose1D"),
    LayerCase(layers.Conv3D, _geometry(False, nd=3), id="Conv3D"),
    LayerCase(layers.ConvTranspose3D, _geometry(True, nd=3), id="ConvTranspose3D"),
]
