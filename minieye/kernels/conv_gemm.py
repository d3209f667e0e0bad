"""Convolution as matrix products: unfold a tile of one sample, multiply with BLAS, fold back.

For one sample and one group the convolution is ``Y = W @ cols`` with
``W (c_out/g, c_in/g*kh*kw)`` and ``cols (c_in/g*kh*kw, L)`` the unfolded input; the
weight gradient is accumulated transposed, ``dW^T += cols @ dY^T`` (BLAS runs that shape
1.2-1.8x faster than ``dY @ cols^T``: the long side of the small output is then its rows), and the input gradient folds
``dcols = W^T @ dY`` back onto the input (``fold_tile``, the adjoint of ``unfold_tile``).

Layout. Each sample is first zero-padded and split into stride "phase planes": for
stride (s_h, s_w) every channel gets s_h*s_w planes, phase (p, q) holding the padded
pixels (r, c) with r % s_h == p and c % s_w == q, as rows of width
``wps = ceil(wp / s_w)`` (``wp = w + 2*pad_w``). Kernel tap (i, j) of output position
(a, b) reads padded pixel (a*s_h + i*d_h, b*s_w + j*d_w), i.e. phase
((i*d_h) % s_h, (j*d_w) % s_w) at row ``a + (i*d_h)//s_h`` and column ``b + (j*d_w)//s_w``:
a fixed offset. So with tile columns ``t = (a - a0)*wps + b`` every unfolded row is a
single contiguous copy, for any stride, with no padding tests:

    cols[(c, i, j), t] = planes[c, phase(i, j), (a0 + (i*d_h)//s_h)*wps + (j*d_w)//s_w + t]

The ``wps - w_out`` columns per row past the output width are computed and dropped by
``crop_tile``, and the output gradient is widened with zeros there (``widen_tile``), so
they contribute nothing backwards. At stride 1 there is one phase and this is the
plain padded image. (Measured: strided per-element gathers cost as much as the
products on the transposed-convolution benchmark; phase planes removed them.)

Tiles of output rows keep ``cols`` in the L2 cache between the unfolding and the
product. Threads: the caller runs one call per thread (``_threads``), each taking
every T-th sample with its own scratch and calling single-threaded BLAS
(``conv_blas.gemm``; the caller holds BLAS to one thread), so BLAS's thread pool never
competes with ours. Weight gradients are summed per thread and reduced by the caller.
"""
from __future__ import annotations

from ._jit import kernel
from .conv_blas import gemm


