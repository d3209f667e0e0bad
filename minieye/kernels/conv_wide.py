"""Direct stride-1 convolution on zero-padded "wide" planes (few channels per group).

With the input zero-padded to rows of width ``wp = w + 2*pad_w`` and flattened, an
output row ``a`` and the next one are ``wp`` apart, and kernel tap ``(i, j)`` reads
the input at a fixed offset ``i*dilation_h*wp + j*dilation_w``. So for a tile of
output rows every tap is one long contiguous multiply-add

    yw[n, o, t] += w[o, c, i, j] * xp[n, c, t + i*d_h*wp + j*d_w]      (t over the tile)

with no padding tests; the ``wp - w_out`` columns per row past the output width are
computed and cropped away by the caller. Long contiguous loops vectorise well even
for 8x8 digits, where per-row loops would be 8 elements long.

The input gradient of a stride-1 convolution is itself a stride-1 convolution (of
the padded output gradient, with the kernel flipped and the channel roles swapped),
so the caller reuses ``forward``; the weight gradient is a set of dot products

    dw[o, c, i, j] = sum_{n, t} dyw[n, o, t] * xp[n, c, t + i*d_h*wp + j*d_w]

with dy widened by zero columns, so the cropped positions contribute nothing.
Tasks: (sample, output channel, row tile) for the forward; (output channel, input
channel, sample, row tile) for the weight gradient, each writing its own partial sum.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel


@kernel
def _forward_task(xp, w, yw, t, n_tiles, tile_rows, wp, dil_h, dil_w):
    c_in = xp.shape[1]
    c_out, span_all = yw.shape[1], yw.shape[2]
    c_in_g, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    c_out_g = c_out // (c_in // c_in_g)
    h_out = span_all // wp
    plane = t // n_tiles
    n = plane // c_out
    o = plane % c_out
    c0 = (o // c_out_g) * c_in_g
    a0 = (t % n_tiles) * tile_rows
    a1 = min(h_out, a0 + tile_rows)
    length = (a1 - a0) * wp
    acc = yw[n, o, a0 * wp:a1 * wp]
    acc[:] = 0
    for cc in range(c_in_g):
        src = xp[n, c0 + cc]
        for i in range(kh):
            for j in range(kw):
                wv = w[o, cc, i, j]
                base = (a0 + i * dil_h) * wp + j * dil_w
                # A slice, not src[base + q]: Numba cannot prove base + q >= 0, and the
                # negative-index check it would add stops LLVM from vectorising the loop.
                shifted = src[base:base + length]
                for q in range(length):
                    acc[q] += wv * shifted[q]


@kernel
def _grad_weight_task(xp, dyw, partial, t, n_tiles, tile_rows, wp, dil_h, dil_w):
    n_img, c_in = xp.shape[0], xp.shape[1]
    c_out, span_all = dyw.shape[1], dyw.shape[2]
    c_in_g, kh, kw = partial.shape[2], partial.shape[3], partial.shape[4]
    c_out_g = c_out // (c_in // c_in_g)
    h_out = span_all // wp
    chunks = n_img * n_tiles
    pair = t // chunks
    chunk = t % chunks
    o = pair // c_in_g
    cc = pair % c_in_g
    c = (o // c_out_g) * c_in_g + cc
    n = chunk // n_tiles
    a0 = (chunk % n_tiles) * tile_rows
    a1 = min(h_out, a0 + tile_rows)
    length = (a1 - a0) * wp
    g = dyw[n, o, a0 * wp:a1 * wp]
    src = xp[n, c]
    for i in range(kh):
        for j in range(kw):
            base = (a0 + i * dil_h) * wp + j * dil_w
            shifted = src[base:base + length]
            s = g[0] * 0
            for q in range(length):
                s += g[q] * shifted[q]
            partial[chunk, o, cc, i, j] = s


@kernel
def _grad_weight_small_task(xp, dy, partial, t, n_chunks, chunk, wp, dil_h, dil_w):
    """Weight gradient for small planes: one (output channel, input channel) pair over a
    chunk of samples. Element-wise products are summed in one short row per tap and
    reduced once at the end: 80-element dot products (8x8 digits) spend more time in
    their horizontal reductions than in the products. dy (n, c_out, h_out, w_out) is
    widened to rows of ``wp`` here, one sample at a time."""
    n_img, c_in = xp.shape[0], xp.shape[1]
    c_out, h_out, w_out = dy.shape[1], dy.shape[2], dy.shape[3]
    c_in_g, kh, kw = partial.shape[2], partial.shape[3], partial.shape[4]
    c_out_g = c_out // (c_in // c_in_g)
    length = h_out * wp
    pair = t // n_chunks
    o = pair // c_in_g
    cc = pair % c_in_g
    c = (o // c_out_g) * c_in_g + cc
    n0 = (t % n_chunks) * chunk
    acc = np.zeros((kh * kw, length), dtype=xp.dtype)
    g = np.zeros(length, dtype=xp.dtype)  # columns w_out .. wp-1 of each row stay zero
    for n in range(n0, min(n_img, n0 + chunk)):
        for a in range(h_out):
            row_in = dy[n, o, a]
            row_out = g[a * wp:a * wp + w_out]
            for b in range(w_out):
                row_out[b] = row_in[b]
        src = xp[n, c]
        for i in range(kh):
            for j in range(kw):
                base = i * dil_h * wp + j * dil_w
                shifted = src[base:base + length]
                row = acc[i * kw + j]
                for q in range(length):
                    row[q] += g[q] * shifted[q]
    for i in range(kh):
        for j in range(kw):
            partial[t % n_chunks, o, cc, i, j] = acc[i * kw + j].sum()


@kernel
def grad_weight_small_tasks(xp, dy, partial, t0, t1, n_chunks, chunk, wp, dil_h, dil_w):
    """Run small-plane weight-gradient tasks t0 .. t1-1."""
    for t in range(t0, t1):
        _grad_weight_small_task(xp, dy, partial, t, n_chunks, chunk, wp, dil_h, dil_w)


@kernel
def forward_tasks(xp, w, yw, t0, t1, n_tiles, tile_rows, wp, dil_h, dil_w):
    """Run forward tasks t0 .. t1-1 (the caller splits the range over threads)."""
    for t in range(t0, t1):
        _forward_task(xp, w, yw, t, n_tiles, tile_rows, wp, dil_h, dil_w)


@kernel
def grad_weight_tasks(xp, dyw, partial, t0, t1, n_tiles, tile_rows, wp, dil_h, dil_w):
    """Run weight-gradient tasks t0 .. t1-1."""
    for t in range(t0, t1):
        _grad_weight_task(xp, dyw, partial, t, n_tiles, tile_rows, wp, dil_h, dil_w)
