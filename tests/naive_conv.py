"""Slow, obvious references for convolution, written without looking at the kernels.

- ``conv``: the defining sum, one output element at a time (zero outside the image),
  for any number of spatial dims (1-D signals, 2-D images, 3-D volumes).
- ``conv_transpose``: the scatter form: every input element stamps ``value * kernel``
  onto the output, then the padding is cropped (how the operation is usually drawn).
- ``conv_grad_weight``: the defining sum of dw.
- ``conv2d``, ``conv_transpose2d``, ``conv2d_grad_weight``: the same, by their 2-D names.
- ``conv_matrix``: seed 003's explicit matrix C, with conv2d(x).ravel() == x.ravel() @ C.
"""
from __future__ import annotations

import numpy as np


def _tuple(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


def _reads(out_index, kernel_index, stride, padding, dilation):
    """The input position read by one output position and one kernel tap (may lie in the padding)."""
    return tuple(a * s - p + i * d for a, i, s, p, d in zip(out_index, kernel_index, stride, padding, dilation))


def _inside(out_index, kernel, size, stride, padding, dilation):
    """(kernel index, input position) of each tap of one output position that reads inside x."""
    for i in np.ndindex(*kernel):
        r = _reads(out_index, i, stride, padding, dilation)
        if all(0 <= v < m for v, m in zip(r, size)):
            yield i, r


def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Any number of spatial dims (x (N, C, *size), w (C_out, C_in/groups, *kernel))."""
    nd = x.ndim - 2
    stride, padding, dilation = (_tuple(v, nd) for v in (stride, padding, dilation))
    n, c_in = x.shape[:2]
    c_out, c_in_g = w.shape[:2]
    size, kernel = x.shape[2:], w.shape[2:]
    c_out_g = c_out // groups
    out = tuple((m + 2 * p - d * (k - 1) - 1) // s + 1
                for m, k, s, p, d in zip(size, kernel, stride, padding, dilation))
    y = np.zeros((n, c_out) + out, dtype=np.float64)
    for s_ in range(n):
        for o in range(c_out):
            g = o // c_out_g
            for a in np.ndindex(*out):
                total = 0.0
                for cc in range(c_in_g):
                    for i, r in _inside(a, kernel, size, stride, padding, dilation):
                        total += float(w[(o, cc) + i]) * float(x[(s_, g * c_in_g + cc) + r])
                y[(s_, o) + a] = total
            if b is not None:
                y[s_, o] += b[o]
    return y


def conv_transpose(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """w has shape (c_in, c_out/groups, *kernel), as PyTorch's transposed weight."""
    nd = x.ndim - 2
    stride, padding, output_padding, dilation = (_tuple(v, nd) for v in (stride, padding, output_padding, dilation))
    n, c_in = x.shape[:2]
    c_out_g = w.shape[1]
    size, kernel = x.shape[2:], w.shape[2:]
    c_in_g = c_in // groups
    c_out = c_out_g * groups
    full = tuple((m - 1) * s + d * (k - 1) + 1 + op + p
                 for m, k, s, p, op, d in zip(size, kernel, stride, padding, output_padding, dilation))
    canvas = np.zeros((n, c_out) + full, dtype=np.float64)
    for s_ in range(n):
        for c in range(c_in):
            g = c // c_in_g
            for a in np.ndindex(*size):
                v = float(x[(s_, c) + a])
                for oo in range(c_out_g):
                    for i in np.ndindex(*kernel):
                        # the stamp lands where the forward convolution would have read (before cropping p)
                        r = _reads(a, i, stride, (0,) * nd, dilation)
                        canvas[(s_, g * c_out_g + oo) + r] += v * float(w[(c, oo) + i])
    out = tuple((m - 1) * s - 2 * p + d * (k - 1) + op + 1
                for m, k, s, p, op, d in zip(size, kernel, stride, padding, output_padding, dilation))
    y = canvas[(slice(None), slice(None)) + tuple(slice(p, p + o) for p, o in zip(padding, out))].copy()
    if b is not None:
        y += np.asarray(b, dtype=np.float64).reshape((-1,) + (1,) * nd)
    return y


def conv_grad_weight(x, dy, kernel_size, stride=1, padding=0, dilation=1, groups=1):
    nd = x.ndim - 2
    stride, padding, dilation, kernel = (_tuple(v, nd) for v in (stride, padding, dilation, kernel_size))
    n, c_in = x.shape[:2]
    c_out = dy.shape[1]
    size, out = x.shape[2:], dy.shape[2:]
    c_in_g, c_out_g = c_in // groups, c_out // groups
    dw = np.zeros((c_out, c_in_g) + kernel)
    for o in range(c_out):
        g = o // c_out_g
        for s_ in range(n):
            for a in np.ndindex(*out):
                for cc in range(c_in_g):
                    for i, r in _inside(a, kernel, size, stride, padding, dilation):
                        dw[(o, cc) + i] += float(dy[(s_, o) + a]) * float(x[(s_, g * c_in_g + cc) + r])
    return dw


# The 2-D names the 2-D tests use.
conv2d, conv_transpose2d, conv2d_grad_weight = conv, conv_transpose, conv_grad_weight


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


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
