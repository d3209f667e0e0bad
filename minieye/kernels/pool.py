"""Pooling and unpooling kernels on contiguous NCHW arrays.

Every kernel sees its batch as ``P = N*C`` independent planes ``(P, H, W)`` (a free
reshape of a C-contiguous NCHW array). Geometry follows PyTorch:

    h_out = (h + 2*pad_h - kh) // stride_h + 1        (floor mode; no ceil_mode)
    window (i, j) covers rows i*stride_h - pad_h + [0, kh), columns likewise.

Max-pool with switches::

    y[p, i, j]        = max over the window of x[p, a, b]   (padding counts as -inf)
    switches[p, i, j] = a*W + b of that maximum              (flat index in the H*W plane)

Ties go to the first maximum in row-major window order (PyTorch's CPU rule: a later
value replaces the best only when strictly greater); a NaN in a window wins (the last
NaN), so NaNs propagate as in PyTorch. The kernel is separable: for each output row it
takes column maxima over the window's rows (vectorised), then maxima of those over each
window's columns, breaking ties by flat index so that the result is exactly the
row-major scan's (tests/test_pool_kernels.py checks this against a plain scan).

Scatter and gather by switches are each other's adjoints::

    scatter(v, s)[p, k] = sum over {(i, j): s[p, i, j] == k} of v[p, i, j]
    gather(u, s)[p, i, j] = u[p, s[p, i, j]]
    <scatter(v, s), u> = <v, gather(u, s)>

so max-pool's backward is ``dx = scatter(dy, switches)``, max-unpool (Noh et al.'s
unpooling, DeconvNet) *is* that scatter, and max-unpool's backward is the gather. One
implementation serves both directions.

Average pool: ``y[p, i, j] = sum over the window's in-bounds x / divisor`` where the
divisor is ``kh*kw`` (count_include_pad) or the number of in-bounds cells; its
backward spreads ``dy / divisor`` back over the same cells. Window and divisor are
separable (rows x columns), so each output row first adds its window's input rows
(contiguous, vectorised) and then sums short runs of that row.

Upsampling (nearest, bilinear) lives in ``kernels/upsample.py``.

Each operation has a serial body over a range of planes (``@kernel``). Those that
compute per element (max-pool, average pool and its backward) also have a thin
parallel driver that hands one plane at a time to Numba's pool (``prange``); the
public functions take it only when there are several planes and enough work to pay
for waking the thread pool (tens of microseconds when idle, far more on a busy
machine). Scatter and gather move one value per switch: they are bound by memory
traffic, two cores gain little, and a parallel driver would cost seconds of
compilation per dtype, so they stay serial. No validation happens here.
"""
from __future__ import annotations

import numba
import numpy as np

from ._jit import kernel, parallel_kernel, prange

__all__ = [
    "PARALLEL_MIN_WORK",
    "pool_output_size",
    "max_pool2d_forward",
    "scatter_switches",
    "gather_switches",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
]

# Below this many inner-loop steps (about 0.3-1 ms of serial work) a call runs serially:
# waking Numba's thread pool costs tens of microseconds on an idle machine and far more
# on a busy one. numba.set_num_threads(1) makes every call serial.
PARALLEL_MIN_WORK = 1 << 18


def pool_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Output length along one axis: ``(size + 2*padding - kernel_size) // stride + 1``."""
    return (size + 2 * padding - kernel_size) // stride + 1


def _use_parallel(planes: int, work: int) -> bool:
    return planes > 1 and work >= PARALLEL_MIN_WORK and numba.get_num_threads() > 1


def _planes(a: np.ndarray) -> np.ndarray:
    n, c, h, w = a.shape
    return a.reshape(n * c, h, w)


# -- max-pool --------------------------------------------------------------------------
@kernel
def _max_pool_planes(x, y, switches, p0, p1, kh, kw, stride_h, stride_w, pad_h, pad_w):
    h, w = x.shape[1], x.shape[2]
    h_out, w_out = y.shape[1], y.shape[2]
    col_max = np.empty(w, dtype=x.dtype)
    col_arg = np.empty(w, dtype=np.int64)
    for p in range(p0, p1):
        xp, yp, sp = x[p], y[p], switches[p]
        for i in range(h_out):
            top = i * stride_h - pad_h
            a0, a1 = max(top, 0), min(top + kh, h)
            # 1) down each column over the window's rows (contiguous rows: vectorised);
            #    strictly greater keeps the first row, a NaN replaces (so the last NaN row)
            first = xp[a0]
            for b in range(w):
                col_max[b] = first[b]
                col_arg[b] = a0 * w + b
            for a in range(a0 + 1, a1):
                xr = xp[a]
                for b in range(w):
                    v = xr[b]
                    take = (v > col_max[b]) | (v != v)  # selects, not branches
                    col_max[b] = v if take else col_max[b]
                    col_arg[b] = a * w + b if take else col_arg[b]
            # 2) across the window's columns. Row-major order is flat-index order, so PyTorch's
            #    rules become: among equal maxima the smallest index, among NaNs the largest.
            for j in range(w_out):
                left = j * stride_w - pad_w
                b0, b1 = max(left, 0), min(left + kw, w)
                best, arg = col_max[b0], col_arg[b0]
                for b in range(b0 + 1, b1):
                    v, idx = col_max[b], col_arg[b]
                    take = ((v > best) | ((v == best) & (idx < arg))
                            | ((v != v) & ((best == best) | (idx > arg))))
                    best = v if take else best
                    arg = idx if take else arg
                yp[i, j] = best
                sp[i, j] = arg


