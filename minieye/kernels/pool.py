"""Pooling and unpooling kernels on contiguous (N, C, *spatial) arrays, 1-, 2- and 3-D.

One kernel set serves every dimension: an input of 1, 2 or 3 spatial dims is viewed,
without copying, as ``P = N*C`` volumes ``(P, D, H, W)`` with the missing leading dims
of size 1 (1-D: ``(P, 1, 1, L)``, 2-D: ``(P, 1, H, W)``), and the window as
``(kd, kh, kw)`` with ``kd = 1, stride 1, pad 0`` on those dims. The flat index of a
cell ``(c, a, b)`` is ``(c*H + a)*W + b``, which is ``a*W + b`` for 2-D and ``b`` for
1-D: PyTorch's switches for every dimension, with no conversion. Geometry (PyTorch's)::

    out = (size + 2*pad - k) // stride + 1      per axis (floor mode; no ceil_mode)
    window o covers o*stride - pad + [0, k)     per axis

Max-pool with switches::

    y[p, o]        = max over the window of x[p, q]     (padding counts as -inf)
    switches[p, o] = flat index of that maximum q         (in the D*H*W volume)

Ties go to the first maximum in row-major window order (PyTorch's CPU rule: a later
value replaces the best only when strictly greater); a NaN in a window wins (the last
NaN), so NaNs propagate as in PyTorch. The kernel is separable: for each output row it
takes column maxima over the window's depth slices and rows (contiguous rows:
vectorised), then maxima of those over each window's columns, breaking ties by flat
index so that the result is exactly the row-major scan's.

Scatter and gather by switches are each other's adjoints::

    scatter(v, s)[p, k] = sum over {o: s[p, o] == k} of v[p, o]
    gather(u, s)[p, o]  = u[p, s[p, o]]
    <scatter(v, s), u> = <v, gather(u, s)>

so max-pool's backward is ``dx = scatter(dy, switches)``, max-unpool (Noh et al.'s
unpooling, DeconvNet) *is* that scatter, and max-unpool's backward is the gather.

Average pool: ``y[p, o] = sum over the window's in-bounds x / divisor``, the divisor
being ``kd*kh*kw`` (count_include_pad) or the number of in-bounds cells; its backward
spreads ``dy / divisor`` over the same cells. Window and divisor are separable: each
output row first adds its window's input rows (contiguous, vectorised), then sums
short runs of that row.

Work units: forward kernels run over units ``(p, o_d)`` (a volume and one output depth
slice, whose outputs no other unit writes); average pool's backward runs over
``(p, c)`` (a volume and one *input* depth slice, gathering the output slices whose
windows cover it), so that units never write the same cells. For 2-D and 1-D a unit
is a plane, as before; scatter and gather run over planes (a switch never leaves its
plane, so planes write disjoint cells). Each operation has a serial body over a range of
units (``@kernel``), split into one block per thread (``_threads.run_blocks``) when there
are several units and enough work to pay for waking the threads (``use_threads``); plain
threads rather than ``prange``, for the reason in ``_jit.py``. The scatter zeroes its output
plane by plane in the kernel (so that the zeroing is split over the threads too), not by
``np.zeros`` in a serial pass first.
Upsampling lives in ``kernels/upsample.py``. No validation happens here.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..options import get
from ._jit import kernel
from ._threads import run_blocks, thread_count

__all__ = [
    "pool_output_size",
    "max_pool_forward",
    "scatter_switches",
    "gather_switches",
    "avg_pool_forward",
    "avg_pool_backward",
    "output_shape",
]

Dims = tuple[int, ...]


def pool_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Output length along one axis: ``(size + 2*padding - kernel_size) // stride + 1``."""
    return (size + 2 * padding - kernel_size) // stride + 1


