"""2-D convolution (cross-correlation, NCHW) and its two adjoints, on trusted arrays.

With stride s, padding p, dilation d and ``groups`` g (channel c_in of group
``c // (c_in/g)`` only meets the output channels of that group), the forward is

    y[n, o, a, b] = sum_{c in group(o), i, j} w[o, c', i, j] * x[n, c, a*s_h - p_h + i*d_h, b*s_w - p_w + j*d_w]

(c' = c - group_start; x is zero outside the image). It is linear in x and in w:

    grad_input:  dx = C^T dy          (the transposed convolution, "deconvolution")
    grad_weight: dw[o, c', i, j] = sum_{n, a, b} dy[n, o, a, b] * x[n, c, a*s_h - p_h + i*d_h, ...]

where C is the convolution matrix of ``x -> y``. ``conv_transpose2d`` is exactly
``grad_input`` as a forward map, so one implementation serves both directions:
the transposed convolution's forward is ``conv2d_grad_input``, its input gradient is
``conv2d_forward`` and its weight gradient is ``conv2d_grad_weight`` with the roles
of x and dy swapped.

Algorithms (picked per call by ``plan``; see docs/kernels.md for measurements):

- ``gemm``: unfold a slice of samples into columns (``conv_im2col``), one matrix product
  per sample and group with NumPy's BLAS, fold back with ``col2im``. Best when
  channels are many (the product does ``2 * c_out/g`` flops per unfolded element).
- ``direct``: plain loops vectorised along image rows (``conv_direct``). Best for few
  channels per group (single-channel deblurring, depthwise convolution, digits).

These functions validate nothing (``minieye.functional`` does) and expect
C-contiguous arrays of one float dtype.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import conv_direct, conv_im2col

__all__ = [
    "Geometry",
    "conv_output_size",
    "conv_transpose_output_size",
    "conv2d_forward",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "conv2d_forward_and_grad_weight",
    "conv2d_backward_transposed",
    "plan",
]


class Geometry(NamedTuple):
    """Hyper-parameters of one convolution, each spelled out per axis."""

    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    dilation_h: int = 1
    dilation_w: int = 1
    groups: int = 1

    def args(self) -> tuple[int, int, int, int, int, int]:
        """The six integers every kernel takes after its arrays."""
        return (self.stride_h, self.stride_w, self.pad_h, self.pad_w, self.dilation_h, self.dilation_w)


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis (PyTorch's formula).

    ``floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``
    """
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def conv_transpose_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """Output length of a transposed convolution along one axis (PyTorch's formula).

    ``(size - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1``
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1


# -- algorithm choice -------------------------------------------------------------------
# Bytes of one column slice: big enough that each BLAS call has real work, small enough
# to stay in cache between im2col and the product.
_SLICE_BYTES = 4 << 20


def plan(c_in: int, c_out: int, groups: int) -> str:
    """'direct' or 'gemm' for a convolution with these channel counts."""
    c_in_g, c_out_g = c_in // groups, c_out // groups
    # The product runs at BLAS speed only when both matrix sides have some width; with a
    # single input or output channel per group the unfolding costs more than it saves.
    if c_in_g * c_out_g <= 16 or c_in_g == 1 or c_out_g == 1:
        return "direct"
    return "gemm"


def _slice_size(n: int, per_sample_bytes: int) -> int:
    return int(max(1, min(n, _SLICE_BYTES // max(per_sample_bytes, 1))))


# -- entry points ---------------------------------------------------------------------------
def conv2d_forward(x: np.ndarray, w: np.ndarray, geometry: Geometry, algorithm: str | None = None) -> np.ndarray:
    """``y = conv2d(x, w)``. Shapes: x (n, c_in, h, w), w (c_out, c_in/g, kh, kw) -> (n, c_out, h_out, w_out)."""
    algorithm = algorithm or plan(x.shape[1], w.shape[0], geometry.groups)
    if algorithm == "direct":
        return conv_direct.forward(x, w, geometry)
    y, _ = conv2d_forward_and_grad_weight(x, w, None, geometry, need_y=True)
    return y


def conv2d_grad_weight(x: np.ndarray, dy: np.ndarray, kernel_hw: tuple[int, int], geometry: Geometry,
                       algorithm: str | None = None) -> np.ndarray:
    """``dw`` of ``sum(dy * conv2d(x, w))``. Shapes: x (n, c_in, h, w), dy (n, c_out, h_out, w_out)
    -> (c_out, c_in/g, kh, kw)."""
    algorithm = algorithm or plan(x.shape[1], dy.shape[1], geometry.groups)
    if algorithm == "direct":
        return conv_direct.grad_weight(x, dy, kernel_hw, geometry)
    c_out, c_in, g = dy.shape[1], x.shape[1], geometry.groups
    w_shape = np.empty((c_out, c_in // g) + tuple(kernel_hw), dtype=x.dtype)  # shape carrier only
    _, dw = conv2d_forward_and_grad_weight(x, w_shape, dy, geometry, need_y=False)
    return dw


def conv2d_forward_and_grad_weight(x: np.ndarray, w: np.ndarray, dy: np.ndarray | None, geometry: Geometry,
                                   need_y: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Forward and/or weight gradient through one unfolding of ``x`` (GEMM algorithm).

    Both are products with the same columns: ``y_n = W @ cols_n`` and ``dw = sum_n dy_n @ cols_n^T``.
    The transposed convolution's backward needs both at once (its dx and dw), so it
    unfolds its output gradient only once.
    """
    n, c_in, h, w_in = x.shape
    c_out, c_in_g, kh, kw = w.shape
    g = geometry.groups
    c_out_g = c_out // g
    h_out = conv_output_size(h, kh, geometry.stride_h, geometry.pad_h, geometry.dilation_h)
    w_out = conv_output_size(w_in, kw, geometry.stride_w, geometry.pad_w, geometry.dilation_w)
    k, l = c_in_g * kh * kw, h_out * w_out
    nb = _slice_size(n, c_in * kh * kw * l * x.itemsize)
    cols = np.empty((nb, c_in, kh, kw, h_out, w_out), dtype=x.dtype)
    y = np.empty((n, c_out, h_out, w_out), dtype=x.dtype) if need_y else None
    dw = np.zeros((g, c_out_g, k), dtype=x.dtype) if dy is not None else None
    w_mat = w.reshape(g, c_out_g, k)
    for n0 in range(0, n, nb):
        m = min(nb, n - n0)
        part = cols[:m]
        conv_im2col.im2col(x, part, n0, *geometry.args())
        mats = part.reshape(m, g, k, l)
        if y is not None:
            np.matmul(w_mat, mats, out=y[n0:n0 + m].reshape(m, g, c_out_g, l))
        if dw is not None:
            dy_mats = dy[n0:n0 + m].reshape(m, g, c_out_g, l)
            if m == 1:
                dw += np.matmul(dy_mats[0], mats[0].transpose(0, 2, 1))
            else:
                dw += np.matmul(dy_mats, mats.transpose(0, 1, 3, 2)).sum(axis=0)
    return y, (dw.reshape(c_out, c_in_g, kh, kw) if dw is not None else None)


