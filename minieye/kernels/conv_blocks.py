"""Convolution products that span a block of whole samples: the GEMM and TAPS kernels for small planes.

``conv_gemm`` and ``conv_taps`` multiply one sample (or one tile of its rows) at a time. On small
planes such a product is small (the digits layer: 16x9 by 9x80 per sample), and BLAS's per-call
cost and short loops dominate it. Here one product covers ``block`` samples, laid side by side
along the columns, sized by the plan so that its operands stay in the L2 cache:

- GEMM: each sample is padded into its phase planes and unfolded (``conv_gemm``'s layout, one
  whole sample per tile of ``span = h_out*row`` columns) into columns ``s*span ..`` of one
  ``(c_in/g*kh*kw, block*span)`` matrix; then per group one product ``W @ cols`` (forward),
  ``cols @ dY^T`` (weight gradient, dY widened the same way) or ``W^T @ dY`` (input gradient,
  folded back sample by sample).
- TAPS: the samples' phase planes are stacked, sample s at ``s*L`` in every channel's flattened
  planes (``L = hps*row``: its padded rows), so one view per kernel tap covers the block: output
  column ``s*L + a*row + b`` reads its input at a fixed offset past its own, which for the valid
  outputs (a < h_out, b < w_out) stays inside sample s. The other columns are computed and
  dropped (forward) or carry zeros (input gradient), as the extra columns of one sample do.

Threads take every ``step``-th block from block ``first``, each with its own scratch (as in
``conv_gemm``). Signatures are those of the per-sample kernels with ``block`` (samples per
product) in place of ``tile_rows``.
"""
from __future__ import annotations

from ._jit import kernel
from .conv_blas import gemm
from .conv_gemm import crop_sample, crop_tile, fold_tile, pad_sample, unfold_tile, widen_tile
from .conv_taps import tap_offset