def use_threads(units: int, work: int, knob: str = "pool_parallel_min_work") -> bool:
    """Whether a call of ``units`` independent units and ``work`` inner-loop steps splits over threads.

    Below the ``knob`` (``pool_parallel_min_work``: about 0.3-1 ms of serial work) it runs
    serially: waking the threads costs tens of microseconds on an idle machine and far
    more on a busy one. One thread (the ``threads`` knob, else Numba's count) makes every call serial.
    """
    return units > 1 and work >= get(knob) and thread_count() > 1


def run_units(part: Callable[[int, int], None], units: int, work: int, knob: str = "pool_parallel_min_work") -> None:
    """``part(lo, hi)`` over the units ``[0, units)``: one block per thread where ``use_threads``
    says so, else one serial call (none for no units)."""
    if use_threads(units, work, knob):
        run_blocks(part, units)
    elif units:
        part(0, units)


def _volumes(a: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) with 1 to 3 spatial dims -> (N*C, D, H, W), a view of a contiguous array."""
    lead = (1,) * (5 - a.ndim)
    return a.reshape(a.shape[0] * a.shape[1], *lead, *a.shape[2:])


def _as3(dims: Dims, fill: int) -> tuple[int, int, int]:
    """A 1-3 entry geometry padded in front to (d, h, w) with ``fill`` (1 for kernels and
    strides, 0 for padding), as plain ints so that Numba sees one tuple type."""
    full = (fill,) * (3 - len(dims)) + tuple(int(v) for v in dims)
    return full[0], full[1], full[2]


def _geometry(kernel_size: Dims, stride: Dims, padding: Dims):
    return _as3(kernel_size, 1), _as3(stride, 1), _as3(padding, 0)


def output_shape(shape: tuple[int, ...], kernel_size: Dims, stride: Dims, padding: Dims) -> tuple[int, ...]:
    """(N, C, *spatial) -> (N, C, *pooled spatial)."""
    spatial = shape[2:]
    return (*shape[:2], *(pool_output_size(spatial[i], kernel_size[i], stride[i], padding[i])
                          for i in range(len(spatial))))


# -- max-pool --------------------------------------------------------------------------
@kernel
def _span(o, stride, k, pad, size):
    """Window ``o`` along one axis: its start ``o*stride - pad`` (negative in the padding) and
    its in-bounds cells ``[lo, hi)``."""
    start = o * stride - pad
    return start, max(start, 0), min(start + k, size)


@kernel
def _max_pool_units(x, y, switches, u0, u1, k, s, pad):
    kd, kh, kw = k
    sd, sh, sw = s
    pd, ph, pw = pad
    d, h, w = x.shape[1], x.shape[2], x.shape[3]
    d_out, h_out, w_out = y.shape[1], y.shape[2], y.shape[3]
    col_max = np.empty(w, dtype=x.dtype)
    col_arg = np.empty(w, dtype=np.int64)
    for u in range(u0, u1):
        p, o = u // d_out, u % d_out
        xp, yp, sp = x[p], y[p, o], switches[p, o]
        _, c0, c1 = _span(o, sd, kd, pd, d)
        for i in range(h_out):
            _, a0, a1 = _span(i, sh, kh, ph, h)
            # 1) down each column over the window's slices and rows (contiguous rows:
            #    vectorised); strictly greater keeps the first, a NaN replaces (the last NaN)
            first, base = xp[c0, a0], (c0 * h + a0) * w
            for b in range(w):
                col_max[b] = first[b]
                col_arg[b] = base + b
            for c in range(c0, c1):
                for a in range(a0 + 1 if c == c0 else a0, a1):  # the first row is in already
                    xr, base = xp[c, a], (c * h + a) * w
                    for b in range(w):
                        v = xr[b]
                        take = (v > col_max[b]) | (v != v)  # selects, not branches
                        col_max[b] = v if take else col_max[b]
                        col_arg[b] = base + b if take else col_arg[b]
            # 2) across the window's columns. Row-major order is flat-index order, so PyTorch's
            #    rules become: among equal maxima the smallest index, among NaNs the largest.
            for j in range(w_out):
                _, b0, b1 = _span(j, sw, kw, pw, w)
                best, arg = col_max[b0], col_arg[b0]
                for b in range(b0 + 1, b1):
                    v, idx = col_max[b], col_arg[b]
                    take = ((v > best) | ((v == best) & (idx < arg))
                            | ((v != v) & ((best == best) | (idx > arg))))
                    best = v if take else best
                    arg = idx if take else arg
                yp[i, j] = best
                sp[i, j] = arg


@kernel
def _max_pool_2x2_planes(x, y, switches, p0, p1):
    """The common 2x2 window, stride 2, no padding, on planes (P, H, W) -> (P, H // 2, W // 2).

    Each window is scanned in row-major order as PyTorch does (a later value replaces the best
    when greater, or when NaN), keeping which of the four won as a small code; the int64
    switches are written from the codes in a second, separate loop. Kept apart, both loops
    vectorise; one loop of mixed float and int64 selects did not (docs/pooling.md)."""
    w = x.shape[2]
    w_out = y.shape[2]
    code = np.empty(w_out, dtype=np.int32)
    for p in range(p0, p1):
        for i in range(y.shape[1]):
            top, bottom, yr, sr = x[p, 2 * i], x[p, 2 * i + 1], y[p, i], switches[p, i]
            for j in range(w_out):
                best, k = top[2 * j], np.int32(0)
                for v, at in ((top[2 * j + 1], np.int32(1)), (bottom[2 * j], np.int32(2)),
                              (bottom[2 * j + 1], np.int32(3))):
                    take = (v > best) | (v != v)  # selects, not branches
                    best = v if take else best
                    k = at if take else k
                yr[j] = best
                code[j] = k
            base = 2 * i * w
            for j in range(w_out):  # code 0-3: (row, column) (k >> 1, k & 1) of the window
                k = code[j]
                sr[j] = base + 2 * j + (k & 1) + (k >> 1) * w


def max_pool_forward(x: np.ndarray, kernel_size: Dims, stride: Dims, padding: Dims) -> tuple[np.ndarray, np.ndarray]:
    """Max-pool a contiguous (N, C, *spatial) array (1-3 spatial dims, one geometry entry each).

    Returns ``(y, switches)``, switches int64 flat indices into each input volume.
    Shapes: x (N, C, *spatial) -> y, switches (N, C, *pooled).
    """
    if x.ndim == 4 and tuple(kernel_size) == tuple(stride) == (2, 2) and tuple(padding) == (0, 0):
        return _max_pool_2x2(x)
    out = output_shape(x.shape, kernel_size, stride, padding)
    y = np.empty(out, dtype=x.dtype)
    switches = np.empty(out, dtype=np.int64)
    xv, yv, sv = _volumes(x), _volumes(y), _volumes(switches)
    units = yv.shape[0] * yv.shape[1]
    k, s, pad = _geometry(kernel_size, stride, padding)
    run_units(lambda u0, u1: _max_pool_units(xv, yv, sv, u0, u1, k, s, pad), units, y.size * k[0] * k[1] * k[2])
    return y, switches


def _max_pool_2x2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``max_pool_forward`` of the usual 2-D 2x2 window, stride 2 (its own short driver: on a
    small batch the general one's geometry handling cost more than the kernel)."""
    n, c, h, w = x.shape
    planes = n * c
    y = np.empty((n, c, h // 2, w // 2), dtype=x.dtype)
    switches = np.empty(y.shape, dtype=np.int64)
    xp, yp, sp = x.reshape(planes, h, w), y.reshape(planes, h // 2, w // 2), switches.reshape(planes, h // 2, w // 2)
    # work: one unit per window, which costs about what one read of the general kernel does
    run_units(lambda p0, p1: _max_pool_2x2_planes(xp, yp, sp, p0, p1), planes, y.size)
    return y, switches


# -- scatter / gather by switches (max-pool backward, max-unpool and its backward) ------
@kernel
def _scatter_planes(values, switches, out, p0, p1):
    for p in range(p0, p1):
        plane = out[p]
        plane[:] = 0
        for k in range(values.shape[1]):
            plane[switches[p, k]] += values[p, k]


def _flat(a: np.ndarray, planes: int) -> np.ndarray:
    """(N, C, ...) -> (N*C, prod(...)); explicit length, since reshape(0, -1) is ambiguous."""
    return a.reshape(planes, math.prod(a.shape[2:]))


def scatter_switches(values: np.ndarray, switches: np.ndarray, spatial: Dims) -> np.ndarray:
    """Place (add) each value at its switch in a zero (N, C, *spatial) array.

    This is max-pool's backward and max-unpool's forward. Where several switches are
    equal (overlapping windows) their values add up, which keeps it the exact adjoint
    of ``gather_switches``. Shapes: values, switches (N, C, *pooled) -> (N, C, *spatial).
    """
    n, c = values.shape[:2]
    out = np.empty((n, c, *spatial), dtype=values.dtype)  # the kernel zeroes each plane
    _by_planes(_scatter_planes, _flat(values, n * c), _flat(switches, n * c), _flat(out, n * c), out.size)
    return out


def _by_planes(body, source: np.ndarray, switches: np.ndarray, out: np.ndarray, cells: int) -> None:
    """``body(source, switches, out, p0, p1)`` over the planes (rows of these 2-D views), split
    over threads from the ``unpool_parallel_min_cells`` knob on (``cells``: of the unpooled array).
    Moving one value per switch is memory-bound, so threads pay only on large arrays."""
    run_units(lambda p0, p1: body(source, switches, out, p0, p1), out.shape[0], cells, "unpool_parallel_min_cells")


@kernel
def _gather_planes(x, switches, out, p0, p1):
    for p in range(p0, p1):
        for k in range(out.shape[1]):
            out[p, k] = x[p, switches[p, k]]


def gather_switches(x: np.ndarray, switches: np.ndarray) -> np.ndarray:
    """``x[n, c].flat[switches[n, c]]``: max-unpool's backward (adjoint of the scatter).

    Shapes: x (N, C, *spatial), switches (N, C, *pooled) -> (N, C, *pooled).
    """
    n, c = switches.shape[:2]
    out = np.empty(switches.shape, dtype=x.dtype)
    _by_planes(_gather_planes, _flat(x, n * c), _flat(switches, n * c), _flat(out, n * c), x.size)
    return out


# -- average pool ------------------------------------------------------------------------
@kernel
def _avg_extent(start, size, k, pad, lo, hi, count_include_pad):
    """Cells of a window along one axis that count in the divisor."""
    if count_include_pad:  # clipped to the padded input: always k in floor mode
        return min(start + k, size + pad) - start
    return hi - lo


@kernel
def _avg_pool_units(x, y, u0, u1, k, s, pad, count_include_pad):
    kd, kh, kw = k
    sd, sh, sw = s
    pd, ph, pw = pad
    d, h, w = x.shape[1], x.shape[2], x.shape[3]
    d_out, h_out, w_out = y.shape[1], y.shape[2], y.shape[3]
    column_sums = np.empty(w, dtype=x.dtype)
    for u in range(u0, u1):
        p, o = u // d_out, u % d_out
        xp, yp = x[p], y[p, o]
        front, c0, c1 = _span(o, sd, kd, pd, d)
        depth = _avg_extent(front, d, kd, pd, c0, c1, count_include_pad)
        for i in range(h_out):
            top, a0, a1 = _span(i, sh, kh, ph, h)
            rows = depth * _avg_extent(top, h, kh, ph, a0, a1, count_include_pad)
            # separable: add the window's rows once (contiguous, vectorised), then slide along them
            column_sums[:] = 0
            for c in range(c0, c1):
                for a in range(a0, a1):
                    xr = xp[c, a]
                    for b in range(w):
                        column_sums[b] += xr[b]
            for j in range(w_out):
                left, b0, b1 = _span(j, sw, kw, pw, w)
                cols = _avg_extent(left, w, kw, pw, b0, b1, count_include_pad)
                total = 0.0
                for b in range(b0, b1):
                    total += column_sums[b]
                yp[i, j] = total / (rows * cols)


@kernel
def _avg_pool_grad_units(dy, dx, u0, u1, k, s, pad, count_include_pad):
    kd, kh, kw = k
    sd, sh, sw = s
    pd, ph, pw = pad
    d, h, w = dx.shape[1], dx.shape[2], dx.shape[3]
    d_out, h_out, w_out = dy.shape[1], dy.shape[2], dy.shape[3]
    row = np.empty(w, dtype=dx.dtype)
    for u in range(u0, u1):
        p, c = u // d, u % d
        # output slices o whose window o*sd - pd + [0, kd) holds input slice c
        o0 = max(0, (c + pd - kd + sd) // sd)
        o1 = min(d_out, (c + pd) // sd + 1)
        if o0 >= o1:  # a slice between windows (stride > kernel): its gradient stays 0
            continue
        for i in range(h_out):
            top, a0, a1 = _span(i, sh, kh, ph, h)
            rows = _avg_extent(top, h, kh, ph, a0, a1, count_include_pad)
            # the transpose of the forward: spread each covering output row along the row,
            # then add the row to each of the window's input rows in slice c
            row[:] = 0
            for o in range(o0, o1):
                front, lo, hi = _span(o, sd, kd, pd, d)
                depth = _avg_extent(front, d, kd, pd, lo, hi, count_include_pad)
                dyr = dy[p, o, i]
                for j in range(w_out):
                    left, b0, b1 = _span(j, sw, kw, pw, w)
                    g = dyr[j] / (depth * rows * _avg_extent(left, w, kw, pw, b0, b1, count_include_pad))
                    for b in range(b0, b1):
                        row[b] += g
            for a in range(a0, a1):
                dxr = dx[p, c, a]
                for b in range(w):
                    dxr[b] += row[b]


def _run_avg(src: np.ndarray, dst: np.ndarray, kernel_size: Dims, stride: Dims, padding: Dims,
             count_include_pad: bool, backward: bool) -> None:
    """Fill ``dst`` from ``src`` (forward: x -> y; backward: dy -> dx) over (volume, slice) units."""
    srcv, dstv = _volumes(src), _volumes(dst)
    units = dstv.shape[0] * dstv.shape[1]
    k, s, pad = _geometry(kernel_size, stride, padding)
    args = (k, s, pad, bool(count_include_pad))
    body = _avg_pool_grad_units if backward else _avg_pool_units  # units: dst's (volume, slice) pairs
    run_units(lambda u0, u1: body(srcv, dstv, u0, u1, *args), units,
              (dst.size if not backward else src.size) * k[0] * k[1] * k[2])


def avg_pool_forward(x: np.ndarray, kernel_size: Dims, stride: Dims, padding: Dims,
                     count_include_pad: bool) -> np.ndarray:
    """Average-pool a contiguous (N, C, *spatial) array. Shapes: (N, C, *spatial) -> (N, C, *pooled)."""
    y = np.empty(output_shape(x.shape, kernel_size, stride, padding), dtype=x.dtype)
    _run_avg(x, y, kernel_size, stride, padding, count_include_pad, False)
    return y


def avg_pool_backward(dy: np.ndarray, spatial: Dims, kernel_size: Dims, stride: Dims, padding: Dims,
                      count_include_pad: bool) -> np.ndarray:
    """Input gradient of ``avg_pool_forward`` for an input of spatial shape ``spatial``.

    Shapes: dy (N, C, *pooled) -> (N, C, *spatial).
    """
    dx = np.zeros((*dy.shape[:2], *spatial), dtype=dy.dtype)
    _run_avg(dy, dx, kernel_size, stride, padding, count_include_pad, True)
    return dx
