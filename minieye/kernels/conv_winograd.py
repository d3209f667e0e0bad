"""Winograd F(2x2, 3x3): a 3x3 stride-1 convolution with 2.25x fewer multiplications.

Each 2x2 block of outputs of one output channel is computed from the 4x4 input tile
under it (Lavin & Gray, 2016):

    Y = A^T [ sum_c (G g_oc G^T) * (B^T d_c B) ] A          (* element-wise, 4x4)

with the constant matrices below. The weight transform ``U = G g G^T`` is done once per
call (``transform_weight``); for a chunk of tiles the input tiles are transformed into
``V[16, c_in, tiles]``, the 16 element positions become 16 matrix products
``M[k] = U[k] @ V[k]`` (BLAS, ``conv_blas.gemm``) of shape (c_out, c_in) x (c_in, tiles), and the
output transform writes each 2x2 block (plus the bias). That is 16 multiply-adds per
(c_out, c_in) pair and 2x2 outputs instead of 36.

The caller zero-pads the input so that tile (ty, tx) reads rows 2*ty .. 2*ty+3 and
columns 2*tx .. 2*tx+3 with no bounds tests (``pad_tiles``); with the padding given per
side, the same kernel serves the forward (top = pad_h) and the input gradient (the
forward of dy with the flipped, transposed kernel and top = 2 - pad_h; any output size).
Rounding: the transforms add a few terms of mixed sign, so float32 results differ from
the direct sum by a few units in the last place of the largest terms (tests bound it
against the direct result).
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from .conv_blas import gemm

# G (4x3): the weight transform U = G g G^T.
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def transform_weight(w: np.ndarray) -> np.ndarray:
    """U[4*i + j, o, c] = (G w[o, c] G^T)[i, j], computed in float64 and stored in w's dtype.
    Shapes: w (c_out, c_in, 3, 3) -> (16, c_out, c_in)."""
    u = np.einsum("ai,ocij,bj->aboc", G, w.astype(np.float64), G)
    return np.ascontiguousarray(u.reshape(16, w.shape[0], w.shape[1]), dtype=w.dtype)


def pad_tiles(x: np.ndarray, top: int, left: int, out_hw: tuple[int, int]) -> np.ndarray:
    """x placed at (top, left) in zeros of height 2*ceil(h_out/2) + 2 and width 2*ceil(w_out/2) + 2
    (a negative offset or a short buffer crops x). Shapes: (n, c, h, w) -> (n, c, hp, wp)."""
    n, c, h, w = x.shape
    hp, wp = 2 * ((out_hw[0] + 1) // 2) + 2, 2 * ((out_hw[1] + 1) // 2) + 2
    xp = np.zeros((n, c, hp, wp), dtype=x.dtype)
    r0, r1 = max(top, 0), min(hp, top + h)
    c0, c1 = max(left, 0), min(wp, left + w)
    if r1 > r0 and c1 > c0:
        xp[:, :, r0:r1, c0:c1] = x[:, :, r0 - top:r1 - top, c0 - left:c1 - left]
    return xp


@kernel
def _input_tiles(xp, v, rows, t0, count, tiles_w, tiles_img):
    """v[4*i + j, c, q] = (B^T d B)[i, j] for tile t0 + q of every channel c, d the 4x4 block of
    the padded input xp at (2*ty, 2*tx). Per channel and row of tiles: first the four row
    combinations of B^T over the whole width (``rows``, scratch (4, wp)), then the column
    combinations along the row of tiles; both loops are unit-stride or stride-2 runs."""
    n_img, c_in, hp, wp = xp.shape
    for c in range(c_in):
        q = 0
        while q < count:
            t = t0 + q
            n = t // tiles_img
            ty = (t % tiles_img) // tiles_w
            tx0 = t % tiles_w
            seg = min(tiles_w - tx0, count - q)
            x0, x1, x2, x3 = xp[n, c, 2 * ty], xp[n, c, 2 * ty + 1], xp[n, c, 2 * ty + 2], xp[n, c, 2 * ty + 3]
            r0, r1, r2, r3 = rows[0], rows[1], rows[2], rows[3]
            lo, hi = 2 * tx0, 2 * (tx0 + seg) + 2
            for e in range(lo, hi):
                r0[e] = x0[e] - x2[e]
                r1[e] = x1[e] + x2[e]
                r2[e] = x2[e] - x1[e]
                r3[e] = x1[e] - x3[e]
            for i in range(4):
                r = rows[i, lo:hi]  # columns 2*s (even) and 2*s + 1 (odd) of tile s; a constant stride vectorises
                v0, v1, v2, v3 = v[4 * i, c, q:q + seg], v[4 * i + 1, c, q:q + seg], \
                    v[4 * i + 2, c, q:q + seg], v[4 * i + 3, c, q:q + seg]
                for s in range(seg):
                    e0, e1, e2, e3 = r[2 * s], r[2 * s + 1], r[2 * s + 2], r[2 * s + 3]
                    v0[s] = e0 - e2
                    v1[s] = e1 + e2
                    v2[s] = e2 - e1
                    v3[s] = e1 - e3
            q += seg


@kernel
def _output_tiles(m, y, bias, t0, count, tiles_w, tiles_img):
    """y[n, o, 2*ty + a, 2*tx + b] = (A^T M A)[a, b] + bias[o], cropped to y's size."""
    n_img, c_out, h_out, w_out = y.shape
    flat = y.reshape((n_img * c_out, h_out * w_out))
    for o in range(c_out):
        shift = bias[o]
        n = t0 // tiles_img
        ty = (t0 % tiles_img) // tiles_w
        tx = t0 % tiles_w
        for q in range(count):
            # rows of A^T M: M0 + M1 + M2 and M1 - M2 - M3, for each of the 4 columns
            p0 = m[0, o, q] + m[4, o, q] + m[8, o, q]
            p1 = m[1, o, q] + m[5, o, q] + m[9, o, q]
            p2 = m[2, o, q] + m[6, o, q] + m[10, o, q]
            p3 = m[3, o, q] + m[7, o, q] + m[11, o, q]
            r0 = m[4, o, q] - m[8, o, q] - m[12, o, q]
            r1 = m[5, o, q] - m[9, o, q] - m[13, o, q]
            r2 = m[6, o, q] - m[10, o, q] - m[14, o, q]
            r3 = m[7, o, q] - m[11, o, q] - m[15, o, q]
            row = n * c_out + o
            a, b = 2 * ty, 2 * tx
            e = a * w_out + b
            flat[row, e] = p0 + p1 + p2 + shift
            if b + 1 < w_out:
                flat[row, e + 1] = p1 - p2 - p3 + shift
            if a + 1 < h_out:
                flat[row, e + w_out] = r0 + r1 + r2 + shift
                if b + 1 < w_out:
                    flat[row, e + w_out + 1] = r1 - r2 - r3 + shift
            tx += 1
            if tx == tiles_w:
                tx = 0
                ty += 1
                if ty * tiles_w == tiles_img:
                    ty = 0
                    n += 1