@kernel
def _exact_columns(plane, cols, t0, h_out, w_out, row, kh, kw, stride_h, stride_w, dil_h, dil_w, fold):
    """``unfold_tile`` of a whole sample without the wide columns: cols[(c, i, j), t0 + a*w_out + b] from
    the phase planes, one run per output row; ``fold``: its adjoint (add the columns onto the planes)."""
    for c in range(plane.shape[0]):
        for i in range(kh):
            for j in range(kw):
                phase = ((i * dil_h) % stride_h) * stride_w + (j * dil_w) % stride_w
                base = ((i * dil_h) // stride_h) * row + (j * dil_w) // stride_w
                columns = cols[(c * kh + i) * kw + j][t0:t0 + h_out * w_out]
                for a in range(h_out):
                    pixels = plane[c, phase, base + a * row:base + a * row + w_out]
                    run = columns[a * w_out:(a + 1) * w_out]
                    if fold:
                        for b in range(w_out):
                            pixels[b] += run[b]
                    else:
                        for b in range(w_out):
                            run[b] = pixels[b]


@kernel
def _crop_exact(tile, t0, o0, y, n, bias):
    """y[n, o0 + o] = tile[o, t0:t0 + h_out*w_out] + bias[o0 + o]: a sample's output without wide columns."""
    hw = y.shape[2] * y.shape[3]
    for o in range(tile.shape[0]):
        shift = bias[o0 + o]
        dst = y[n, o0 + o].reshape(-1)
        src = tile[o][t0:t0 + hw]
        for t in range(hw):
            dst[t] = src[t] + shift


@kernel
def _widen_exact(dy, n, o0, tile, t0):
    """tile[o, t0:t0 + h_out*w_out] = dy[n, o0 + o]."""
    hw = dy.shape[2] * dy.shape[3]
    for o in range(tile.shape[0]):
        src = dy[n, o0 + o].reshape(-1)
        dst = tile[o][t0:t0 + hw]
        for t in range(hw):
            dst[t] = src[t]


@kernel
def forward_and_grad_weight(x, w2, bias, dy, y, dw_acc, cols_buf, plane, tile_buf, ints, scalars, first, step,
                            need_y, need_dw, block, exact, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """``conv_gemm.forward_and_grad_weight`` with products over blocks of samples. ``exact``: each sample
    takes ``h_out*w_out`` columns (else ``h_out*row``, the wide ones). Scratch: cols_buf (c_in*kh*kw *
    block*span), plane (c_in, s_h*s_w, plane), tile_buf (c_out/g * block*span)."""
    n_img = x.shape[0]
    groups, c_out_g, k = w2.shape
    h_out = dy.shape[2] if need_dw else y.shape[2]
    w_out = dy.shape[3] if need_dw else y.shape[3]
    row = -(-(x.shape[3] + 2 * pad_w) // stride_w)
    span = h_out * (w_out if exact else row)
    if need_dw:
        dw_acc[:] = 0
    for n0 in range(first * block, n_img, step * block):
        count = min(n_img - n0, block)
        width = count * span
        cols = cols_buf[:groups * k * width].reshape((groups * k, width))
        out = tile_buf[:c_out_g * width].reshape((c_out_g, width))
        for s in range(count):
            pad_sample(x, n0 + s, plane, pad_h, pad_w, stride_h, stride_w, 0, True)
            if exact:
                _exact_columns(plane, cols, s * span, h_out, w_out, row, kh, kw, stride_h, stride_w, dil_h, dil_w,
                               False)
            else:
                unfold_tile(plane, cols, s * span, 0, h_out, row, kh, kw, stride_h, stride_w, dil_h, dil_w)
        for g in range(groups):
            cols_g = cols_buf[g * k * width:(g + 1) * k * width]
            if need_y:
                gemm(False, False, w2[g].reshape(-1), k, cols_g, width, out.reshape(-1), width,
                     c_out_g, width, k, 0.0, ints, scalars)
                for s in range(count):
                    if exact:
                        _crop_exact(out, s * span, g * c_out_g, y, n0 + s, bias)
                    else:
                        crop_tile(out, s * span, g * c_out_g, y, n0 + s, 0, h_out, row, bias)
            if need_dw:
                for s in range(count):
                    if exact:
                        _widen_exact(dy, n0 + s, g * c_out_g, out, s * span)
                    else:
                        widen_tile(dy, n0 + s, g * c_out_g, out, s * span, 0, h_out, row)
                gemm(False, True, cols_g, width, out.reshape(-1), width, dw_acc[g].reshape(-1),
                     c_out_g, k, c_out_g, width, 1.0, ints, scalars)


@kernel
def grad_input(dy, w2t, dx, cols_buf, plane, tile_buf, ints, scalars, first, step, block, exact, kh, kw,
               stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """``conv_gemm.grad_input`` with products over blocks of samples; ``exact`` and scratch as in
    forward_and_grad_weight."""
    n_img, _, h_out, w_out = dy.shape
    groups, k, c_out_g = w2t.shape
    row = -(-(dx.shape[3] + 2 * pad_w) // stride_w)
    span = h_out * (w_out if exact else row)
    for n0 in range(first * block, n_img, step * block):
        count = min(n_img - n0, block)
        width = count * span
        cols = cols_buf[:groups * k * width].reshape((groups * k, width))
        src = tile_buf[:c_out_g * width].reshape((c_out_g, width))
        for g in range(groups):
            for s in range(count):
                if exact:
                    _widen_exact(dy, n0 + s, g * c_out_g, src, s * span)
                else:
                    widen_tile(dy, n0 + s, g * c_out_g, src, s * span, 0, h_out, row)
            gemm(False, False, w2t[g].reshape(-1), c_out_g, src.reshape(-1), width,
                 cols_buf[g * k * width:(g + 1) * k * width], width, k, width, c_out_g, 0.0, ints, scalars)
        for s in range(count):
            plane[:, :, :] = 0
            if exact:
                _exact_columns(plane, cols, s * span, h_out, w_out, row, kh, kw, stride_h, stride_w, dil_h, dil_w,
                               True)
            else:
                fold_tile(cols, s * span, plane, 0, h_out, row, kh, kw, stride_h, stride_w, dil_h, dil_w)
            crop_sample(plane, dx, n0 + s, pad_h, pad_w, stride_h, stride_w, 0)


@kernel
def _stacked_layout(planes, h, w, pad_h, pad_w, stride_h, stride_w):
    """The padded row width, one sample's length in the stacked planes (its padded rows), the planes'
    length and the views' leading dimension (one channel's planes)."""
    row = -(-(w + 2 * pad_w) // stride_w)
    return row, -(-(h + 2 * pad_h) // stride_h) * row, planes.shape[2], planes.shape[1] * planes.shape[2]


@kernel
def taps_forward(x, wt, bias, y, planes, tile_buf, ints, scalars, first, step, block, kw,
                 stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """``conv_taps.forward`` with one product per tap over a block of stacked samples. Scratch: planes
    (c_in, s_h*s_w, block*L + slack) with ``L = hps*row``, tile_buf (c_out * block*L,)."""
    c_in = x.shape[1]
    taps, c_out = wt.shape[0], wt.shape[1]
    h_out = y.shape[2]
    row, sample_len, plane_len, channel = _stacked_layout(planes, x.shape[2], x.shape[3], pad_h, pad_w,
                                                          stride_h, stride_w)
    flat = planes.reshape(-1)
    for n0 in range(first * block, x.shape[0], step * block):
        count = min(x.shape[0] - n0, block)
        width = (count - 1) * sample_len + h_out * row  # the last sample's unused rows are not computed
        planes[:, :, :] = 0  # with the slack the columns past the last valid output read
        for s in range(count):
            pad_sample(x, n0 + s, planes, pad_h, pad_w, stride_h, stride_w, s * sample_len, False)
        out = tile_buf[:c_out * width]
        for t in range(taps):
            off = tap_offset(t, 0, row, plane_len, kw, stride_h, stride_w, dil_h, dil_w)
            gemm(False, False, wt[t].reshape(-1), c_in, flat[off:], channel, out, width, c_out, width, c_in,
                 0.0 if t == 0 else 1.0, ints, scalars)
        for s in range(count):
            crop_tile(out.reshape((c_out, width)), s * sample_len, 0, y, n0 + s, 0, h_out, row, bias)


@kernel
def taps_grad_input(dy, wt, dx, planes, tile_buf, ints, scalars, first, step, block, kw,
                    stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """``conv_taps.grad_input`` over blocks of stacked samples; scratch as in taps_forward."""
    c_in = dx.shape[1]
    taps, c_out = wt.shape[0], wt.shape[1]
    h_out = dy.shape[2]
    row, sample_len, plane_len, channel = _stacked_layout(planes, dx.shape[2], dx.shape[3], pad_h, pad_w,
                                                          stride_h, stride_w)
    flat = planes.reshape(-1)
    for n0 in range(first * block, dy.shape[0], step * block):
        count = min(dy.shape[0] - n0, block)
        width = (count - 1) * sample_len + h_out * row
        planes[:, :, :] = 0
        src = tile_buf[:c_out * width].reshape((c_out, width))
        for s in range(count):
            widen_tile(dy, n0 + s, 0, src, s * sample_len, 0, h_out, row)
            if s < count - 1:  # the rows past h_out read nothing: zero, so they add nothing
                src[:, s * sample_len + h_out * row:(s + 1) * sample_len] = 0
        for t in range(taps):
            off = tap_offset(t, 0, row, plane_len, kw, stride_h, stride_w, dil_h, dil_w)
            gemm(True, False, wt[t].reshape(-1), c_in, src.reshape(-1), width, flat[off:], channel, c_in, width,
                 c_out, 1.0, ints, scalars)
        for s in range(count):
            crop_sample(planes, dx, n0 + s, pad_h, pad_w, stride_h, stride_w, s * sample_len)
