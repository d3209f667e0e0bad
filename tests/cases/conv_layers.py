"""Layer-table rows for Conv2D and ConvTranspose2D (drawn geometry, float64, small arrays)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from minieye.kernels.conv import conv_transpose_output_size  # the plain formula (may give < 1)
from minieye.layers import Conv2D, ConvTranspose2D
from minieye.testing.case import LayerCase


@st.composite
def _geometry(draw, transposed: bool):
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(1, 2))
    if transposed:
        output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        hw = (draw(st.integers(2, 5)), draw(st.integers(2, 5)))
        # padding may not eat the whole output
        padding = tuple(p if conv_transpose_output_size(h, kk, s, p, op, d) >= 1 else 0
                        for h, kk, s, p, op, d in zip(hw, k, stride, padding, output_padding, dilation))
        layer = ConvTranspose2D(c_in, c_out, k, stride=stride, padding=padding, output_padding=output_padding,
                                dilation=dilation, groups=groups, dtype=np.float64, rng=rng)
    else:
        hw = tuple(draw(st.integers(max(1, d * (kk - 1) + 1 - 2 * p), 7)) for kk, d, p in zip(k, dilation, padding))
        layer = Conv2D(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation, groups=groups,
                       dtype=np.float64, rng=rng)
    layer.bias.value[:] = rng.standard_normal(c_out)
    x = rng.standard_normal((n, c_in) + hw)
    return layer, (x,)


@st.composite
def _same_padding(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    layer = Conv2D(2, 3, draw(st.sampled_from([1, 3, 5])), padding="same", dtype=np.float64, rng=rng)
    return layer, (rng.standard_normal((2, 2, 6, 5)),)


CASES = [
    LayerCase(Conv2D, _geometry(False), id="Conv2D"),
    LayerCase(Conv2D, _same_padding(), id="Conv2D-same"),
    LayerCase(ConvTranspose2D, _geometry(True), id="ConvTranspose2D"),
]
