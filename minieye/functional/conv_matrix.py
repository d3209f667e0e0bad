"""The convolution as an explicit matrix (seed 003, "Deconvolution in Deep Learning").

Reading x row by row into a vector D, the convolution is ``D^T C``: column k of C is
the kernel placed at output position k inside an all-zero input-sized array, read
row by row. The transposed convolution is ``E C^T``: it maps an output-sized vector
E back to the input size, which is what deep learning calls "deconvolution". Only
for small sizes (C is dense); the kernels never build it.
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

from ..checks import as_float_array, fail, fail_type, pair
from ..kernels.conv_geometry import conv_output_size

__all__ = ["conv_matrix"]


def conv_matrix(input_shape: Any, weight: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1) -> np.ndarray:
    """The matrix C with ``conv2d(x, w).ravel() == x.ravel() @ C`` for one sample.

    Shapes: input_shape (C_in, H, W) with weight (C_out, C_in, kH, kW), or (H, W) with a
    single-channel kernel (kH, kW) -> C of shape (C_in*H*W, C_out*H_out*W_out).
    Then ``conv_transpose2d(y, w).ravel() == y.ravel() @ C.T`` (the output_padding that
    restores H, W is implied).
    """
    where = "conv_matrix"
    w = as_float_array(weight, where, "weight")
    try:
        shape = tuple(operator.index(v) for v in input_shape)
    except TypeError:
        got = f"an array of shape {input_shape.shape}" if isinstance(input_shape, np.ndarray) \
            else f"input_shape={input_shape!r}"
        raise fail_type(where, "input_shape a tuple of ints, (C_in, H, W) or (H, W)", got,
                        "the arguments are conv_matrix(input_shape, weight)") from None
    if w.ndim == 2 and len(shape) == 2:
        w, shape = w[None, None], (1,) + shape
    if w.ndim != 4 or len(shape) != 3 or w.shape[1] != shape[0]:
        raise fail(where, "input_shape (C_in, H, W) with weight (C_out, C_in, kH, kW), or (H, W) with (kH, kW)",
                   f"input_shape={tuple(input_shape)}, weight.shape == {w.shape}")
    sh, sw = pair(stride, where, "stride", minimum=1)
    ph, pw = pair(padding, where, "padding", minimum=0)
    dh, dw = pair(dilation, where, "dilation", minimum=1)
    c_out, c_in, kh, kw = w.shape
    _, h, wd = shape
    h_out = conv_output_size(h, kh, sh, ph, dh)
    w_out = conv_output_size(wd, kw, sw, pw, dw)
    if h_out < 1 or w_out < 1:
        raise fail(where, "the kernel to fit the padded input", f"input_shape={shape}, weight.shape == {w.shape}")
    # One entry per (o, a, b, c, i, j): row = input pixel read, column = output pixel written.
    o, a, b, c, i, j = np.meshgrid(np.arange(c_out), np.arange(h_out), np.arange(w_out), np.arange(c_in),
                                   np.arange(kh), np.arange(kw), indexing="ij")
    r = a * sh - ph + i * dh
    q = b * sw - pw + j * dw
    inside = (r >= 0) & (r < h) & (q >= 0) & (q < wd)
    rows = (c * h + r) * wd + q
    cols = (o * h_out + a) * w_out + b
    matrix = np.zeros((c_in * h * wd, c_out * h_out * w_out), dtype=w.dtype)
    np.add.at(matrix, (rows[inside], cols[inside]), w[o, c, i, j][inside])
    return matrix
