"""Convolution as matrix products: unfold a tile of one sample, multiply with BLAS, fold back.

For one sample and one group the convolution is ``Y = W @ cols`` with
``W (c_out/g, c_in/g*kh*kw)`` and ``cols (c_in/g*kh*kw, L)`` the unfolded input; the
weight gradient is ``dW += dY @ cols^T`` and the input gradient folds
``dcols = W^T @ dY`` back onto the input (``_fold_tile``, the adjoint of ``_unfold_tile``).

Layout. Each sample is first zero-padded into ``plane`` (c_in rows of length
``hp*wp + slack``), so unfolding never tests bounds:

    cols[(c, i, j), (a - a0)*row + b] = plane[c, (a*s_h + i*d_h)*wp + b*s_w + j*d_w]

For stride 1 the tile is "wide": ``row = wp`` and b runs over the whole padded row,
so each unfolded row is a single contiguous copy; the ``wp - w_out`` extra columns per
row are computed and dropped by ``_crop_tile``, and the output gradient is widened
with zeros there (``_widen_tile``) so they contribute nothing backwards. Otherwise
``row = w_out``.

Tiles of output rows keep ``cols`` in the L2 cache between the unfolding and the
product. Threads: the caller runs one call per thread (``_threads``), each taking
every T-th sample with its own scratch and calling single-threaded BLAS (``np.dot``;
the caller holds BLAS to one thread), so BLAS's thread pool never competes with
ours. Weight gradients are summed per thread and reduced by the caller.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel


@kernel
def _pad_sample(x, n, plane, pad_h, pad_w):
    """plane[c, (ph + r)*wp + pw + q] = x[n, c, r, q], zeros elsewhere."""
    c_in, h, w = x.shape[1], x.shape[2], x.shape[3]
    wp = w + 2 * pad_w
    for c in range(c_in):
        p = plane[c]
        p[:pad_h * wp + pad_w] = 0
        for r in range(h):
            start = (pad_h + r) * wp + pad_w
            src = x[n, c, r]
            dst = p[start:start + w]  # slices keep indices provably >= 0, so loops vectorise
            for q in range(w):
                dst[q] = src[q]
            p[start + w:start + w + 2 * pad_w] = 0
        p[(pad_h + h) * wp + pad_w:] = 0


@kernel
def _unfold_tile(plane, cols, a0, a1, row, wp, kh, kw, stride_h, stride_w, dil_h, dil_w):
    c_in = plane.shape[0]
    for c in range(c_in):
        p = plane[c]
        for i in range(kh):
            for j in range(kw):
                dst = cols[(c * kh + i) * kw + j]
                if stride_h == 1 and stride_w == 1:  # wide tile: one contiguous run
                    base = (a0 + i * dil_h) * wp + j * dil_w
                    length = (a1 - a0) * wp
                    src = p[base:base + length]
                    for t in range(length):
                        dst[t] = src[t]
                else:
                    for a in range(a0, a1):
                        base = (a * stride_h + i * dil_h) * wp + j * dil_w
                        src = p[base:base + row * stride_w:stride_w]  # strided view: indices stay provably >= 0
                        out = dst[(a - a0) * row:(a - a0 + 1) * row]
                        for b in range(row):
                            out[b] = src[b]


@kernel
def _fold_tile(dcols, plane, a0, a1, row, wp, kh, kw, stride_h, stride_w, dil_h, dil_w):
    """The adjoint of _unfold_tile: add the tile's columns onto ``plane``."""
    c_in = plane.shape[0]
    for c in range(c_in):
        p = plane[c]
        for i in range(kh):
            for j in range(kw):
                src = dcols[(c * kh + i) * kw + j]
                if stride_h == 1 and stride_w == 1:
                    base = (a0 + i * dil_h) * wp + j * dil_w
                    length = (a1 - a0) * wp
                    dst = p[base:base + length]
                    for t in range(length):
                        dst[t] += src[t]
                else:
                    for a in range(a0, a1):
                        base = (a * stride_h + i * dil_h) * wp + j * dil_w
                        dst = p[base:base + row * stride_w:stride_w]
                        part = src[(a - a0) * row:(a - a0 + 1) * row]
                        for b in range(row):
                            dst[b] += part[b]


@kernel
def _crop_sample(plane, dx, n, pad_h, pad_w):
    """dx[n, c, r, q] = plane[c, (ph + r)*wp + pw + q] (the adjoint of _pad_sample)."""
    wp = dx.shape[3] + 2 * pad_w
    for c in range(dx.shape[1]):
        for r in range(dx.shape[2]):
            src = plane[c, (pad_h + r) * wp + pad_w:(pad_h + r) * wp + pad_w + dx.shape[3]]
            dst = dx[n, c, r]
            for q in range(dx.shape[3]):
                dst[q] = src[q]