@kernel
def pad_sample(x, n, plane, pad_h, pad_w, stride_h, stride_w, base, zero):
    """Scatter x[n] into its zero-padded phase planes (see the module docstring):
    padded pixel (r, q) goes to plane[c, (r % s_h)*s_w + q % s_w, base + (r // s_h)*wps + q // s_w].
    ``zero``: clear the planes first (else the caller has: ``conv_blocks`` stacks samples at ``base``)."""
    c_in, h, w = x.shape[1], x.shape[2], x.shape[3]
    wps = -(-(w + 2 * pad_w) // stride_w)
    if zero:
        plane[:, :, :] = 0
    for c in range(c_in):
        for r in range(h):
            rp = pad_h + r
            src = x[n, c, r]
            if stride_w == 1:
                start = base + (rp // stride_h) * wps + pad_w
                dst = plane[c, (rp % stride_h), start:start + w]
                for q in range(w):  # slices keep indices provably >= 0, so loops vectorise
                    dst[q] = src[q]
            else:
                for q0 in range(min(stride_w, w)):  # the columns of one phase: a strided run in, contiguous out
                    qp = pad_w + q0
                    run = src[q0::stride_w]
                    start = base + (rp // stride_h) * wps + qp // stride_w
                    dst = plane[c, (rp % stride_h) * stride_w + qp % stride_w, start:start + run.shape[0]]
                    for q in range(run.shape[0]):
                        dst[q] = run[q]


@kernel
def crop_sample(plane, dx, n, pad_h, pad_w, stride_h, stride_w, base):
    """dx[n] gathered back from the phase planes, its first at ``base`` (the adjoint of pad_sample)."""
    h, w = dx.shape[2], dx.shape[3]
    wps = -(-(w + 2 * pad_w) // stride_w)
    for c in range(dx.shape[1]):
        for r in range(h):
            rp = pad_h + r
            dst = dx[n, c, r]
            if stride_w == 1:
                start = base + (rp // stride_h) * wps + pad_w
                src = plane[c, (rp % stride_h), start:start + w]
                for q in range(w):
                    dst[q] = src[q]
            else:
                for q0 in range(min(stride_w, w)):
                    qp = pad_w + q0
                    run = dst[q0::stride_w]
                    start = base + (rp // stride_h) * wps + qp // stride_w
                    src = plane[c, (rp % stride_h) * stride_w + qp % stride_w, start:start + run.shape[0]]
                    for q in range(run.shape[0]):
                        run[q] = src[q]


@kernel
def unfold_tile(plane, cols, t0, a0, a1, row, kh, kw, stride_h, stride_w, dil_h, dil_w):
    """cols[(c, i, j), t0 + t] for output rows a0 .. a1-1: one contiguous run per row of cols."""
    c_in = plane.shape[0]
    length = (a1 - a0) * row
    for c in range(c_in):
        for i in range(kh):
            for j in range(kw):
                phase = ((i * dil_h) % stride_h) * stride_w + (j * dil_w) % stride_w
                base = (a0 + (i * dil_h) // stride_h) * row + (j * dil_w) // stride_w
                src = plane[c, phase, base:base + length]
                dst = cols[(c * kh + i) * kw + j][t0:t0 + length]
                for t in range(length):
                    dst[t] = src[t]


@kernel
def fold_tile(dcols, t0, plane, a0, a1, row, kh, kw, stride_h, stride_w, dil_h, dil_w):
    """The adjoint of unfold_tile: add the tile's columns from t0 onto the phase planes."""
    c_in = plane.shape[0]
    length = (a1 - a0) * row
    for c in range(c_in):
        for i in range(kh):
            for j in range(kw):
                phase = ((i * dil_h) % stride_h) * stride_w + (j * dil_w) % stride_w
                base = (a0 + (i * dil_h) // stride_h) * row + (j * dil_w) // stride_w
                dst = plane[c, phase, base:base + length]
                src = dcols[(c * kh + i) * kw + j][t0:t0 + length]
                for t in range(length):
                    dst[t] += src[t]


@kernel
def crop_tile(tile, t0, o0, y, n, a0, a1, row, bias):
    """y[n, o0 + o, a, b] = tile[o, t0 + (a - a0)*row + b] + bias[o0 + o] for b < w_out."""
    for o in range(tile.shape[0]):
        shift = bias[o0 + o]
        for a in range(a0, a1):
            dst = y[n, o0 + o, a]
            src = tile[o][t0 + (a - a0) * row:t0 + (a - a0) * row + y.shape[3]]
            for b in range(y.shape[3]):
                dst[b] = src[b] + shift


@kernel
def widen_tile(dy, n, o0, tile, t0, a0, a1, row):
    """tile[o, t0 + (a - a0)*row + b] = dy[n, o0 + o, a, b], zero for b >= w_out."""
    w_out = dy.shape[3]
    for o in range(tile.shape[0]):
        dst = tile[o][t0:]
        for a in range(a0, a1):
            src = dy[n, o0 + o, a]
            out = dst[(a - a0) * row:(a - a0 + 1) * row]
            for b in range(w_out):
                out[b] = src[b]
            for b in range(w_out, row):
                out[b] = 0


@kernel
def forward_and_grad_weight(x, w2, bias, dy, y, dw_acc, cols_buf, plane, tile_buf, ints, scalars, first, step,
                            need_y, need_dw, tile_rows, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """y[n] = conv2d(x[n], w) + bias and/or dw_acc = sum_n cols_n @ dy_n^T (dW transposed), for n = first,
    first+step, ...

    Shapes: x (n, c_in, h, w), w2 (g, c_out/g, k), bias (c_out,), dy and y (n, c_out, h_out, w_out) (dummies
    when not needed), dw_acc (g, k, c_out/g); one thread's scratch: cols_buf
    (c_in*kh*kw * tile_rows*row), plane (c_in, plane), tile_buf (c_out/g * tile_rows*row); ints and
    scalars: ``conv_blas.gemm``'s.
    """
    n_img = x.shape[0]
    groups, c_out_g, k = w2.shape
    h_out = dy.shape[2] if need_dw else y.shape[2]
    row = -(-(x.shape[3] + 2 * pad_w) // stride_w)  # wps: the phase planes' row width
    if need_dw:
        dw_acc[:] = 0
    for n in range(first, n_img, step):
        pad_sample(x, n, plane, pad_h, pad_w, stride_h, stride_w, 0, True)
        for a0 in range(0, h_out, tile_rows):
            a1 = min(h_out, a0 + tile_rows)
            span = (a1 - a0) * row
            cols = cols_buf[:groups * k * span].reshape((groups, k, span))
            out = tile_buf[:c_out_g * span].reshape((c_out_g, span))
            unfold_tile(plane, cols.reshape((groups * k, span)), 0, a0, a1, row, kh, kw,
                         stride_h, stride_w, dil_h, dil_w)
            for g in range(groups):
                if need_y:
                    gemm(False, False, w2[g].reshape(-1), k, cols[g].reshape(-1), span, out.reshape(-1), span,
                         c_out_g, span, k, 0.0, ints, scalars)
                    crop_tile(out, 0, g * c_out_g, y, n, a0, a1, row, bias)
                if need_dw:
                    widen_tile(dy, n, g * c_out_g, out, 0, a0, a1, row)
                    gemm(False, True, cols[g].reshape(-1), span, out.reshape(-1), span, dw_acc[g].reshape(-1),
                         c_out_g, k, c_out_g, span, 1.0, ints, scalars)


@kernel
def grad_input(dy, w2t, dx, cols_buf, plane, tile_buf, ints, scalars, first, step, tile_rows, kh, kw,
               stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """dx[n] = fold(W^T @ dy[n]) for n = first, first+step, ...; w2t (g, k, c_out/g) holds the
    transposed weight matrices; scratch as in forward_and_grad_weight."""
    n_img, _, h_out, w_out = dy.shape
    groups, k, c_out_g = w2t.shape
    row = -(-(dx.shape[3] + 2 * pad_w) // stride_w)
    for n in range(first, n_img, step):
        plane[:, :, :] = 0
        for a0 in range(0, h_out, tile_rows):
            a1 = min(h_out, a0 + tile_rows)
            span = (a1 - a0) * row
            cols = cols_buf[:groups * k * span].reshape((groups, k, span))
            src = tile_buf[:c_out_g * span].reshape((c_out_g, span))
            for g in range(groups):
                widen_tile(dy, n, g * c_out_g, src, 0, a0, a1, row)
                gemm(False, False, w2t[g].reshape(-1), c_out_g, src.reshape(-1), span, cols[g].reshape(-1), span,
                     k, span, c_out_g, 0.0, ints, scalars)
            fold_tile(cols.reshape((groups * k, span)), 0, plane, a0, a1, row, kh, kw,
                       stride_h, stride_w, dil_h, dil_w)
        crop_sample(plane, dx, n, pad_h, pad_w, stride_h, stride_w, 0)