@parallel_kernel
def _max_pool_parallel(x, y, switches, kh, kw, stride_h, stride_w, pad_h, pad_w):
    for p in prange(x.shape[0]):
        _max_pool_planes(x, y, switches, p, p + 1, kh, kw, stride_h, stride_w, pad_h, pad_w)


def max_pool2d_forward(x: np.ndarray, kh: int, kw: int, stride_h: int, stride_w: int,
                       pad_h: int, pad_w: int) -> tuple[np.ndarray, np.ndarray]:
    """Max-pool a contiguous NCHW array; returns ``(y, switches)`` (switches int64).

    Shapes: x (N, C, H, W) -> y, switches (N, C, h_out, w_out).
    """
    n, c, h, w = x.shape
    h_out = pool_output_size(h, kh, stride_h, pad_h)
    w_out = pool_output_size(w, kw, stride_w, pad_w)
    y = np.empty((n, c, h_out, w_out), dtype=x.dtype)
    switches = np.empty((n, c, h_out, w_out), dtype=np.int64)
    planes = n * c
    args = (kh, kw, stride_h, stride_w, pad_h, pad_w)
    if _use_parallel(planes, planes * h_out * w_out * kh * kw):
        _max_pool_parallel(_planes(x), _planes(y), _planes(switches), *args)
    elif planes:
        _max_pool_planes(_planes(x), _planes(y), _planes(switches), 0, planes, *args)
    return y, switches


# -- scatter / gather by switches (max-pool backward, max-unpool and its backward) ------
@kernel
def _scatter_planes(values, switches, out, p0, p1):
    for p in range(p0, p1):
        for k in range(values.shape[1]):
            out[p, switches[p, k]] += values[p, k]


def scatter_switches(values: np.ndarray, switches: np.ndarray, h: int, w: int) -> np.ndarray:
    """Place (add) each value at its switch in a zero (N, C, h, w) array.

    This is max-pool's backward and max-unpool's forward. Where several switches are
    equal (overlapping windows) their values add up, which keeps it the exact adjoint
    of ``gather_switches``. Shapes: values, switches (N, C, h', w') -> (N, C, h, w).
    """
    n, c = values.shape[:2]
    planes = n * c
    out = np.zeros((n, c, h, w), dtype=values.dtype)
    length = values.shape[2] * values.shape[3]  # explicit: reshape(0, -1) is ambiguous
    flat_v = values.reshape(planes, length)
    flat_s = switches.reshape(planes, length)
    flat_o = out.reshape(planes, h * w)
    if planes:  # memory-bound: serial (see the module docstring)
        _scatter_planes(flat_v, flat_s, flat_o, 0, planes)
    return out


@kernel
def _gather_planes(x, switches, out, p0, p1):
    for p in range(p0, p1):
        for k in range(out.shape[1]):
            out[p, k] = x[p, switches[p, k]]


def gather_switches(x: np.ndarray, switches: np.ndarray) -> np.ndarray:
    """``x[n, c].flat[switches[n, c]]``: max-unpool's backward (adjoint of the scatter).

    Shapes: x (N, C, H, W), switches (N, C, h', w') -> (N, C, h', w').
    """
    n, c = switches.shape[:2]
    planes = n * c
    out = np.empty(switches.shape, dtype=x.dtype)
    length = switches.shape[2] * switches.shape[3]
    flat_x = x.reshape(planes, x.shape[2] * x.shape[3])
    flat_s = switches.reshape(planes, length)
    flat_o = out.reshape(planes, length)
    if planes:  # memory-bound: serial (see the module docstring)
        _gather_planes(flat_x, flat_s, flat_o, 0, planes)
    return out


# -- average pool ------------------------------------------------------------------------
@kernel
def _avg_extent(start, size, k, pad, lo, hi, count_include_pad):
    """Cells of a window along one axis that count in the divisor."""
    if count_include_pad:  # clipped to the padded input: always k in floor mode
        return min(start + k, size + pad) - start
    return hi - lo


