"""Convolution as one matrix product per kernel tap, on views of the padded input: no unfolding.

The sample is laid out as in ``conv_gemm``: zero-padded and split into stride phase planes
(``pad_sample``; at stride 1 one plane, the padded image), flattened with rows of ``row``
columns. Output position (a, b) under tap (i, j) reads phase ``((i*d_h) % s_h)*s_w + (j*d_w) % s_w``
at index ``(a + (i*d_h)//s_h)*row + b + (j*d_w)//s_w``: a fixed offset per tap. So with "wide"
output columns ``t = (a - a0)*row + b`` for a tile of rows from a0 (b over the whole row; the
extra columns past ``w_out`` are computed and dropped), the input of tap (i, j) is the *view*
``planes[:, phase, base:base + span]``, a matrix whose rows are one channel's planes apart, and

    forward      Y_wide = sum over taps of  W[:, :, i, j] @ view_ij
    grad_input   view_ij += W[:, :, i, j]^T @ dY_wide     (accumulated, then gathered back)

with ``dY_wide`` the output gradient widened with zeros at the extra columns (so they add
nothing). Each pass is ``kh*kw`` BLAS calls on strided views (``conv_blas.gemm`` with a
leading dimension and ``beta`` = 1): the unfolded copy that ``conv_gemm`` writes, and reads
back, never exists. The weight gradient per tap, ``dW[:, :, i, j] = sum_n dY_wide @ view^T``,
re-reads dY for every tap and measured no faster than unfolding, so a TAPS plan runs it (and,
with more output than input channels and AVX2 BLAS, the input gradient) as GEMM (docs/kernels.md).

Per shift (``per_shift``; ``conv_shifts`` explains it): where the stride divides the kernel, the
s_h*s_w taps of one shift (u, v) read the rows (channel, phase) of the planes, ``plane_len`` apart,
at the one offset ``(a0 + u)*row + v``: the same kernels then run one product per shift, with
``wt (shifts, c_out, c_in*s_h*s_w)``, ``kw`` the shifts per row, and the weight gradient too,
``dW[t]^T += view_t @ dY_wide^T`` (``need_dw``; from the one padding of x that the forward uses; the
product transposed, (k, c_out), ran 1.5x faster with OpenBLAS than ``dY_wide @ view_t^T``).

Threads: as in ``conv_gemm``, each call handles samples ``first, first + step, ...`` with its
own scratch. Weights arrive tap-major, ``wt (kh*kw, c_out, c_in)``.
"""
from __future__ import annotations

from ._jit import kernel
from .conv_blas import gemm
from .conv_gemm import crop_sample, crop_tile, pad_sample, widen_tile


@kernel
def tap_offset(t, a0, row, plane_len, kw, stride_h, stride_w, dil_h, dil_w):
    """Where tap t's view starts in the flattened phase planes of one channel, for a tile from row a0."""
    i, j = t // kw, t % kw
    phase = ((i * dil_h) % stride_h) * stride_w + (j * dil_w) % stride_w
    return phase * plane_len + (a0 + (i * dil_h) // stride_h) * row + (j * dil_w) // stride_w


@kernel
def _view(t, a0, row, plane_len, kw, stride_h, stride_w, dil_h, dil_w, per_shift):
    """Where tap (or shift) t's view starts in the flattened planes, for a tile from row a0."""
    if per_shift:
        return (a0 + t // kw) * row + t % kw
    return tap_offset(t, a0, row, plane_len, kw, stride_h, stride_w, dil_h, dil_w)


@kernel
def forward(x, wt, bias, dy, y, dwt, need_y, need_dw, per_shift, planes, tile_buf, ints, scalars, first, step,
            tile_rows, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """y[n] = conv2d(x[n], w) + bias and/or (``need_dw``, per shift only) dwt[t] += sum_n view_t @ dY_n^T, for
    n = first, first + step, ... Shapes: x (n, c_in, h, w), wt (taps, c_out, k), dwt (taps, k, c_out) (k: c_in, or c_in*s_h*s_w
    per shift), bias (c_out,), y and dy (n, c_out, h_out, w_out) (either may stand in for the other when not
    needed); scratch planes (c_in, s_h*s_w, plane_len) as ``conv_gemm``'s, tile_buf (c_out * tile_rows*row,),
    twice that with ``need_dw``; ints, scalars: ``gemm``'s."""
    taps, c_out, k = wt.shape
    h_out = y.shape[2] if need_y else dy.shape[2]
    row = -(-(x.shape[3] + 2 * pad_w) // stride_w)
    plane_len = planes.shape[2]
    ld = plane_len if per_shift else planes.shape[1] * plane_len  # from one row of a view to the next
    flat = planes.reshape(-1)
    for n in range(first, x.shape[0], step):
        pad_sample(x, n, planes, pad_h, pad_w, stride_h, stride_w, 0, True)
        for a0 in range(0, h_out, tile_rows):
            a1 = min(h_out, a0 + tile_rows)
            span = (a1 - a0) * row
            out = tile_buf[:c_out * span]
            grad = tile_buf[c_out * span:2 * c_out * span]
            if need_dw:
                widen_tile(dy, n, 0, grad.reshape((c_out, span)), 0, a0, a1, row)
            for t in range(taps):
                off = _view(t, a0, row, plane_len, kw, stride_h, stride_w, dil_h, dil_w, per_shift)
                if need_y:
                    gemm(False, False, wt[t].reshape(-1), k, flat[off:], ld, out, span, c_out, span, k,
                         0.0 if t == 0 else 1.0, ints, scalars)
                if need_dw:
                    gemm(False, True, flat[off:], ld, grad, span, dwt[t].reshape(-1), c_out, k, c_out, span, 1.0,
                         ints, scalars)
            if need_y:
                crop_tile(out.reshape((c_out, span)), 0, 0, y, n, a0, a1, row, bias)


@kernel
def grad_input(dy, wt, dx, per_shift, planes, tile_buf, ints, scalars, first, step, tile_rows, kw,
               stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """dx[n] = C^T dy[n] for n = first, first + step, ...: each tap's (or shift's) product added onto its
    view of zeroed phase planes, then gathered back. Shapes: dy (n, c_out, h_out, w_out), wt (taps, c_out, k)
    as in forward, dx (n, c_in, h, w); scratch as in forward."""
    taps, c_out, k = wt.shape
    h_out = dy.shape[2]
    row = -(-(dx.shape[3] + 2 * pad_w) // stride_w)
    plane_len = planes.shape[2]
    ld = plane_len if per_shift else planes.shape[1] * plane_len
    flat = planes.reshape(-1)
    for n in range(first, dy.shape[0], step):
        planes[:, :, :] = 0
        for a0 in range(0, h_out, tile_rows):
            a1 = min(h_out, a0 + tile_rows)
            span = (a1 - a0) * row
            src = tile_buf[:c_out * span].reshape((c_out, span))
            widen_tile(dy, n, 0, src, 0, a0, a1, row)
            for t in range(taps):
                off = _view(t, a0, row, plane_len, kw, stride_h, stride_w, dil_h, dil_w, per_shift)
                gemm(True, False, wt[t].reshape(-1), k, src.reshape(-1), span, flat[off:], ld, k, span, c_out, 1.0,
                     ints, scalars)
        crop_sample(planes, dx, n, pad_h, pad_w, stride_h, stride_w, 0)
