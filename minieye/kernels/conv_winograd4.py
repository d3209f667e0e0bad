"""Winograd F(4x4, 3x3): a 3x3 stride-1 convolution with 4x fewer multiplications.

Each 4x4 block of outputs of one output channel is computed from the 6x6 input tile under
it (Lavin & Gray, 2016; interpolation points 0, 1, -1, 2, -2 and infinity):

    Y = A^T [ sum_c (G g_oc G^T) * (B^T d_c B) ] A          (* element-wise, 6x6)

36 products per (c_out, c_in) pair and 4x4 outputs instead of 144 (F(2x2, 3x3): 16 per 2x2, i.e.
64 per 4x4). The structure is ``conv_winograd``'s (read it first): the weight transform once per
call, the input tiles of a chunk of images transformed into ``V[36, c_in, tiles]``, 36 BLAS
products ``M[k] = U[k] @ V[k]`` (``conv_blas.gemm``), the output transform, and the weight
gradient as their adjoint. The input is split into one run per column j of the 6x6 tile and row
remainder mod 4 (``conv_winograd.split_samples`` with tile 4, a chunk of images at a time): element (r, j)
of tile (ty, tx) is at ``(j, r % 4, ty + r // 4, tx)``, so for fixed (r, j) the elements of all tiles
of a plane are one unit-stride run, with no position that is not a tile. Each transform is separable: a 1-D transform down the tile's
columns (``_bt``, ``_at``, ``_a``: a few long loops over all tile positions of a plane, into a
small scratch ``t_buf``), then across its rows.

Rounding: B^T has entries up to 5 and A^T up to 8, so the transformed values are larger than
the inputs and cancel in the output transform; float32 results differ from the direct sum by
about 10x F(2x2, 3x3)'s error (docs/kernels.md, "Fifth pass", gives the measured figures).
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from .conv_winograd import chunk_views, element_grad_products, element_products, split_samples

TILE = 4       # outputs per tile side
ELEMENTS = 36  # products per tile and channel pair (6 x 6)

# G (6x3): the weight transform U = G g G^T.
G = np.array([[1 / 4, 0.0, 0.0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0.0, 0.0, 1.0]])


OUTPUT_RUN = 1024  # tile positions per output-transform block (channels x images of a chunk)


def block_size(out_hw: tuple[int, int], chunk: int) -> int:
    """Elements of the per-thread transform scratch (``t_buf``) for output planes of out_hw and
    ``chunk`` images per chunk."""
    return (ELEMENTS + 4) * max(chunk * positions(out_hw), OUTPUT_RUN)


def positions(out_hw: tuple[int, int]) -> int:
    """Tile positions per plane, tiles_h * tiles_w."""
    return ((out_hw[0] + TILE - 1) // TILE) * ((out_hw[1] + TILE - 1) // TILE)


# Each 1-D transform reads its runs from one flat array at given offsets and writes them into
# another, indexing with unsigned integers: with a separate array per run LLVM gave up on the
# pairwise aliasing checks, and a signed index adds Numba's negative-index wraparound to every
# access; either way the loop ran scalar (6 ns per tile position instead of 0.5).


@kernel
def _bt(src, s, dst, d, count):
    """dst[d[i] + t] = sum_r B^T[i, r] src[s[r] + t] for t < count: the 1-D input transform of six runs."""
    two, four, five = src.dtype.type(2), src.dtype.type(4), src.dtype.type(5)
    s0, s1, s2, s3, s4, s5 = np.uint64(s[0]), np.uint64(s[1]), np.uint64(s[2]), np.uint64(s[3]), np.uint64(s[4]), np.uint64(s[5])
    d0, d1, d2, d3, d4, d5 = np.uint64(d[0]), np.uint64(d[1]), np.uint64(d[2]), np.uint64(d[3]), np.uint64(d[4]), np.uint64(d[5])
    for t in range(np.uint64(count)):
        a, b, c, e, f, g = src[s0 + t], src[s1 + t], src[s2 + t], src[s3 + t], src[s4 + t], src[s5 + t]
        dst[d0 + t] = (four * a - five * c) + f
        dst[d1 + t] = (e + f) - four * (b + c)
        dst[d2 + t] = four * (b - c) + (f - e)
        dst[d3 + t] = two * (e - b) + (f - c)
        dst[d4 + t] = two * (b - e) + (f - c)
        dst[d5 + t] = (four * b - five * e) + g


@kernel
def _at_point(m0, m1, m2, m3, m4, m5, two, four, eight):
    """A^T (4x6) times one column (m0 .. m5): the four outputs (two, four, eight: constants of the
    arrays' dtype, so that the arithmetic stays in it)."""
    p12, q12, p34, q34 = m1 + m2, m1 - m2, m3 + m4, m3 - m4
    return (m0 + p12) + p34, q12 + two * q34, p12 + four * p34, (q12 + eight * q34) + m5


@kernel
def _a_point(a, b, c, e, two, four):
    """A (6x4) = (A^T)^T times one column (a, b, c, e): the six outputs."""
    even, odd = a + c, b + e
    even4, odd4 = a + four * c, two * (b + four * e)
    return a, even + odd, even - odd, even4 + odd4, even4 - odd4, e


@kernel
def _at(src, s, dst, d, count):
    """dst[d[a] + t] = sum_i A^T[a, i] src[s[i] + t] for t < count: the 1-D output transform of six runs."""
    two, four, eight = src.dtype.type(2), src.dtype.type(4), src.dtype.type(8)
    s0, s1, s2, s3, s4, s5 = np.uint64(s[0]), np.uint64(s[1]), np.uint64(s[2]), np.uint64(s[3]), np.uint64(s[4]), np.uint64(s[5])
    d0, d1, d2, d3 = np.uint64(d[0]), np.uint64(d[1]), np.uint64(d[2]), np.uint64(d[3])
    for t in range(np.uint64(count)):
        dst[d0 + t], dst[d1 + t], dst[d2 + t], dst[d3 + t] = _at_point(
            src[s0 + t], src[s1 + t], src[s2 + t], src[s3 + t], src[s4 + t], src[s5 + t], two, four, eight)


@kernel
def _a(src, s, dst, d, count):
    """dst[d[i] + t] = sum_a A[i, a] src[s[a] + t] (A = (A^T)^T) for t < count: the adjoint of ``_at``."""
    two, four = src.dtype.type(2), src.dtype.type(4)
    s0, s1, s2, s3 = np.uint64(s[0]), np.uint64(s[1]), np.uint64(s[2]), np.uint64(s[3])
    d0, d1, d2, d3, d4, d5 = np.uint64(d[0]), np.uint64(d[1]), np.uint64(d[2]), np.uint64(d[3]), np.uint64(d[4]), np.uint64(d[5])
    for t in range(np.uint64(count)):
        dst[d0 + t], dst[d1 + t], dst[d2 + t], dst[d3 + t], dst[d4 + t], dst[d5 + t] = _a_point(
            src[s0 + t], src[s1 + t], src[s2 + t], src[s3 + t], two, four)


@kernel
def _split(r, j, th1, tw):
    """Where element (r, j) of tile position 0 sits in a flattened split plane (``split_samples``)."""
    return ((j * 4 + r % 4) * th1 + r // 4) * tw


@kernel
def input_transform(xs, v, n0, imgs, t_buf):
    """v[k, c, i*P + t] = (B^T d B)[k // 6, k % 6] for tile position t of image n0 + i, channel c (P tile
    positions per plane). Per channel, down each column of every image's tiles (t[r, j] = sum_r' B^T[r, r']
    d[r', j], into t_buf[(6*r + j) * run + i*P], run = imgs * P), then across the rows of all images'
    tiles at once (v[r, j] = sum_q t[r, q] B^T[j, q]: long runs)."""
    c_in, th1, tw = xs.shape[1], xs.shape[4], xs.shape[5]
    plane = (th1 - 1) * tw
    run, cols = imgs * plane, v.shape[2]
    vf = v.reshape(-1)
    for c in range(c_in):
        for i in range(imgs):
            flat, at = xs[n0 + i, c].reshape(-1), i * plane
            for j in range(6):
                _bt(flat, (_split(0, j, th1, tw), _split(1, j, th1, tw), _split(2, j, th1, tw), _split(3, j, th1, tw),
                           _split(4, j, th1, tw), _split(5, j, th1, tw)),
                    t_buf, (j * run + at, (6 + j) * run + at, (12 + j) * run + at, (18 + j) * run + at,
                            (24 + j) * run + at, (30 + j) * run + at), plane)
        for r in range(6):
            row = 6 * r * run
            out = ((6 * r * c_in + c) * cols, ((6 * r + 1) * c_in + c) * cols, ((6 * r + 2) * c_in + c) * cols,
                   ((6 * r + 3) * c_in + c) * cols, ((6 * r + 4) * c_in + c) * cols, ((6 * r + 5) * c_in + c) * cols)
            _bt(t_buf, (row, row + run, row + 2 * run, row + 3 * run, row + 4 * run, row + 5 * run), vf, out, run)


@kernel
def _at_interleaved(src, s, dst, d, count):
    """dst[d + 4*t + b] = sum_j A^T[b, j] src[s[j] + t] for t < count: ``_at`` with its four outputs of a
    position stored next to each other, so that four positions in a row make a row of 16 outputs."""
    two, four, eight = src.dtype.type(2), src.dtype.type(4), src.dtype.type(8)
    s0, s1, s2, s3, s4, s5 = np.uint64(s[0]), np.uint64(s[1]), np.uint64(s[2]), np.uint64(s[3]), np.uint64(s[4]), np.uint64(s[5])
    d0, u1, u2, u3, u4 = np.uint64(d), np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
    for t in range(np.uint64(count)):
        dst[d0 + u4 * t], dst[d0 + u4 * t + u1], dst[d0 + u4 * t + u2], dst[d0 + u4 * t + u3] = _at_point(
            src[s0 + t], src[s1 + t], src[s2 + t], src[s3 + t], src[s4 + t], src[s5 + t], two, four, eight)


@kernel
def _output_transform(m, y, n0, imgs, tw, bias, t_buf):
    """y[n0 + i, o, 4*ty + a, 4*tx + b] = (A^T M A)[a, b] + bias[o] for the tile positions of m[:, o, i*P ..]
    (P = tiles_h * tiles_w, tw = tiles_w), cropped to y's planes. The output channels go in blocks whose M columns
    (``block`` channels x all images of the chunk) are one run of about ``OUTPUT_RUN`` positions: both 1-D
    transforms over that run (down each column into t_buf[(6*a + j) * run], then across, stored
    interleaved: row a of the tiles at t_buf[y_runs + 4 * (a * run + position)]), then each row of y
    copied from it."""
    c_out, cols = m.shape[1], m.shape[2]
    h_out, w_out = y.shape[2], y.shape[3]
    plane = cols // imgs
    block = max(1, OUTPUT_RUN // cols)
    mf = m.reshape(-1)
    for o0 in range(0, c_out, block):
        run = min(block, c_out - o0) * cols
        for j in range(6):  # down each column: s[a, j] = sum_i A^T[a, i] M[i, j]
            _at(mf, ((j * c_out + o0) * cols, ((6 + j) * c_out + o0) * cols, ((12 + j) * c_out + o0) * cols,
                     ((18 + j) * c_out + o0) * cols, ((24 + j) * c_out + o0) * cols, ((30 + j) * c_out + o0) * cols),
                t_buf, (j * run, (6 + j) * run, (12 + j) * run, (18 + j) * run), run)
        y_runs = 24 * run
        for a in range(4):  # across: y[a, b] = sum_j s[a, j] A^T[b, j]
            s = 6 * a * run
            _at_interleaved(t_buf, (s, s + run, s + 2 * run, s + 3 * run, s + 4 * run, s + 5 * run), t_buf,
                            y_runs + 4 * a * run, run)
        for o in range(o0, o0 + run // cols):
            shift = bias[o]
            for i in range(imgs):
                y_plane = y[n0 + i, o].reshape(-1)
                for r in range(h_out):
                    src = np.uint64(y_runs + 4 * ((r % 4) * run + (o - o0) * cols + i * plane + (r // 4) * tw))
                    d = np.uint64(r * w_out)
                    for b in range(np.uint64(w_out)):
                        y_plane[d + b] = t_buf[src + b] + shift


@kernel
def forward_images(x, top, left, u, bias, y, xs, v_buf, m_buf, t_buf, ints, scalars, first, last, chunk):
    """Images first .. last-1 of y, ``chunk`` at a time, from x placed at (top, left) in zeros.
    Shapes: x (n, c_in, h, w), u (36, c_out, c_in), bias (c_out,), y (n, c_out, h_out, w_out);
    scratch xs (chunk, *``split_shape(c_in, (h_out, w_out), 4)``), v_buf (36*c_in*chunk*P,), m_buf
    (36*c_out*chunk*P,) with P = ``positions(out_hw)``, t_buf (``block_size(out_hw, chunk)``,); ints and
    scalars: ``conv_blas.gemm``'s."""
    c_in, th1, tw = xs.shape[1], xs.shape[4], xs.shape[5]
    c_out = u.shape[1]
    plane = (th1 - 1) * tw
    for n0 in range(first, last, chunk):
        imgs = min(chunk, last - n0)
        cols = imgs * plane
        v, m = chunk_views(v_buf, m_buf, 36, c_in, c_out, cols)
        split_samples(x, xs, top, left, n0, n0 + imgs)
        input_transform(xs, v, 0, imgs, t_buf)
        element_products(u, v, m, ints, scalars)
        _output_transform(m, y, n0, imgs, tw, bias, t_buf)


@kernel
def _a_interleaved(src, s, dst, d, count):
    """dst[d[j] + t] = sum_b A[j, b] src[s + 4*t + b] for t < count: ``_a`` reading the four inputs of a
    position next to each other (the adjoint of ``_at_interleaved``)."""
    two, four = src.dtype.type(2), src.dtype.type(4)
    s0, u1, u2, u3, u4 = np.uint64(s), np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
    d0, d1, d2, d3, d4, d5 = np.uint64(d[0]), np.uint64(d[1]), np.uint64(d[2]), np.uint64(d[3]), np.uint64(d[4]), np.uint64(d[5])
    for t in range(np.uint64(count)):
        dst[d0 + t], dst[d1 + t], dst[d2 + t], dst[d3 + t], dst[d4 + t], dst[d5 + t] = _a_point(
            src[s0 + u4 * t], src[s0 + u4 * t + u1], src[s0 + u4 * t + u2], src[s0 + u4 * t + u3], two, four)


@kernel
def output_grad_transform(dy, dm, n0, imgs, tw, t_buf, db=None):
    """dm[k, o, i*P + t] = (A dY A^T)[k // 6, k % 6], dY the 4x4 block of dy at tile position t of image
    n0 + i, channel o (zero beyond dy): the adjoint of ``_output_transform``, over the same blocks of
    output channels. Each row of dy is copied into its tiles' interleaved rows (t_buf[y_runs + 4 *
    (a * run + position) + b], zeros past dy), then both 1-D transforms run over the block's run.
    ``db`` (n, c_out) given with rows: db[n0 + i, o] = the sum of dy's plane (n0 + i, o), read just
    before its copy (the bias gradient's per-image terms; none for a db of 0 rows)."""
    c_out, cols = dm.shape[1], dm.shape[2]
    h_out, w_out = dy.shape[2], dy.shape[3]
    plane = cols // imgs
    block = max(1, OUTPUT_RUN // cols)
    dmf = dm.reshape(-1)
    zero = t_buf.dtype.type(0)
    for o0 in range(0, c_out, block):
        run = min(block, c_out - o0) * cols
        y_runs = 24 * run
        for o in range(o0, o0 + run // cols):
            for i in range(imgs):
                dy_plane = dy[n0 + i, o].reshape(-1)
                if db is not None:
                    if db.shape[0] > 0:
                        total = zero
                        for q in range(np.uint64(h_out * w_out)):
                            total += dy_plane[q]
                        db[n0 + i, o] = total
                for r in range(4 * (plane // tw)):
                    dst = np.uint64(y_runs + 4 * ((r % 4) * run + (o - o0) * cols + i * plane + (r // 4) * tw))
                    filled = np.uint64(w_out if r < h_out else 0)
                    s = np.uint64(r * w_out)
                    for b in range(filled):
                        t_buf[dst + b] = dy_plane[s + b]
                    for b in range(filled, np.uint64(4 * tw)):
                        t_buf[dst + b] = zero
        for a in range(4):  # across each row of the block: r[a, j] = sum_b dY[a, b] A[j, b]
            _a_interleaved(t_buf, y_runs + 4 * a * run, t_buf,
                           (6 * a * run, (6 * a + 1) * run, (6 * a + 2) * run, (6 * a + 3) * run, (6 * a + 4) * run,
                            (6 * a + 5) * run), run)
        for j in range(6):  # down each column: dm[i, j] = sum_a A[i, a] r[a, j]
            _a(t_buf, (j * run, (6 + j) * run, (12 + j) * run, (18 + j) * run), dmf,
               ((j * c_out + o0) * cols, ((6 + j) * c_out + o0) * cols, ((12 + j) * c_out + o0) * cols,
                ((18 + j) * c_out + o0) * cols, ((24 + j) * c_out + o0) * cols, ((30 + j) * c_out + o0) * cols), run)


@kernel
def grad_weight_images(x, top, left, dy, du, xs, v_buf, m_buf, t_buf, ints, scalars, first, last, chunk, db=None):
    """du[k] += sum over the tiles of images first .. last-1 of dM[k] @ V[k]^T, ``chunk`` images at a
    time: the weight gradient in the transformed domain (``conv_winograd.grad_weight`` maps it back).
    Shapes: x (n, c_in, h, w) placed at (top, left) in zeros, dy (n, c_out, h_out, w_out), du (36,
    c_out, c_in); scratch xs (chunk, *``split_shape(c_in, (h_out, w_out), 4)``), the others as
    ``forward_images``'s (dy needs no split: its 4x4 blocks do not overlap). ``db`` (n, c_out) given with
    rows: the bias gradient's per-image terms, as ``output_grad_transform``'s."""
    c_in, c_out = xs.shape[1], dy.shape[1]
    tw = xs.shape[5]
    plane = (xs.shape[4] - 1) * tw
    for n0 in range(first, last, chunk):
        imgs = min(chunk, last - n0)
        cols = imgs * plane
        v, dm = chunk_views(v_buf, m_buf, 36, c_in, c_out, cols)
        split_samples(x, xs, top, left, n0, n0 + imgs)
        input_transform(xs, v, 0, imgs, t_buf)
        output_grad_transform(dy, dm, n0, imgs, tw, t_buf, db)
        element_grad_products(dm, v, du, ints, scalars)
