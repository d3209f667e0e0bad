"""Winograd F(4x4, 3x3)'s input gradient as the adjoint of its forward (``conv_winograd4``, read it first).

The forward is ``split -> V = B^T d B -> M[k] = U[k] @ V[k] -> y = A^T M A``; its adjoint, step by step
in reverse: ``dM = A dY A^T`` (``conv_winograd4.output_grad_transform``, the weight gradient's),
``dV[k] = U[k]^T @ dM[k]`` (BLAS), ``dD = B dV B^T`` per tile (``_b``: the 1-D adjoint of ``_bt``, across the
tile's rows, then down its columns), and the adjoint of the split, which adds each tile's 6x6 back into the
input plane where the tiles overlap (``unsplit_samples``). The other way to the input gradient, the
forward of dy with the flipped kernel, transforms the c_out channels of dy by B^T (split and all) and
the c_in of dx by A^T; this one transforms dy's by A (16 elements in, no split) and dx's by B, and
shares A dY A^T with the weight gradient when both are wanted (``grads_images``). Where it pays:
``conv_winograd_run.adjoint_pays`` (docs/kernels.md, "Ninth pass").

Rounding: the same terms as the forward of dy, summed in another order; float32 results stay within the
forward's tolerance of the direct sum (tests/test_conv_winograd4.py).
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from .conv_blas import gemm
from .conv_winograd import chunk_views, element_grad_products, split_samples
from .conv_winograd4 import input_transform, output_grad_transform


@kernel
def _b_point(a, b, c, e, f, g, two, four, five):
    """B = (B^T)^T times one column (a .. g): the six outputs (the constants in the arrays' dtype)."""
    plus, minus, plus34, minus34 = b + c, c - b, e + f, e - f
    return (four * a, four * (minus + g) - two * minus34, -(five * a + four * plus + plus34),
            (two * minus34 - minus) - five * g, (a + plus) + plus34, g)


@kernel
def _b(src, s, dst, d, count):
    """dst[d[r] + t] = sum_i B^T[i, r] src[s[i] + t] for t < count: the adjoint of ``_bt``'s six runs."""
    two, four, five = src.dtype.type(2), src.dtype.type(4), src.dtype.type(5)
    s0, s1, s2, s3, s4, s5 = np.uint64(s[0]), np.uint64(s[1]), np.uint64(s[2]), np.uint64(s[3]), np.uint64(s[4]), np.uint64(s[5])
    d0, d1, d2, d3, d4, d5 = np.uint64(d[0]), np.uint64(d[1]), np.uint64(d[2]), np.uint64(d[3]), np.uint64(d[4]), np.uint64(d[5])
    for t in range(np.uint64(count)):
        dst[d0 + t], dst[d1 + t], dst[d2 + t], dst[d3 + t], dst[d4 + t], dst[d5 + t] = _b_point(
            src[s0 + t], src[s1 + t], src[s2 + t], src[s3 + t], src[s4 + t], src[s5 + t], two, four, five)


@kernel
def _b_rows(src, s, dst, d, count, tw):
    """``_b`` into the runs of one split column: dst[d[r] + t] for the rows r < 4 of tile position t
    (t < count), each run one tile row (tw positions) longer, where rows 4 and 5 of the tile above
    (position t - tw) add onto rows 0 and 1 (the tiles overlap by two rows). Two long loops (rows 0-3
    assigned, then rows 4 and 5 added one tile row down): one loop with the first and last tile rows
    apart ran those short parts scalar."""
    two, four, five = src.dtype.type(2), src.dtype.type(4), src.dtype.type(5)
    zero = src.dtype.type(0)
    s0, s1, s2, s3, s4, s5 = np.uint64(s[0]), np.uint64(s[1]), np.uint64(s[2]), np.uint64(s[3]), np.uint64(s[4]), np.uint64(s[5])
    d0, d1, d2, d3 = np.uint64(d[0]), np.uint64(d[1]), np.uint64(d[2]), np.uint64(d[3])
    up, n = np.uint64(tw), np.uint64(count)
    for t in range(n):
        dst[d0 + t], dst[d1 + t], dst[d2 + t], dst[d3 + t], _, _ = _b_point(
            src[s0 + t], src[s1 + t], src[s2 + t], src[s3 + t], src[s4 + t], src[s5 + t], two, four, five)
    for t in range(n, n + up):  # the row below the last tiles: their rows 4 and 5 only (added below)
        dst[d0 + t], dst[d1 + t], dst[d2 + t], dst[d3 + t] = zero, zero, zero, zero
    e0, e1 = d0 + up, d1 + up
    for t in range(n):  # row 4 of a tile is sum_i B^T[i, 4] src[i] = src[0] + .. + src[4]; row 5 is src[5]
        dst[e0 + t] += (src[s0 + t] + src[s1 + t] + src[s2 + t]) + (src[s3 + t] + src[s4 + t])
        dst[e1 + t] += src[s5 + t]


@kernel
def _input_adjoint(dv, xs, imgs, t_buf):
    """The adjoint of ``conv_winograd4.input_transform``: xs[i, c] (the split planes, overwritten) from
    dv[:, c, i*P + t] (36 rows, one per tile element; P tile positions per plane) for the images i < imgs.
    Per channel, across the tiles' rows for all images at once (long runs), then down their columns
    into each image's split plane."""
    c_in, th1, tw = xs.shape[1], xs.shape[4], xs.shape[5]
    plane, cols = (th1 - 1) * tw, dv.shape[2]
    run = imgs * plane
    vf = dv.reshape(-1)
    for c in range(c_in):
        for i in range(6):  # across each row of the tiles: t[i, q] = sum_j dV[i, j] B^T[j, q]
            rows = (6 * i * c_in + c) * cols, ((6 * i + 1) * c_in + c) * cols, ((6 * i + 2) * c_in + c) * cols, \
                ((6 * i + 3) * c_in + c) * cols, ((6 * i + 4) * c_in + c) * cols, ((6 * i + 5) * c_in + c) * cols
            row = 6 * i * run
            _b(vf, rows, t_buf, (row, row + run, row + 2 * run, row + 3 * run, row + 4 * run, row + 5 * run), run)
        for n in range(imgs):
            flat, at = xs[n, c].reshape(-1), n * plane
            for j in range(6):  # down each column: row r of tile row ty is in run (j, r % 4) at tile row ty + r // 4
                _b_rows(t_buf, (j * run + at, (6 + j) * run + at, (12 + j) * run + at, (18 + j) * run + at,
                                (24 + j) * run + at, (30 + j) * run + at), flat,
                        (j * 4 * th1 * tw, (j * 4 + 1) * th1 * tw, (j * 4 + 2) * th1 * tw, (j * 4 + 3) * th1 * tw),
                        plane, tw)


@kernel
def unsplit_samples(xs, dx, top, left, lo, hi):
    """dx[i, c, r, q] = the sum of every split element of xs[i - lo, c] that ``split_samples`` (with tile 4)
    copies from input pixel (r, q) when the input is placed at (top, left) in zeros, for the samples
    i = lo .. hi-1: the adjoint of the split (pixels no tile reaches get 0). xs is overwritten."""
    h, w = dx.shape[2], dx.shape[3]
    th1, tw = xs.shape[4], xs.shape[5]
    width = 4 * tw
    run = np.uint64(4 * th1 * tw)
    flat = np.empty(4 * th1 * width, dtype=dx.dtype)
    extra = np.empty((4 * th1, 2), dtype=dx.dtype)
    zero = dx.dtype.type(0)
    u1, u2, u3, u4 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
    for i in range(lo, hi):
        for c in range(dx.shape[1]):
            plane = xs[i - lo, c].reshape(-1)
            for e in range(2):  # runs 4, 5 are runs 0, 1 one position on, but for each row's last tile
                shifted, base = np.uint64(4 + e) * run, np.uint64(e) * run + u1
                for row in range(4 * th1):
                    last = shifted + np.uint64((row + 1) * tw - 1)
                    extra[row, e] = plane[last]
                    plane[last] = zero
                for g in range(run - u1):
                    plane[base + g] += plane[shifted + g]
            for g in range(run):  # the deal's adjoint: element f of the buffer from run f % 4 at f // 4
                flat[u4 * g], flat[u4 * g + u1] = plane[g], plane[run + g]
                flat[u4 * g + u2], flat[u4 * g + u3] = plane[u2 * run + g], plane[u3 * run + g]
            dst = dx[i, c].reshape(-1)
            q0, q1 = min(max(-left, 0), w), max(min(width - left, w), min(max(-left, 0), w))  # columns in the buffer
            for r in range(h):  # padded row r + top is the buffer's row (r + top) % 4 * th1 + (r + top) // 4
                sy, d = r + top, r * w
                if sy < 0 or sy >= 4 * th1:
                    dst[d:d + w] = zero
                    continue
                row = (sy % 4) * th1 + sy // 4
                dst[d:d + q0] = zero
                s, e = np.uint64(row * width + q0 + left), np.uint64(d + q0)
                for q in range(np.uint64(q1 - q0)):
                    dst[e + q] = flat[s + q]
                for q in range(q1, w):  # past the buffer: the two spilled columns, then nothing
                    sx = q + left - width
                    dst[d + q] = extra[row, sx] if sx < 2 else zero


@kernel
def element_transposed_products(u, dm, dv, ints, scalars):
    """dv[k] = u[k]^T @ dm[k] for every element k of the tiles. Shapes: u (elements, c_out, c_in),
    dm (elements, c_out, cols), dv (elements, c_in, cols)."""
    c_out, c_in, cols = u.shape[1], u.shape[2], dm.shape[2]
    for k in range(u.shape[0]):
        gemm(True, False, u[k].reshape(-1), c_in, dm[k].reshape(-1), cols, dv[k].reshape(-1), cols,
             c_in, cols, c_out, 0.0, ints, scalars)


@kernel
def grads_images(x, top, left, dy, u, du, dx, xs, v_buf, m_buf, t_buf, ints, scalars, first, last, chunk, need_dw,
                 db=None):
    """Images first .. last-1 of dx, the input gradient of the forward ``conv_winograd4.forward_images(x,
    top, left, u, ...)``, ``chunk`` at a time, and where ``need_dw`` the weight gradient's du += dM V^T
    (``conv_winograd4.grad_weight_images``) in the same pass: dM = A dY A^T is computed once for both, and
    V's buffer takes dV = U^T dM once the weight gradient's products have used V. Shapes: x and dx
    (n, c_in, h, w) (x unread without ``need_dw``), dy (n, c_out, h_out, w_out), u and du (36, c_out,
    c_in); the scratch as ``forward_images``'s. ``db`` (n, c_out) given with rows: the bias gradient's
    per-image terms, db[i, o] = the sum of dy's plane (i, o) (``conv_winograd4.output_grad_transform``)."""
    c_in, th1, tw = xs.shape[1], xs.shape[4], xs.shape[5]
    c_out = u.shape[1]
    plane = (th1 - 1) * tw
    for n0 in range(first, last, chunk):
        imgs = min(chunk, last - n0)
        v, dm = chunk_views(v_buf, m_buf, 36, c_in, c_out, imgs * plane)
        output_grad_transform(dy, dm, n0, imgs, tw, t_buf, db)
        if need_dw:
            split_samples(x, xs, top, left, n0, n0 + imgs)
            input_transform(xs, v, 0, imgs, t_buf)
            element_grad_products(dm, v, du, ints, scalars)
        element_transposed_products(u, dm, v, ints, scalars)
        _input_adjoint(v, xs, imgs, t_buf)
        unsplit_samples(xs, dx, top, left, n0, n0 + imgs)
