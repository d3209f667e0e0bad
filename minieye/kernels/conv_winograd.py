"""Winograd F(2x2, 3x3): a 3x3 stride-1 convolution with 2.25x fewer multiplications.

Each 2x2 block of outputs of one output channel is computed from the 4x4 input tile
under it (Lavin & Gray, 2016):

    Y = A^T [ sum_c (G g_oc G^T) * (B^T d_c B) ] A          (* element-wise, 4x4)

with the constant matrices below. The weight transform ``U = G g G^T`` is done once per
call (``transform_weight``); for a chunk of whole images the input tiles are transformed into
``V[16, c_in, tiles]``, the 16 element positions become 16 matrix products
``M[k] = U[k] @ V[k]`` (BLAS, ``conv_blas.gemm``) of shape (c_out, c_in) x (c_in, tiles), and the
output transform writes each 2x2 block (plus the bias). That is 16 multiply-adds per
(c_out, c_in) pair and 2x2 outputs instead of 36.

Layout, so that every transform loop is a long unit-stride run (vectorised): the caller
zero-pads the input and splits it into one run per column j of the input tile and row parity
(``split_samples``), ``xs[n, c, j, rp, R, tx] = padded[2*R + rp, 2*tx + j]``. Element (r, j) of
tile (ty, tx) is then at (j, r % 2, ty + r // 2, tx): for fixed (r, j), the tile's position
``ty * tiles_w + tx`` in the plane plus a constant. The transforms run over those positions, one
image plane at a time (every position a tile). The output transform writes y row by row. With the padding given per side, the same kernel serves the forward (top =
pad_h) and the input gradient (the forward of dy with the flipped, transposed kernel and
top = 2 - pad_h; any output size). The weight gradient (``grad_weight_images``) is the
adjoint: per element, ``dU[k] = sum over tiles of dM[k] @ V[k]^T`` with ``dM = A dY A^T``
of each 2x2 block of dy, then ``dw = G^T dU G`` (``grad_weight``).
Rounding: the transforms add a few terms of mixed sign, so float32 results differ from
the direct sum by a few units in the last place of the largest terms (tests bound it
against the direct result).
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from ._jit import kernel
from ._threads import run_blocks
from .conv_blas import gemm

TILE = 2       # outputs per tile side
ELEMENTS = 16  # products per tile and channel pair (4 x 4)

# G (4x3): the weight transform U = G g G^T.
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def positions(out_hw: tuple[int, int]) -> int:
    """Tile positions per plane, tiles_h * tiles_w."""
    return ((out_hw[0] + 1) // 2) * ((out_hw[1] + 1) // 2)


def block_size(out_hw: tuple[int, int], chunk: int) -> int:
    """Elements of the per-thread output-block scratch (``y_buf``) for output planes of out_hw (any chunk)."""
    return 4 * positions(out_hw)


_krons: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _kron(g: np.ndarray) -> np.ndarray:
    """kron(g, g) of a weight transform, kept per array (10 us to build, three builds a training step)."""
    kept = _krons.get(id(g))
    if kept is None or kept[0] is not g:
        kept = _krons[id(g)] = (g, np.kron(g, g))
    return kept[1]


_transforms: dict[tuple, tuple[bytes, np.ndarray, np.ndarray]] = {}  # (shape, dtype, id(g)) -> (w's bytes, U, g)
_transforms_lock = threading.Lock()
_KEPT_BYTES = 32 << 20  # of U and the copies of w together


def transform_weight(w: np.ndarray, g: np.ndarray = G, *, keep: bool = True) -> np.ndarray:
    """U[a*i + j, o, c] = (g w[o, c] g^T)[i, j] for the a x 3 weight transform ``g`` (this module's G,
    or F(4x4, 3x3)'s), computed in float64 and stored in w's dtype.
    Shapes: w (c_out, c_in, 3, 3) -> (a*a, c_out, c_in).

    Where ``keep``, the last U of each weight shape, dtype and ``g`` is kept (with a copy of w's bytes; the
    oldest shapes dropped past 32 MiB) and returned again while w's bytes are the copy's: a layer's backward
    transforms the weights its forward did. Callers only read U."""
    key = (w.shape, w.dtype.str, id(g))
    kept, data = _transforms.get(key), w.tobytes()  # a copy (w's values may change): faster than array_equal
    if kept is not None and kept[0] == data and kept[2] is g:
        return kept[1]
    # one product over all channel pairs, by kron(g, g) (a*a x 9): an einsum of the three factors took ms
    u = _kron(g) @ w.astype(np.float64).reshape(-1, 9).T
    u = np.ascontiguousarray(u.reshape(g.shape[0] ** 2, w.shape[0], w.shape[1]), dtype=w.dtype)
    if not keep:
        return u
    with _transforms_lock:
        _transforms.pop(key, None)
        size = u.nbytes + len(data)
        while _transforms and size + sum(len(d) + t.nbytes for d, t, _ in _transforms.values()) > _KEPT_BYTES:
            del _transforms[next(iter(_transforms))]  # the oldest shape
        if size <= _KEPT_BYTES:
            _transforms[key] = (data, u, g)  # g kept alive: no other array takes its id
    return u


def split_shape(c: int, out_hw: tuple[int, int], tile: int) -> tuple[int, ...]:
    """The shape of one image split for the kernels (``split_samples``) for output planes of out_hw
    and output tiles of side ``tile``: (c, tile + 2, tile, tiles_h + 1, tiles_w)."""
    return (c, tile + 2, tile, (out_hw[0] + tile - 1) // tile + 1, (out_hw[1] + tile - 1) // tile)


@kernel
def split_samples(x, xs, top, left, lo, hi):
    """xs[i - lo, c, j, rp, R, tx] = x[i, c, m*R + rp - top, m*tx + j - left] (0 outside x; m = xs.shape[3],
    2 or 4; j < m + 2, the input tile's width) for the samples i = lo .. hi-1: x placed at (top, left)
    in zeros (a negative offset or a short buffer crops it), one run per column j of the input tile
    and row remainder rp, so that element (r, j) of every tile of a plane is one run, at the tile's
    position ty * tiles_w + tx (no position is computed that is not a tile). The kernels split each
    chunk of images just before transforming it (into a buffer the cache holds). Per plane, the rows
    are copied into a zero-bordered buffer ordered by row remainder (row rp*(tiles_h + 1) + R of
    m*tiles_w columns; the two columns past them spill into the next row, are set aside in ``extra``
    and zeroed); the buffer is dealt out to the runs j < m in one loop (element f to run f % m at
    f // m; unsigned indices, so that the loops vectorise); runs m, m + 1 are runs 0, 1 one position
    on, but for each row's last tile, whose columns m, m + 1 come from ``extra``."""
    h, w = x.shape[2], x.shape[3]
    m, th1, tw = xs.shape[3], xs.shape[4], xs.shape[5]
    width = m * tw
    c0, c1 = min(max(left, 0), width + 2), max(min(width + 2, left + w), min(max(left, 0), width + 2))
    spill = c1 - width  # columns written past the row (into the next row's first two)
    flat = np.zeros(m * th1 * width + 2, dtype=x.dtype)
    extra = np.zeros((m * th1, 2), dtype=x.dtype)
    run = np.uint64(m * th1 * tw)  # from one column's run to the next's
    copied = np.uint64(c1 - c0)
    u1, u2, u3, u4 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
    for i in range(lo, hi):
        for c in range(x.shape[1]):
            src = x[i, c].reshape(-1)
            for rp in range(m):  # the buffer's rows in order: padded row m*big + rp
                for big in range(th1):
                    sy, row = m * big + rp - top, rp * th1 + big
                    d = np.uint64(row * width + c0)
                    if 0 <= sy < h:
                        s = np.uint64(sy * w + c0 - left)
                        for k in range(copied):
                            flat[d + k] = src[s + k]
                    else:
                        for k in range(copied):
                            flat[d + k] = 0
                    after = (row + 1) * width
                    extra[row, 0] = flat[after] if spill > 0 else 0
                    extra[row, 1] = flat[after + 1] if spill > 1 else 0
                    flat[after], flat[after + 1] = 0, 0
            plane = xs[i - lo, c].reshape(-1)
            if m == 4:
                for g in range(run):
                    plane[g], plane[run + g] = flat[u4 * g], flat[u4 * g + u1]
                    plane[u2 * run + g], plane[u3 * run + g] = flat[u4 * g + u2], flat[u4 * g + u3]
            else:
                for g in range(run):
                    plane[g], plane[run + g] = flat[u2 * g], flat[u2 * g + u1]
            for e in range(2):
                shifted, base = np.uint64(m + e) * run, np.uint64(e) * run + u1
                for g in range(run - u1):
                    plane[shifted + g] = plane[base + g]
            for row in range(m * th1):
                last = (row + 1) * tw - 1
                plane[m * run + last], plane[(m + 1) * run + last] = extra[row, 0], extra[row, 1]


# B^T (4x4) as, per row, (first input row, second input row, sign of the second):
# d0 - d2, d1 + d2, d2 - d1, d1 - d3. B^T d B takes these combinations down and across.
_BT_ROWS = ((0, 2, 1.0, -1.0), (1, 2, 1.0, 1.0), (2, 1, 1.0, -1.0), (1, 3, 1.0, -1.0))


@kernel
def _split_offset(r, j, th1, tw):
    """Where element (r, j) of tile position 0 sits in a flattened split plane (``split_samples``)."""
    return ((j * 2 + r % 2) * th1 + r // 2) * tw


@kernel
def _input_element(out, flat, i, j, th1, tw):
    """out[t] = (B^T d_t B)[i, j] for every tile position t of one channel's flattened split plane:
    four unit-stride runs of the plane."""
    p_i, q_i, _, s_i = _BT_ROWS[i]
    p_j, q_j, _, s_j = _BT_ROWS[j]
    count = out.shape[0]
    s_i, s_j = out.dtype.type(s_i), out.dtype.type(s_j)  # float64 constants would widen the loop
    o0, o1 = _split_offset(p_i, p_j, th1, tw), _split_offset(p_i, q_j, th1, tw)
    o2, o3 = _split_offset(q_i, p_j, th1, tw), _split_offset(q_i, q_j, th1, tw)
    a, b, c, d = flat[o0:o0 + count], flat[o1:o1 + count], flat[o2:o2 + count], flat[o3:o3 + count]
    for t in range(count):
        out[t] = (a[t] + s_j * b[t]) + s_i * (c[t] + s_j * d[t])


@kernel
def _output_element(out, m, o, start, a, b, shift):
    """out[t] = (A^T M_t A)[a, b] + shift: nine terms of M at tile position start + t, each a unit-stride
    run (A^T's row a is +1 at a, then s, s at a + 1, a + 2 with s = +1 for a = 0, -1 for a = 1)."""
    count = out.shape[0]
    sa, sb = out.dtype.type(1 - 2 * a), out.dtype.type(1 - 2 * b)
    m0, m1, m2 = m[4 * a + b, o, start:start + count], m[4 * a + b + 1, o, start:start + count], \
        m[4 * a + b + 2, o, start:start + count]
    m3, m4, m5 = m[4 * a + b + 4, o, start:start + count], m[4 * a + b + 5, o, start:start + count], \
        m[4 * a + b + 6, o, start:start + count]
    m6, m7, m8 = m[4 * a + b + 8, o, start:start + count], m[4 * a + b + 9, o, start:start + count], \
        m[4 * a + b + 10, o, start:start + count]
    for t in range(count):
        out[t] = (m0[t] + sb * (m1[t] + m2[t])) + sa * ((m3[t] + sb * (m4[t] + m5[t]))
                                                        + (m6[t] + sb * (m7[t] + m8[t]))) + shift


@kernel
def _output_plane(m, o, start, y_plane, cols, shift):
    """y_plane[2*ty + a, 2*tx + b] = (A^T M A)[a, b] + shift for the tile positions start ..
    start + P - 1 of m[:, o] (P = tiles_h * tiles_w), cropped to y_plane (h_out, w_out):
    each element (a, b) at every position into ``cols`` (scratch (2, 2, P)), then interleaved
    into each row of y."""
    positions = cols.shape[2]
    for a in range(2):
        for b in range(2):
            _output_element(cols[a, b], m, o, start, a, b, shift)
    h_out, w_out = y_plane.shape
    tiles_w = positions // ((h_out + 1) // 2)
    pairs = w_out // 2
    for row in range(h_out):  # each row of y: its tiles' two columns interleaved (a shuffle)
        base = (row // 2) * tiles_w
        even, odd, dst = cols[row % 2, 0, base:base + tiles_w], cols[row % 2, 1, base:base + tiles_w], y_plane[row]
        for tx in range(pairs):
            dst[2 * tx] = even[tx]
            dst[2 * tx + 1] = odd[tx]
        if w_out % 2:
            dst[w_out - 1] = even[pairs]


@kernel
def _input_transform(xs, v, n0, imgs):
    """v[k, c, i*P + t] = (B^T d B)[k // 4, k % 4] for tile position t of image n0 + i, channel c."""
    c_in, th1, tw = xs.shape[1], xs.shape[4], xs.shape[5]
    plane = (th1 - 1) * tw
    for i in range(imgs):
        for c in range(c_in):
            flat = xs[n0 + i, c].reshape(-1)
            for k in range(16):
                _input_element(v[k, c, i * plane:(i + 1) * plane], flat, k // 4, k % 4, th1, tw)


@kernel
def element_products(u, v, m, ints, scalars):
    """m[k] = u[k] @ v[k] for every element k of the tiles (BLAS, ``conv_blas.gemm``).
    Shapes: u (elements, c_out, c_in), v (elements, c_in, cols), m (elements, c_out, cols)."""
    c_out, c_in, cols = u.shape[1], u.shape[2], v.shape[2]
    for k in range(u.shape[0]):
        gemm(False, False, u[k].reshape(-1), c_in, v[k].reshape(-1), cols, m[k].reshape(-1), cols,
             c_out, cols, c_in, 0.0, ints, scalars)


@kernel
def element_grad_products(dm, v, du, ints, scalars):
    """du[k] += dm[k] @ v[k]^T for every element k: the weight gradient's products, summed over the
    tiles. Shapes: dm (elements, c_out, cols), v (elements, c_in, cols), du (elements, c_out, c_in)."""
    c_out, c_in, cols = dm.shape[1], v.shape[1], v.shape[2]
    for k in range(dm.shape[0]):
        gemm(False, True, dm[k].reshape(-1), cols, v[k].reshape(-1), cols, du[k].reshape(-1), c_in,
             c_out, c_in, cols, 1.0, ints, scalars)


@kernel
def chunk_views(v_buf, m_buf, elements, c_in, c_out, cols):
    """V (elements, c_in, cols) and M (elements, c_out, cols) at the start of their scratch buffers."""
    return (v_buf[:elements * c_in * cols].reshape((elements, c_in, cols)),
            m_buf[:elements * c_out * cols].reshape((elements, c_out, cols)))


@kernel
def forward_images(x, top, left, u, bias, y, xs, v_buf, m_buf, y_buf, ints, scalars, first, last, chunk):
    """Images first .. last-1 of y, ``chunk`` at a time, from x placed at (top, left) in zeros.
    Shapes: x (n, c_in, h, w), u (16, c_out, c_in), bias (c_out,), y (n, c_out, h_out, w_out);
    scratch xs (chunk, *``split_shape(c_in, (h_out, w_out), 2)``), v_buf (16*c_in*chunk*P,), m_buf
    (16*c_out*chunk*P,) with P = ``positions``, y_buf (``block_size``,); ints and scalars:
    ``conv_blas.gemm``'s."""
    c_in, th1, tw = xs.shape[1], xs.shape[4], xs.shape[5]
    c_out = u.shape[1]
    plane = (th1 - 1) * tw
    for n0 in range(first, last, chunk):
        imgs = min(chunk, last - n0)
        cols = imgs * plane
        v, m = chunk_views(v_buf, m_buf, 16, c_in, c_out, cols)
        split_samples(x, xs, top, left, n0, n0 + imgs)
        _input_transform(xs, v, 0, imgs)
        element_products(u, v, m, ints, scalars)
        for i in range(imgs):
            for o in range(c_out):
                _output_plane(m, o, i * plane, y[n0 + i, o], y_buf.reshape((2, 2, plane)), bias[o])


# A (4x2), the adjoint of the output transform: dM = A dY A^T for each 2x2 block dY of dy.
_A = ((1.0, 0.0), (1.0, 1.0), (1.0, -1.0), (0.0, -1.0))


@kernel
def _output_grad_transform(dys, dm, n0, imgs):
    """dm[k, o, i*P + t] = (A dY A^T)[k // 4, k % 4], dY the 2x2 block of dy at tile position t of
    image n0 + i, channel o (zero beyond dy: the positions written nowhere get 0). dys: dy split by
    ``split_samples`` with no offset, so block element (a, b) is the run at ((2*b + a) * (tiles_h + 1)) * tiles_w."""
    c_out, th1, tw = dys.shape[1], dys.shape[4], dys.shape[5]
    plane = (th1 - 1) * tw
    for i in range(imgs):
        for o in range(c_out):
            flat = dys[n0 + i, o].reshape(-1)
            d00, d10 = flat[:plane], flat[th1 * tw:th1 * tw + plane]
            d01, d11 = flat[2 * th1 * tw:2 * th1 * tw + plane], flat[3 * th1 * tw:3 * th1 * tw + plane]
            for k in range(16):
                (a0, a1), (b0, b1) = _A[k // 4], _A[k % 4]
                c00, c01 = flat.dtype.type(a0 * b0), flat.dtype.type(a0 * b1)
                c10, c11 = flat.dtype.type(a1 * b0), flat.dtype.type(a1 * b1)
                out = dm[k, o, i * plane:(i + 1) * plane]
                for t in range(plane):
                    out[t] = c00 * d00[t] + c01 * d01[t] + c10 * d10[t] + c11 * d11[t]


@kernel
def grad_weight_images(x, top, left, dy, du, xs, dys, v_buf, m_buf, y_buf, ints, scalars, first, last, chunk):
    """du[k] += sum over the tiles of images first .. last-1 of dM[k] @ V[k]^T, ``chunk`` images at a
    time: the weight gradient in the transformed domain (``grad_weight`` maps it back).
    Shapes: x (n, c_in, h, w) placed at (top, left) in zeros, dy (n, c_out, h_out, w_out), du (16,
    c_out, c_in); scratch xs and dys (chunk, *``split_shape(c, (h_out, w_out), 2)``), the others as
    ``forward_images``'s (y_buf unused: the arguments are those of ``conv_winograd4``'s)."""
    c_in, c_out = xs.shape[1], dys.shape[1]
    plane = (xs.shape[4] - 1) * xs.shape[5]
    for n0 in range(first, last, chunk):
        imgs = min(chunk, last - n0)
        cols = imgs * plane
        v, dm = chunk_views(v_buf, m_buf, 16, c_in, c_out, cols)
        split_samples(x, xs, top, left, n0, n0 + imgs)
        split_samples(dy, dys, 0, 0, n0, n0 + imgs)
        _input_transform(xs, v, 0, imgs)
        _output_grad_transform(dys, dm, 0, imgs)
        element_grad_products(dm, v, du, ints, scalars)


def grad_weight(du: np.ndarray, g: np.ndarray = G) -> np.ndarray:
    """dw[o, c] = g^T dU[o, c] g (the adjoint of ``transform_weight``), in float64, stored in du's
    dtype. Shapes: du (a*a, c_out, c_in) -> (c_out, c_in, 3, 3)."""
    dw = du.astype(np.float64).reshape(g.shape[0] ** 2, -1).T @ _kron(g)  # (pairs, 9), as transform_weight
    return np.ascontiguousarray(dw.reshape(du.shape[1], du.shape[2], 3, 3), dtype=du.dtype)