@kernel
def forward_tiles(xp, u, bias, y, v_buf, m_buf, ints, scalars, first, last, chunk):
    """Tiles first .. last-1 of y (tile t: sample t // tiles_img, row-major within it), ``chunk``
    at a time. Shapes: xp (n, c_in, 2*tiles_h + 2, 2*tiles_w + 2) the zero-padded input, u (16, c_out,
    c_in), bias (c_out,), y (n, c_out, h_out, w_out); scratch v_buf (16*c_in*chunk,), m_buf (16*c_out*chunk,);
    ints and scalars: ``conv_blas.gemm``'s."""
    c_in = xp.shape[1]
    c_out = u.shape[1]
    rows = np.empty((4, xp.shape[3]), dtype=xp.dtype)
    tiles_w = (y.shape[3] + 1) // 2
    tiles_img = ((y.shape[2] + 1) // 2) * tiles_w
    for t0 in range(first, last, chunk):
        count = min(chunk, last - t0)
        v = v_buf[:16 * c_in * count].reshape((16, c_in, count))
        m = m_buf[:16 * c_out * count].reshape((16, c_out, count))
        _input_tiles(xp, v, rows, t0, count, tiles_w, tiles_img)
        for k in range(16):
            gemm(False, False, u[k].reshape(-1), c_in, v[k].reshape(-1), count, m[k].reshape(-1), count,
                 c_out, count, c_in, 0.0, ints, scalars)
        _output_tiles(m, y, bias, t0, count, tiles_w, tiles_img)