def conv2d_grad_input(dy: np.ndarray, w: np.ndarray, input_hw: tuple[int, int], geometry: Geometry,
                      algorithm: str | None = None) -> np.ndarray:
    """``dx = C^T dy`` (also the transposed convolution's forward).

    Shapes: dy (n, c_out, h_out, w_out), w (c_out, c_in/g, kh, kw) -> (n, c_in, *input_hw).
    Input rows/columns that no window reaches (stride remainders) get zero.
    """
    n, c_out, h_out, w_out = dy.shape
    _, c_in_g, kh, kw = w.shape
    g = geometry.groups
    c_in = c_in_g * g
    algorithm = algorithm or plan(c_in, c_out, g)
    if algorithm == "direct":
        return conv_direct.grad_input(dy, w, input_hw, geometry)
    c_out_g = c_out // g
    k, l = c_in_g * kh * kw, h_out * w_out
    dx = np.zeros((n, c_in) + tuple(input_hw), dtype=dy.dtype)
    nb = _slice_size(n, c_in * kh * kw * l * dy.itemsize)
    cols = np.empty((nb, c_in, kh, kw, h_out, w_out), dtype=dy.dtype)
    w_t = w.reshape(g, c_out_g, k).transpose(0, 2, 1)
    for n0 in range(0, n, nb):
        m = min(nb, n - n0)
        part = cols[:m]
        np.matmul(w_t, dy[n0:n0 + m].reshape(m, g, c_out_g, l), out=part.reshape(m, g, k, l))
        conv_im2col.col2im(part, dx, n0, *geometry.args())
    return dx


def conv2d_backward_transposed(dy: np.ndarray, w: np.ndarray, x: np.ndarray,
                               geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Backward of the transposed convolution ``y = conv_transpose2d(x, w)``.

    Returns ``(dx, dw) = (conv2d(dy, w), grad_weight with dy as the input and x as the
    output gradient)``. Shapes: dy (n, c_out_t, H, W), w (c_in_t, c_out_t/g, kh, kw),
    x (n, c_in_t, h, w) -> dx like x, dw like w.
    """
    algorithm = plan(dy.shape[1], w.shape[0], geometry.groups)
    if algorithm == "direct":
        dx = conv_direct.forward(dy, w, geometry)
        dw = conv_direct.grad_weight(dy, x, w.shape[2:], geometry)
        return dx, dw
    dx, dw = conv2d_forward_and_grad_weight(dy, w, x, geometry, need_y=True)
    return dx, dw