@kernel
def _avg_pool_planes(x, y, p0, p1, kh, kw, stride_h, stride_w, pad_h, pad_w, count_include_pad):
    h, w = x.shape[1], x.shape[2]
    h_out, w_out = y.shape[1], y.shape[2]
    column_sums = np.empty(w, dtype=x.dtype)
    for p in range(p0, p1):
        xp, yp = x[p], y[p]
        for i in range(h_out):
            top = i * stride_h - pad_h
            a0, a1 = max(top, 0), min(top + kh, h)
            rows = _avg_extent(top, h, kh, pad_h, a0, a1, count_include_pad)
            # separable: add the window's rows once (contiguous, vectorised), then slide along them
            column_sums[:] = 0
            for a in range(a0, a1):
                xr = xp[a]
                for b in range(w):
                    column_sums[b] += xr[b]
            for j in range(w_out):
                left = j * stride_w - pad_w
                b0, b1 = max(left, 0), min(left + kw, w)
                cols = _avg_extent(left, w, kw, pad_w, b0, b1, count_include_pad)
                total = 0.0
                for b in range(b0, b1):
                    total += column_sums[b]
                yp[i, j] = total / (rows * cols)


@kernel
def _avg_pool_grad_planes(dy, dx, p0, p1, kh, kw, stride_h, stride_w, pad_h, pad_w, count_include_pad):
    h, w = dx.shape[1], dx.shape[2]
    h_out, w_out = dy.shape[1], dy.shape[2]
    row = np.empty(w, dtype=dx.dtype)
    for p in range(p0, p1):
        dyp, dxp = dy[p], dx[p]
        for i in range(h_out):
            top = i * stride_h - pad_h
            a0, a1 = max(top, 0), min(top + kh, h)
            rows = _avg_extent(top, h, kh, pad_h, a0, a1, count_include_pad)
            # the transpose of the forward: spread along the row, then add the row to each window row
            row[:] = 0
            for j in range(w_out):
                left = j * stride_w - pad_w
                b0, b1 = max(left, 0), min(left + kw, w)
                g = dyp[i, j] / (rows * _avg_extent(left, w, kw, pad_w, b0, b1, count_include_pad))
                for b in range(b0, b1):
                    row[b] += g
            for a in range(a0, a1):
                dxr = dxp[a]
                for b in range(w):
                    dxr[b] += row[b]


@parallel_kernel
def _avg_pool_parallel(src, dst, kh, kw, stride_h, stride_w, pad_h, pad_w, count_include_pad, backward):
    """Forward (x -> y) or backward (dy -> dx) over planes in parallel: one driver, so one
    parallel compilation (seconds each) serves both directions."""
    for p in prange(src.shape[0]):
        if backward:
            _avg_pool_grad_planes(src, dst, p, p + 1, kh, kw, stride_h, stride_w, pad_h, pad_w, count_include_pad)
        else:
            _avg_pool_planes(src, dst, p, p + 1, kh, kw, stride_h, stride_w, pad_h, pad_w, count_include_pad)


def avg_pool2d_forward(x: np.ndarray, kh: int, kw: int, stride_h: int, stride_w: int,
                       pad_h: int, pad_w: int, count_include_pad: bool) -> np.ndarray:
    """Average-pool a contiguous NCHW array. Shapes: (N, C, H, W) -> (N, C, h_out, w_out)."""
    n, c, h, w = x.shape
    h_out = pool_output_size(h, kh, stride_h, pad_h)
    w_out = pool_output_size(w, kw, stride_w, pad_w)
    y = np.empty((n, c, h_out, w_out), dtype=x.dtype)
    planes = n * c
    args = (kh, kw, stride_h, stride_w, pad_h, pad_w, bool(count_include_pad))
    if _use_parallel(planes, y.size * kh * kw):
        _avg_pool_parallel(_planes(x), _planes(y), *args, False)
    elif planes:
        _avg_pool_planes(_planes(x), _planes(y), 0, planes, *args)
    return y


def avg_pool2d_backward(dy: np.ndarray, h: int, w: int, kh: int, kw: int, stride_h: int,
                        stride_w: int, pad_h: int, pad_w: int, count_include_pad: bool) -> np.ndarray:
    """Input gradient of ``avg_pool2d_forward``. Shapes: dy (N, C, h_out, w_out) -> (N, C, h, w)."""
    n, c = dy.shape[:2]
    dx = np.zeros((n, c, h, w), dtype=dy.dtype)
    planes = n * c
    args = (kh, kw, stride_h, stride_w, pad_h, pad_w, bool(count_include_pad))
    if _use_parallel(planes, dy.size * kh * kw):
        _avg_pool_parallel(_planes(dy), _planes(dx), *args, True)
    elif planes:
        _avg_pool_grad_planes(_planes(dy), _planes(dx), 0, planes, *args)
    return dx
