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
The products run in ``conv_taps``' kernels (``per_shift``); this module holds the weight layouts.
Dilation 1, no groups.
"""
from __future__ import annotations

import numpy as np

__all__ = ["shift_weight", "from_shift_weight"]


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
