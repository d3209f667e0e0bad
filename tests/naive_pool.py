"""Slow, obvious reference loops for the pooling kernels (written from the definitions,
independently of minieye.kernels.pool). Arrays are (N, C, *spatial) with any number of
spatial dims for the pools (NCHW for upsampling); everything is float64 inside.
"""
from __future__ import annotations

import itertools
import math

import numpy as np


def out_size(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def _windows(spatial, k, s, p):
    """(output index, list of the window's in-bounds cells in row-major order) for every output."""
    outs = [out_size(n, ki, si, pi) for n, ki, si, pi in zip(spatial, k, s, p)]
    for o in itertools.product(*(range(n) for n in outs)):
        ranges = [range(oi * si - pi, oi * si - pi + ki) for oi, ki, si, pi in zip(o, k, s, p)]
        cells = [q for q in itertools.product(*ranges) if all(0 <= qi < n for qi, n in zip(q, spatial))]
        yield o, cells, outs


def max_pool(x, k, s, p):
    """(y, switches) for any number of spatial dims: a row-major scan of each window's real
    cells, PyTorch's rule: a value replaces the best when strictly greater or NaN (first
    maximum wins; last NaN wins). Switches are np.ravel_multi_index of the winner."""
    spatial = x.shape[2:]
    outs = [out_size(n, ki, si, pi) for n, ki, si, pi in zip(spatial, k, s, p)]
    y = np.zeros((*x.shape[:2], *outs))
    sw_ = np.zeros((*x.shape[:2], *outs), dtype=np.int64)
    for b, ch in np.ndindex(x.shape[:2]):
        for o, cells, _ in _windows(spatial, k, s, p):
            best, where = -math.inf, cells[0]
            for q in cells:
                v = x[(b, ch) + q]
                if v > best or math.isnan(v):
                    best, where = v, q
            y[(b, ch) + o] = best
            sw_[(b, ch) + o] = np.ravel_multi_index(where, spatial)
    return y, sw_


def unpool(v, switches, spatial):
    """Scatter-add each value to its switch in a zero array of spatial shape ``spatial``."""
    n, c = v.shape[:2]
    out = np.zeros((n, c, int(np.prod(spatial))))
    for b in range(n):
        for ch in range(c):
            for val, idx in zip(v[b, ch].ravel(), switches[b, ch].ravel()):
                out[b, ch, idx] += val
    return out.reshape(n, c, *spatial)


def gather(x, switches):
    n, c = switches.shape[:2]
    out = np.zeros(switches.shape)
    for b in range(n):
        for ch in range(c):
            plane = x[b, ch].ravel()
            for idx in np.ndindex(switches.shape[2:]):
                out[(b, ch) + idx] = plane[switches[(b, ch) + idx]]
    return out


def avg_pool(x, k, s, p, count_include_pad):
    """Average over the window for any number of spatial dims; the divisor is prod(k) or the
    number of in-bounds cells. The padded extent is the window clipped to the padded input
    (in floor mode always the whole window)."""
    spatial = x.shape[2:]
    outs = [out_size(n, ki, si, pi) for n, ki, si, pi in zip(spatial, k, s, p)]
    y = np.zeros((*x.shape[:2], *outs))
    for o, cells, _ in _windows(spatial, k, s, p):
        divisor = math.prod(k) if count_include_pad else len(cells)
        total = sum(x[(slice(None), slice(None)) + q] for q in cells)
        y[(slice(None), slice(None)) + o] = total / divisor
    return y


def avg_pool_matrix(spatial, k, s, p, count_include_pad):
    """The (outputs, inputs) matrix A with avg_pool(x) = A @ x (per plane); backward is A.T."""
    size = int(np.prod(spatial))
    columns = []
    for col in range(size):
        e = np.zeros((1, 1, size))
        e[0, 0, col] = 1
        columns.append(avg_pool(e.reshape(1, 1, *spatial), k, s, p, count_include_pad).ravel())
    return np.stack(columns, axis=1)


def upsample_nearest(x, sh, sw):
    n, c, h, w = x.shape
    y = np.zeros((n, c, h * sh, w * sw))
    for i in range(h * sh):
        for j in range(w * sw):
            y[:, :, i, j] = x[:, :, i // sh, j // sw]
    return y


def _bilinear_axis(size, scale):
    """(size*scale, size) interpolation matrix for align_corners=False."""
    m = np.zeros((size * scale, size))
    for i in range(size * scale):
        r = max((i + 0.5) / scale - 0.5, 0.0)
        i0 = math.floor(r)
        i1 = min(i0 + 1, size - 1)
        frac = r - i0
        m[i, i0] += 1 - frac
        m[i, i1] += frac
    return m


def upsample_bilinear(x, sh, sw):
    """Separable: y = Mh @ x @ Mw.T per plane."""
    mh, mw = _bilinear_axis(x.shape[2], sh), _bilinear_axis(x.shape[3], sw)
    return np.einsum("ia,ncab,jb->ncij", mh, x, mw)


def upsample_bilinear_grad(dy, sh, sw):
    h, w = dy.shape[2] // sh, dy.shape[3] // sw
    mh, mw = _bilinear_axis(h, sh), _bilinear_axis(w, sw)
    return np.einsum("ia,ncij,jb->ncab", mh, dy, mw)
