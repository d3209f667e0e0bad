"""Upsampling kernels on contiguous NCHW arrays, by integer factors (sh, sw).

- nearest: ``y[p, i, j] = x[p, i // sh, j // sw]``; backward sums each sh x sw block.
- bilinear, align_corners=False (PyTorch's default): output row i reads the source
  coordinate ``r = max((i + 0.5) / sh - 0.5, 0)``, rows ``floor(r)`` and
  ``min(floor(r) + 1, H - 1)`` with weights ``1 - frac(r)`` and ``frac(r)``; columns
  likewise. The backward scatters ``dy`` with the same weights (the transpose), so
  ``<upsample(x), dy> = <x, upsample_backward(dy)>``.

As in ``kernels/pool.py``: planes ``P = N*C`` and a serial body over a range of planes;
bilinear (four taps per output) splits its planes over threads when the work pays for
waking them; nearest, a pure copy, stays serial. No validation.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from .pool import run_units

__all__ = [
    "upsample_nearest_forward",
    "upsample_nearest_backward",
    "upsample_bilinear_forward",
    "upsample_bilinear_backward",
    "bilinear_taps",
]


def _planes(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N*C, H, W), a view."""
    n, c, h, w = a.shape
    return a.reshape(n * c, h, w)


# -- nearest upsampling ------------------------------------------------------------------
@kernel
def _nearest_planes(x, y, p0, p1, sh, sw):
    h, w = x.shape[1], x.shape[2]
    for p in range(p0, p1):
        for i in range(h * sh):
            xr, yr = x[p, i // sh], y[p, i]  # whole rows: no division per element
            for b in range(w):
                v = xr[b]
                for t in range(sw):
                    yr[b * sw + t] = v


@kernel
def _nearest_grad_planes(dy, dx, p0, p1, sh, sw):
    h, w = dx.shape[1], dx.shape[2]
    for p in range(p0, p1):
        for i in range(h * sh):
            dyr, dxr = dy[p, i], dx[p, i // sh]
            for b in range(w):
                total = dxr[b]
                for t in range(sw):
                    total += dyr[b * sw + t]
                dxr[b] = total


def upsample_nearest_forward(x: np.ndarray, sh: int, sw: int) -> np.ndarray:
    """Repeat each pixel sh x sw times. Shapes: (N, C, H, W) -> (N, C, H*sh, W*sw)."""
    n, c, h, w = x.shape
    y = np.empty((n, c, h * sh, w * sw), dtype=x.dtype)
    planes = n * c
    if planes:  # a copy with repeats: memory-bound, serial
        _nearest_planes(_planes(x), _planes(y), 0, planes, sh, sw)
    return y


def upsample_nearest_backward(dy: np.ndarray, sh: int, sw: int) -> np.ndarray:
    """Sum each sh x sw block of dy. Shapes: (N, C, H*sh, W*sw) -> (N, C, H, W)."""
    n, c, h_out, w_out = dy.shape
    dx = np.zeros((n, c, h_out // sh, w_out // sw), dtype=dy.dtype)
    planes = n * c
    if planes:  # one add per element: memory-bound, serial
        _nearest_grad_planes(_planes(dy), _planes(dx), 0, planes, sh, sw)
    return dx


# -- bilinear upsampling (align_corners=False) ---------------------------------------------
def bilinear_taps(size: int, scale: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per output index along one axis: source indices (i0, i1) and weights (l0, l1).

    PyTorch's align_corners=False rule with scale = 1/scale_factor:
    ``r = max((i + 0.5) / scale - 0.5, 0)``, ``i0 = floor(r)``, ``i1 = min(i0 + 1, size - 1)``,
    ``l1 = r - i0``, ``l0 = 1 - l1``.
    """
    r = np.maximum((np.arange(size * scale) + 0.5) / scale - 0.5, 0.0)
    i0 = np.floor(r).astype(np.int64)
    i1 = np.minimum(i0 + 1, size - 1)
    l1 = r - i0
    return i0, i1, (1.0 - l1).astype(dtype), l1.astype(dtype)


@kernel
def _bilinear_planes(x, y, p0, p1, ih0, ih1, lh0, lh1, iw0, iw1, lw0, lw1):
    w = x.shape[2]
    h_out, w_out = y.shape[1], y.shape[2]
    mixed = np.empty(w, dtype=x.dtype)
    for p in range(p0, p1):
        for i in range(h_out):
            # separable: blend the two source rows (contiguous, vectorised), then two taps per output
            x0, x1, u0, u1 = x[p, ih0[i]], x[p, ih1[i]], lh0[i], lh1[i]
            for b in range(w):
                mixed[b] = u0 * x0[b] + u1 * x1[b]
            yr = y[p, i]
            for j in range(w_out):
                yr[j] = lw0[j] * mixed[iw0[j]] + lw1[j] * mixed[iw1[j]]


@kernel
def _bilinear_grad_planes(dy, dx, p0, p1, ih0, ih1, lh0, lh1, iw0, iw1, lw0, lw1):
    w = dx.shape[2]
    h_out, w_out = dy.shape[1], dy.shape[2]
    spread = np.empty(w, dtype=dx.dtype)
    for p in range(p0, p1):
        for i in range(h_out):
            # the transpose: spread the output row over source columns, then add it to both rows
            spread[:] = 0
            g = dy[p, i]
            for j in range(w_out):
                spread[iw0[j]] += lw0[j] * g[j]
                spread[iw1[j]] += lw1[j] * g[j]
            d0, d1, u0, u1 = dx[p, ih0[i]], dx[p, ih1[i]], lh0[i], lh1[i]
            for b in range(w):
                d0[b] += u0 * spread[b]
            for b in range(w):  # a second loop: d0 and d1 are the same row at the border
                d1[b] += u1 * spread[b]


def upsample_bilinear_forward(x: np.ndarray, sh: int, sw: int) -> np.ndarray:
    """Bilinear upsampling by integer factors. Shapes: (N, C, H, W) -> (N, C, H*sh, W*sw)."""
    n, c, h, w = x.shape
    y = np.empty((n, c, h * sh, w * sw), dtype=x.dtype)
    taps = (*bilinear_taps(h, sh, x.dtype), *bilinear_taps(w, sw, x.dtype))
    planes = n * c
    xp, yp = _planes(x), _planes(y)
    run_units(lambda p0, p1: _bilinear_planes(xp, yp, p0, p1, *taps), planes, 4 * y.size)
    return y


def upsample_bilinear_backward(dy: np.ndarray, sh: int, sw: int) -> np.ndarray:
    """Input gradient of bilinear upsampling. Shapes: (N, C, H*sh, W*sw) -> (N, C, H, W)."""
    n, c, h_out, w_out = dy.shape
    h, w = h_out // sh, w_out // sw
    dx = np.zeros((n, c, h, w), dtype=dy.dtype)
    taps = (*bilinear_taps(h, sh, dy.dtype), *bilinear_taps(w, sw, dy.dtype))
    planes = n * c
    dyp, dxp = _planes(dy), _planes(dx)
    run_units(lambda p0, p1: _bilinear_grad_planes(dyp, dxp, p0, p1, *taps), planes, 4 * dy.size)
    return dx
