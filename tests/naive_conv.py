"""Slow, obvious references for convolution, written without looking at the kernels.

- ``conv2d``: the defining sum, one output element at a time (zero outside the image).
- ``conv_transpose2d``: the scatter form: every input element stamps ``value * kernel``
  onto the output, then the padding is cropped (how the operation is usually drawn).
- ``conv2d_grad_weight``: the defining sum of dw.
- ``conv_matrix``: seed 003's explicit matrix C, with conv2d(x).ravel() == x.ravel() @ C.
"""
from __future__ import annotations

import numpy as np


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    n, c_in, h, wd = x.shape
    c_out, c_in_g, kh, kw = w.shape
    c_out_g = c_out // groups
    h_out = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, c_out, h_out, w_out), dtype=np.float64)
    for s in range(n):
        for o in range(c_out):
            g = o // c_out_g
            for a in range(h_out):
                for bb in range(w_out):
                    total = 0.0
                    for cc in range(c_in_g):
                        c = g * c_in_g + cc
                        for i in range(kh):
                            for j in range(kw):
                                r = a * sh - ph + i * dh
                                q = bb * sw - pw + j * dw
                                if 0 <= r < h and 0 <= q < wd:
                                    total += float(w[o, cc, i, j]) * float(x[s, c, r, q])
                    y[s, o, a, bb] = total
            if b is not None:
                y[s, o] += b[o]
    return y


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """w has shape (c_in, c_out/groups, kh, kw), as PyTorch's transposed weight."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    oph, opw = _pair(output_padding)
    dh, dw = _pair(dilation)
    n, c_in, h, wd = x.shape
    _, c_out_g, kh, kw = w.shape
    c_in_g = c_in // groups
    c_out = c_out_g * groups
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + oph
    full_w = (wd - 1) * sw + dw * (kw - 1) + 1 + opw
    full = np.zeros((n, c_out, full_h + ph, full_w + pw), dtype=np.float64)
    for s in range(n):
        for c in range(c_in):
            g = c // c_in_g
            for a in range(h):
                for bb in range(wd):
                    v = float(x[s, c, a, bb])
                    for oo in range(c_out_g):
                        for i in range(kh):
                            for j in range(kw):
                                full[s, g * c_out_g + oo, a * sh + i * dh, bb * sw + j * dw] += v * float(w[c, oo, i, j])
    h_out = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    w_out = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    y = full[:, :, ph:ph + h_out, pw:pw + w_out].copy()
    if b is not None:
        y += np.asarray(b, dtype=np.float64)[None, :, None, None]
    return y


def conv2d_grad_weight(x, dy, kernel_size, stride=1, padding=0, dilation=1, groups=1):
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    kh, kw = _pair(kernel_size)
    n, c_in, h, wd = x.shape
    _, c_out, h_out, w_out = dy.shape
    c_in_g, c_out_g = c_in // groups, c_out // groups
    out = np.zeros((c_out, c_in_g, kh, kw))
    for o in range(c_out):
        g = o // c_out_g
        for cc in range(c_in_g):
            for i in range(kh):
                for j in range(kw):
                    total = 0.0
                    for s in range(n):
                        for a in range(h_out):
                            for bb in range(w_out):
                                r, q = a * sh - ph + i * dh, bb * sw - pw + j * dw
                                if 0 <= r < h and 0 <= q < wd:
                                    total += float(dy[s, o, a, bb]) * float(x[s, g * c_in_g + cc, r, q])
                    out[o, cc, i, j] = total
    return out


def conv_matrix(input_hw, kernel, stride=1, padding=0):
    """Seed 003's C for one channel: shape (H*W, H_out*W_out), column k is the kernel
    placed at output position k inside a zero H x W array, read row by row."""
    h, wd = input_hw
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    kh, kw = kernel.shape
    h_out = (h + 2 * ph - kh) // sh + 1
    w_out = (wd + 2 * pw - kw) // sw + 1
    C = np.zeros((h * wd, h_out * w_out))
    for a in range(h_out):
        for bb in range(w_out):
            canvas = np.zeros((h + 2 * ph, wd + 2 * pw))
            canvas[a * sh:a * sh + kh, bb * sw:bb * sw + kw] = kernel
            C[:, a * w_out + bb] = canvas[ph:ph + h, pw:pw + wd].ravel()
    return C
