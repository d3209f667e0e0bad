"""Slow, obvious reference loops for the pooling kernels (written from the definitions,
independently of minieye.kernels.pool). Arrays are NCHW; everything is float64 inside.
"""
from __future__ import annotations

import math

import numpy as np


def out_size(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def max_pool(x, k, s, p):
    """(y, switches): a row-major scan of each window's real cells, PyTorch's rule: a value
    replaces the best when strictly greater or NaN (first maximum wins; last NaN wins)."""
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    n, c, h, w = x.shape
    ho, wo = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    y = np.zeros((n, c, ho, wo))
    sw_ = np.zeros((n, c, ho, wo), dtype=np.int64)
    for b in range(n):
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    cells = [(r, q) for r in range(i * sh - ph, i * sh - ph + kh)
                             for q in range(j * sw - pw, j * sw - pw + kw)
                             if 0 <= r < h and 0 <= q < w]
                    best, where = -math.inf, cells[0]
                    for r, q in cells:
                        v = x[b, ch, r, q]
                        if v > best or math.isnan(v):
                            best, where = v, (r, q)
                    y[b, ch, i, j] = best
                    sw_[b, ch, i, j] = where[0] * w + where[1]
    return y, sw_


def unpool(v, switches, h, w):
    """Scatter-add each value to its switch."""
    n, c = v.shape[:2]
    out = np.zeros((n, c, h * w))
    for b in range(n):
        for ch in range(c):
            for val, idx in zip(v[b, ch].ravel(), switches[b, ch].ravel()):
                out[b, ch, idx] += val
    return out.reshape(n, c, h, w)


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
    """Average over the window; the divisor is kh*kw or the number of in-bounds cells."""
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    n, c, h, w = x.shape
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    padded[:, :, ph:ph + h, pw:pw + w] = x
    inside = np.zeros((h + 2 * ph, w + 2 * pw))
    inside[ph:ph + h, pw:pw + w] = 1
    ho, wo = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
            divisor = kh * kw if count_include_pad else inside[rows, cols].sum()
            y[:, :, i, j] = padded[:, :, rows, cols].sum(axis=(2, 3)) / divisor
    return y


def avg_pool_matrix(h, w, k, s, p, count_include_pad):
    """The (ho*wo, h*w) matrix A with avg_pool(x) = A @ x (per plane); backward is A.T."""
    a = np.zeros((out_size(h, k[0], s[0], p[0]) * out_size(w, k[1], s[1], p[1]), h * w))
    for col in range(h * w):
        e = np.zeros((1, 1, h * w))
        e[0, 0, col] = 1
        a[:, col] = avg_pool(e.reshape(1, 1, h, w), k, s, p, count_include_pad).ravel()
    return a


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
