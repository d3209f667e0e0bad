"""im2col / col2im: unfold input patches into GEMM columns, and fold them back.

For a batch slice of ``nb`` samples starting at ``n0`` the column buffer is

    cols[b, c, i, j, oh, ow] = x[n0 + b, c, oh*stride_h - pad_h + i*dilation_h,
                                         ow*stride_w - pad_w + j*dilation_w]

(zero where the index falls in the padding), so that, viewed as a
``(nb, groups, c_in/groups * kh * kw, h_out * w_out)`` matrix stack, the convolution of
each group is one matrix product with the weight ``(c_out/groups, c_in/groups*kh*kw)``.
``col2im`` is the exact adjoint: it *adds* each column entry back onto the input
position it was read from (overlapping patches accumulate), which is how the input
gradient (and the transposed convolution) is formed.

Both kernels are parallel over the ``nb * c`` planes (a plane's rows are independent),
serial when the slice is small; the caller picks.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel, parallel_kernel, prange


@kernel
def valid_range(n_out: int, n_in: int, offset: int, stride: int) -> tuple:
    """Output indices o in [lo, hi) with 0 <= o*stride + offset < n_in."""
    lo = (-offset + stride - 1) // stride if offset < 0 else 0
    last = n_in - 1 - offset
    hi = last // stride + 1 if last >= 0 else 0
    if lo > n_out:
        lo = n_out
    if hi > n_out:
        hi = n_out
    if hi < lo:
        hi = lo
    return lo, hi


def _im2col_plane(x, cols, n0, p, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w):
    nb, c_in, kh, kw, h_out, w_out = cols.shape
    h, w = x.shape[2], x.shape[3]
    b = p // c_in
    c = p % c_in
    n = n0 + b
    for i in range(kh):
        oh_lo, oh_hi = valid_range(h_out, h, i * dilation_h - pad_h, stride_h)
        for j in range(kw):
            off_w = j * dilation_w - pad_w
            ow_lo, ow_hi = valid_range(w_out, w, off_w, stride_w)
            out = cols[b, c, i, j]
            for oh in range(h_out):
                row = out[oh]
                if oh < oh_lo or oh >= oh_hi:
                    row[:] = 0
                    continue
                src = x[n, c, oh * stride_h - pad_h + i * dilation_h]
                for ow in range(ow_lo):
                    row[ow] = 0
                if stride_w == 1:
                    for ow in range(ow_lo, ow_hi):
                        row[ow] = src[ow + off_w]
                else:
                    for ow in range(ow_lo, ow_hi):
                        row[ow] = src[ow * stride_w + off_w]
                for ow in range(ow_hi, w_out):
                    row[ow] = 0


def _col2im_plane(cols, dx, n0, p, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w):
    nb, c_in, kh, kw, h_out, w_out = cols.shape
    h, w = dx.shape[2], dx.shape[3]
    b = p // c_in
    c = p % c_in
    n = n0 + b
    for i in range(kh):
        oh_lo, oh_hi = valid_range(h_out, h, i * dilation_h - pad_h, stride_h)
        for j in range(kw):
            off_w = j * dilation_w - pad_w
            ow_lo, ow_hi = valid_range(w_out, w, off_w, stride_w)
            src_plane = cols[b, c, i, j]
            for oh in range(oh_lo, oh_hi):
                row = src_plane[oh]
                dst = dx[n, c, oh * stride_h - pad_h + i * dilation_h]
                if stride_w == 1:
                    for ow in range(ow_lo, ow_hi):
                        dst[ow + off_w] += row[ow]
                else:
                    for ow in range(ow_lo, ow_hi):
                        dst[ow * stride_w + off_w] += row[ow]


_im2col_plane_k = kernel(_im2col_plane)
_col2im_plane_k = kernel(_col2im_plane)


@kernel
def im2col(x: np.ndarray, cols: np.ndarray, n0: int, stride_h: int, stride_w: int, pad_h: int,
           pad_w: int, dilation_h: int, dilation_w: int) -> None:
    """Fill ``cols`` (nb, c_in, kh, kw, h_out, w_out) from ``x[n0:n0+nb]`` (serial)."""
    for p in range(cols.shape[0] * cols.shape[1]):
        _im2col_plane_k(x, cols, n0, p, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w)


@parallel_kernel
def im2col_parallel(x: np.ndarray, cols: np.ndarray, n0: int, stride_h: int, stride_w: int, pad_h: int,
                    pad_w: int, dilation_h: int, dilation_w: int) -> None:
    """``im2col`` with the (sample, channel) planes spread over Numba's threads."""
    for p in prange(cols.shape[0] * cols.shape[1]):
        _im2col_plane_k(x, cols, n0, p, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w)


@kernel
def col2im(cols: np.ndarray, dx: np.ndarray, n0: int, stride_h: int, stride_w: int, pad_h: int,
           pad_w: int, dilation_h: int, dilation_w: int) -> None:
    """Add ``cols`` (nb, c_in, kh, kw, h_out, w_out) back onto ``dx[n0:n0+nb]`` (serial)."""
    for p in range(cols.shape[0] * cols.shape[1]):
        _col2im_plane_k(cols, dx, n0, p, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w)


@parallel_kernel
def col2im_parallel(cols: np.ndarray, dx: np.ndarray, n0: int, stride_h: int, stride_w: int, pad_h: int,
                    pad_w: int, dilation_h: int, dilation_w: int) -> None:
    """``col2im`` over Numba's threads; planes are disjoint in ``dx``, so no races."""
    for p in prange(cols.shape[0] * cols.shape[1]):
        _col2im_plane_k(cols, dx, n0, p, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w)