@kernel
def _crop_tile(tile, o0, y, n, a0, a1, row, bias):
    """y[n, o0 + o, a, b] = tile[o, (a - a0)*row + b] + bias[o0 + o] for b < w_out."""
    for o in range(tile.shape[0]):
        shift = bias[o0 + o]
        for a in range(a0, a1):
            dst = y[n, o0 + o, a]
            src = tile[o, (a - a0) * row:(a - a0) * row + y.shape[3]]
            for b in range(y.shape[3]):
                dst[b] = src[b] + shift


@kernel
def _widen_tile(dy, n, o0, tile, a0, a1, row):
    """tile[o, (a - a0)*row + b] = dy[n, o0 + o, a, b], zero for b >= w_out."""
    w_out = dy.shape[3]
    for o in range(tile.shape[0]):
        dst = tile[o]
        for a in range(a0, a1):
            src = dy[n, o0 + o, a]
            out = dst[(a - a0) * row:(a - a0 + 1) * row]
            for b in range(w_out):
                out[b] = src[b]
            for b in range(w_out, row):
                out[b] = 0


@kernel
def forward_and_grad_weight(x, w2, bias, dy, y, dw_acc, cols_buf, plane, tile_buf, tmp, first, step,
                            need_y, need_dw, tile_rows, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """y[n] = conv2d(x[n], w) + bias and/or dw_acc = sum_n dy_n @ cols_n^T, for n = first, first+step, ...

    Shapes: x (n, c_in, h, w), w2 (g, c_out/g, k), bias (c_out,), dy and y (n, c_out, h_out, w_out) (dummies
    when not needed), dw_acc (g, c_out/g, k); one thread's scratch: cols_buf
    (c_in*kh*kw * tile_rows*row), plane (c_in, plane), tile_buf (c_out/g * tile_rows*row),
    tmp (c_out/g, k).
    """
    n_img = x.shape[0]
    groups, c_out_g, k = w2.shape
    h_out = dy.shape[2] if need_dw else y.shape[2]
    w_out = dy.shape[3] if need_dw else y.shape[3]
    wp = x.shape[3] + 2 * pad_w
    row = wp if (stride_h == 1 and stride_w == 1) else w_out
    if need_dw:
        dw_acc[:] = 0
    for n in range(first, n_img, step):
        _pad_sample(x, n, plane, pad_h, pad_w)
        for a0 in range(0, h_out, tile_rows):
            a1 = min(h_out, a0 + tile_rows)
            span = (a1 - a0) * row
            cols = cols_buf[:groups * k * span].reshape((groups, k, span))
            out = tile_buf[:c_out_g * span].reshape((c_out_g, span))
            _unfold_tile(plane, cols.reshape((groups * k, span)), a0, a1, row, wp, kh, kw,
                         stride_h, stride_w, dil_h, dil_w)
            for g in range(groups):
                if need_y:
                    np.dot(w2[g], cols[g], out)
                    _crop_tile(out, g * c_out_g, y, n, a0, a1, row, bias)
                if need_dw:
                    _widen_tile(dy, n, g * c_out_g, out, a0, a1, row)
                    np.dot(out, cols[g].T, tmp)
                    acc = dw_acc[g]
                    for a in range(c_out_g):
                        for b in range(k):
                            acc[a, b] += tmp[a, b]


@kernel
def grad_input(dy, w2t, dx, cols_buf, plane, tile_buf, first, step, tile_rows, kh, kw,
               stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """dx[n] = fold(W^T @ dy[n]) for n = first, first+step, ...; w2t (g, k, c_out/g) holds the
    transposed weight matrices; scratch as in forward_and_grad_weight."""
    n_img, _, h_out, w_out = dy.shape
    groups, k, c_out_g = w2t.shape
    wp = dx.shape[3] + 2 * pad_w
    row = wp if (stride_h == 1 and stride_w == 1) else w_out
    for n in range(first, n_img, step):
        plane[:, :] = 0
        for a0 in range(0, h_out, tile_rows):
            a1 = min(h_out, a0 + tile_rows)
            span = (a1 - a0) * row
            cols = cols_buf[:groups * k * span].reshape((groups, k, span))
            src = tile_buf[:c_out_g * span].reshape((c_out_g, span))
            for g in range(groups):
                _widen_tile(dy, n, g * c_out_g, src, a0, a1, row)
                np.dot(w2t[g], src, cols[g])
            _fold_tile(cols.reshape((groups * k, span)), plane, a0, a1, row, wp, kh, kw,
                       stride_h, stride_w, dil_h, dil_w)
        _crop_sample(plane, dx, n, pad_h, pad_w)
