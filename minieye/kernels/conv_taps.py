"""Stride-1 convolution as one matrix product per kernel tap, on views of the padded input.

Pad a sample once into planes of ``wp = w + 2*pad_w`` columns, flattened: ``xp (c_in, plane)``.
Output position (a, b) under tap (i, j) reads padded pixel (a + i*d_h, b + j*d_w), which is
``xp[c, a*wp + b + off]`` with ``off = i*d_h*wp + j*d_w``. So with "wide" output columns
``t = a*wp + b`` (b runs over the whole padded width; the ``wp - w_out`` extra columns per
row are computed and dropped), the input of tap (i, j) is the *view*
``xp[:, off:off + h_out*wp]``, a matrix whose rows are one plane apart, and

    forward      Y_wide   = sum over taps of  W[:, :, i, j] @ xp[:, off:off + L]
    grad_input   dxp[:, off:off + L] += W[:, :, i, j]^T @ dY_wide      (then cropped)

with ``L = h_out*wp`` and ``dY_wide`` the output gradient widened with zeros at the extra
columns (so they add nothing). Each is ``kh*kw`` BLAS calls on strided views
(``conv_blas.gemm``, accumulating): no unfolded copy of the input is ever written, which
is what the GEMM algorithm (``conv_gemm``) spends most of its time on beyond the products.
Rows of output are taken in tiles that keep the tile's output and input in the L2 cache.
The weight gradient, ``dW[:, :, i, j] = sum over samples of dY_wide @ xp[:, off:off + L]^T``,
was measured no faster this way than by unfolding (each tap re-reads dY), so a TAPS plan
runs it as GEMM (docs/kernels.md).

Threads: as in ``conv_gemm``, each call handles samples ``first, first + step, ...`` with
its own scratch.
Weights arrive tap-major, ``wt (kh*kw, c_out, c_in)``.
"""
from __future__ import annotations

from ._jit import kernel
from .conv_blas import gemm


@kernel
def _pad_into(x, n, xp, pad_h, pad_w):
    """The interior of sample n's padded planes (the border was zeroed once by the caller)."""
    c_in, h, w = x.shape[1], x.shape[2], x.shape[3]
    wp = w + 2 * pad_w
    for c in range(c_in):
        for r in range(h):
            start = (r + pad_h) * wp + pad_w
            dst = xp[c, start:start + w]
            src = x[n, c, r]
            for q in range(w):
                dst[q] = src[q]


@kernel
def _widen(dy, n, yw, a0, a1, wp):
    """yw[o, (a - a0)*wp + b] = dy[n, o, a, b] for b < w_out, zero for the extra columns."""
    w_out = dy.shape[3]
    for o in range(dy.shape[1]):
        for a in range(a0, a1):
            src = dy[n, o, a]
            dst = yw[o, (a - a0) * wp:(a - a0 + 1) * wp]
            for b in range(w_out):
                dst[b] = src[b]
            for b in range(w_out, wp):
                dst[b] = 0


@kernel
def forward(x, wt, bias, y, first, step, tile_rows, kw, pad_h, pad_w, dil_h, dil_w, xp, yw, ints, scalars):
    """y[n] = conv2d(x[n], w) + bias for n = first, first + step, ... Shapes: x (n, c_in, h, w), wt
    (kh*kw, c_out, c_in), bias (c_out,), y (n, c_out, h_out, w_out); scratch xp (c_in, plane) with
    plane >= (h + 2*pad_h)*wp + (kw - 1)*dil_w, yw (c_out * tile_rows*wp,)."""
    c_in = x.shape[1]
    taps, c_out = wt.shape[0], wt.shape[1]
    h_out, w_out = y.shape[2], y.shape[3]
    wp = x.shape[3] + 2 * pad_w
    plane = xp.shape[1]
    flat = xp.reshape(-1)
    xp[:, :] = 0
    for n in range(first, x.shape[0], step):
        _pad_into(x, n, xp, pad_h, pad_w)
        for a0 in range(0, h_out, tile_rows):
            a1 = min(h_out, a0 + tile_rows)
            span = (a1 - a0) * wp
            out = yw[:c_out * span]
            for t in range(taps):
                off = a0 * wp + (t // kw) * dil_h * wp + (t % kw) * dil_w
                gemm(False, False, wt[t].reshape(-1), c_in, flat[off:], plane, out, span, c_out, span, c_in,
                     0.0 if t == 0 else 1.0, ints, scalars)
            tile = out.reshape((c_out, span))
            for o in range(c_out):
                shift = bias[o]
                for a in range(a0, a1):
                    dst = y[n, o, a]
                    src = tile[o, (a - a0) * wp:(a - a0) * wp + w_out]
                    for b in range(w_out):
                        dst[b] = src[b] + shift


@kernel
def grad_input(dy, wt, dx, first, step, tile_rows, kw, pad_h, pad_w, dil_h, dil_w, xp, yw, ints, scalars):
    """dx[n] = the crop of sum over taps of W_t^T @ dY_wide[n] placed at off_t, for n = first, first + step, ...
    Shapes: dy (n, c_out, h_out, w_out), wt (kh*kw, c_out, c_in), dx (n, c_in, h, w); scratch as in forward."""
    c_in, h, w = dx.shape[1], dx.shape[2], dx.shape[3]
    taps, c_out = wt.shape[0], wt.shape[1]
    h_out = dy.shape[2]
    wp = w + 2 * pad_w
    plane = xp.shape[1]
    flat = xp.reshape(-1)
    for n in range(first, dy.shape[0], step):
        xp[:, :] = 0
        for a0 in range(0, h_out, tile_rows):
            a1 = min(h_out, a0 + tile_rows)
            span = (a1 - a0) * wp
            _widen(dy, n, yw[:c_out * span].reshape((c_out, span)), a0, a1, wp)
            for t in range(taps):
                off = a0 * wp + (t // kw) * dil_h * wp + (t % kw) * dil_w
                gemm(True, False, wt[t].reshape(-1), c_in, yw, span, flat[off:], plane, c_in, span, c_out,
                     1.0, ints, scalars)
        for c in range(c_in):
            for r in range(h):
                start = (r + pad_h) * wp + pad_w
                src = xp[c, start:start + w]
                dst = dx[n, c, r]
                for q in range(w):
                    dst[q] = src[q]
