"""A strided convolution whose kernel the stride divides, as one matrix product per shift of its phase planes.

``conv_taps`` multiplies one product per kernel tap on views of the zero-padded phase planes
(``conv_gemm.pad_sample``: padded pixel (r, q) of channel c in plane ``(c, (r % s_h)*s_w + q % s_w)`` at
``(r // s_h)*row + q // s_w``). At stride s each tap's product then has only c_in terms. When s
divides the kernel (4x4 at stride 2), tap (i, j) = (u*s_h + p_h, v*s_w + p_w) reads phase (p_h, p_w)
at the offset ``(a + u)*row + b + v``, the same for every phase: the s_h*s_w taps of one *shift*
(u, v) read the rows (c, phase) of the planes, which lie ``plane_len`` apart, at one offset. So

    forward       Y_wide   = sum over shifts of  Ws[t] @ view_t         (c_out x c_in*s_h*s_w terms)
    grad_input    view_t  += Ws[t]^T @ dY_wide
    grad_weight   dWs[t]  += dY_wide @ view_t^T

with ``Ws[t][o, c*s_h*s_w + phase] = w[o, c, u*s_h + p_h, v*s_w + p_w]``: (kh/s_h)*(kw/s_w) products
of s_h*s_w times the terms of ``conv_taps``' (4 of 128 terms instead of 16 of 32 for the 32 -> 16
up-sampler of bench_kernels), and the weight gradient without the unfolded copy of ``conv_gemm``.
Wide columns and tiles of output rows as in ``conv_taps``; dY_wide is zero at the extra columns.
Threads take samples ``first, first + step, ...`` with their own scratch. Dilation 1, no groups.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from .conv_blas import gemm
from .conv_gemm import crop_sample, crop_tile, pad_sample, widen_tile

__all__ = ["shift_weight", "from_shift_weight", "forward_and_grad_weight", "grad_input"]


def shift_weight(w: np.ndarray, stride: tuple[int, int]) -> np.ndarray:
    """(c_out, c_in, kh, kw) -> Ws (shifts, c_out, c_in*s_h*s_w), shifts (kh/s_h)*(kw/s_w) row-major."""
    c_out, c_in, kh, kw = w.shape
    sh, sw = stride
    ws = w.reshape(c_out, c_in, kh // sh, sh, kw // sw, sw).transpose(2, 4, 0, 1, 3, 5)
    return np.ascontiguousarray(ws).reshape((kh // sh) * (kw // sw), c_out, c_in * sh * sw)


def from_shift_weight(ws: np.ndarray, c_in: int, kernel_hw: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """The adjoint of ``shift_weight``: Ws (shifts, c_out, c_in*s_h*s_w) -> (c_out, c_in, kh, kw)."""
    (kh, kw), (sh, sw) = kernel_hw, stride
    c_out = ws.shape[1]
    w = ws.reshape(kh // sh, kw // sw, c_out, c_in, sh, sw).transpose(2, 3, 0, 4, 1, 5)
    return np.ascontiguousarray(w).reshape(c_out, c_in, kh, kw)


@kernel
def forward_and_grad_weight(x, ws, bias, dy, y, dws, need_y, need_dw, planes, tile_buf, ints, scalars, first, step,
                            tile_rows, shifts_w, stride_h, stride_w, pad_h, pad_w):
    """y[n] = conv2d(x[n], w) + bias and/or dws[t] += sum_n dY_n @ view_t^T, for n = first, first + step, ...
    (one padding of x[n] serves both). Shapes: x (n, c_in, h, w), ws and dws (shifts, c_out, c_in*s_h*s_w),
    bias (c_out,), dy and y (n, c_out, h_out, w_out) (the one not needed may be any 4-D array); scratch planes
    (c_in, s_h*s_w, plane_len) as ``conv_gemm``'s, tile_buf (2 * c_out * tile_rows*row,)."""
    shifts, c_out, k = ws.shape
    h_out = dy.shape[2] if need_dw else y.shape[2]
    row = -(-(x.shape[3] + 2 * pad_w) // stride_w)
    plane_len = planes.shape[2]
    flat = planes.reshape(-1)
    half = tile_buf.shape[0] // 2
    for n in range(first, x.shape[0], step):
        pad_sample(x, n, planes, pad_h, pad_w, stride_h, stride_w, 0, True)
        for a0 in range(0, h_out, tile_rows):
            a1 = min(h_out, a0 + tile_rows)
            span = (a1 - a0) * row
            out = tile_buf[:c_out * span]
            grad = tile_buf[half:half + c_out * span]
            if need_dw:
                widen_tile(dy, n, 0, grad.reshape((c_out, span)), 0, a0, a1, row)
            for t in range(shifts):
                off = (a0 + t // shifts_w) * row + t % shifts_w
                if need_y:
                    gemm(False, False, ws[t].reshape(-1), k, flat[off:], plane_len, out, span, c_out, span, k,
                         0.0 if t == 0 else 1.0, ints, scalars)
                if need_dw:
                    gemm(False, True, grad, span, flat[off:], plane_len, dws[t].reshape(-1), k, c_out, k, span, 1.0,
                         ints, scalars)
            if need_y:
                crop_tile(out.reshape((c_out, span)), 0, 0, y, n, a0, a1, row, bias)


@kernel
def grad_input(dy, ws, dx, planes, tile_buf, ints, scalars, first, step, tile_rows, shifts_w,
               stride_h, stride_w, pad_h, pad_w):
    """dx[n] = C^T dy[n] for n = first, first + step, ...: each shift's product added onto its view of zeroed
    phase planes, then gathered back. Shapes: dy (n, c_out, h_out, w_out), ws (shifts, c_out, c_in*s_h*s_w),
    dx (n, c_in, h, w); scratch as in forward_and_grad_weight."""
    shifts, c_out, k = ws.shape
    h_out = dy.shape[2]
    row = -(-(dx.shape[3] + 2 * pad_w) // stride_w)
    plane_len = planes.shape[2]
    flat = planes.reshape(-1)
    for n in range(first, dy.shape[0], step):
        planes[:, :, :] = 0
        for a0 in range(0, h_out, tile_rows):
            a1 = min(h_out, a0 + tile_rows)
            span = (a1 - a0) * row
            src = tile_buf[:c_out * span].reshape((c_out, span))
            widen_tile(dy, n, 0, src, 0, a0, a1, row)
            for t in range(shifts):
                off = (a0 + t // shifts_w) * row + t % shifts_w
                gemm(True, False, ws[t].reshape(-1), k, src.reshape(-1), span, flat[off:], plane_len, k, span, c_out,
                     1.0, ints, scalars)
        crop_sample(planes, dx, n, pad_h, pad_w, stride_h, stride_w, 0)
