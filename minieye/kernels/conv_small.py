"""Direct kernels for few input channels on small "same" planes: no unfolding, no BLAS, no cropping.

For a convolution at stride 1 whose output is as large as its input (``2*pad = dilation*(k - 1)`` per
axis, the digits layer's 3x3 with padding 1), take each input plane once per kernel column j, padded
with zero rows and shifted by ``s_j = j*d_w - pad_w`` columns, the pixels that a shift moves past a row's
edge set to zero (``masks``):

    xs[c, j][(r + pad_h)*w + b] = x[n, c, r, b + s_j]       (zero where b + s_j is outside the row)

Then tap (c, i, j) of every output ``q = a*w + b`` is one fixed offset, ``xs[c, j][q + i*d_h*w]``, and
each output plane is one contiguous run written in place:
``y[n, o] = bias[o] + sum_t w[o, t] * xs[tap t's run]``, nine taps per pass over the run (``_run9``: nine
loads and multiply-adds per vector; a long run vectorises where BLAS's per-sample products and the
copies around them cost more than their multiply-adds).

The input gradient runs the other way: per kernel row i, ``P[c, j][(a + i*d_h)*w + b] += sum_o
w[o, c, i, j] * dy[n, o, a, b]`` (runs over dy's planes, nine output channels per pass), then
``dx[n, c][q] = sum_j P[c, j][pad_h*w + q - s_j]`` where ``b - s_j`` stays inside the row. The weight
gradient is the dot products of dy's planes with the tap runs, four output channels by three taps per
pass over a plane.

Each call cuts the samples into ``CHUNKS`` chunks that its threads claim from an atomic counter as they
go, so a thread that starts late or runs on a busy core takes fewer; each thread has its own scratch, each
chunk its own weight- and bias-gradient sums (added in chunk order: the same result on any number of
threads). A batch of one image is cut into blocks of rows instead, which keep a large plane's passes in the
cache too. A layer's backward runs dx, dw and db in one pass over the samples (``backward``).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from ._atomic import fetch_add
from ._jit import kernel
from ._threads import run_parts
from .conv_geometry import Geometry
from .conv_layout import scratch

__all__ = ["backward", "forward", "grad_input", "grad_weight"]

GROUP = 9  # terms of one pass over a run (_run9)
CHUNKS = 16  # chunks of samples per call, claimed by the threads as they go (docs/kernels.md, "Ninth pass")


@kernel
def _run9(dst, d0, src, offs, s0, ws, length, init, add):
    """dst[d0 + q] = init + sum_u ws[u] * src[s0 + offs[u] + q] for q < length (``add``: += without init).
    Unsigned indices into two flat arrays: LLVM then vectorises without negative-index checks."""
    o0, o1, o2 = np.uint64(s0 + offs[0]), np.uint64(s0 + offs[1]), np.uint64(s0 + offs[2])
    o3, o4, o5 = np.uint64(s0 + offs[3]), np.uint64(s0 + offs[4]), np.uint64(s0 + offs[5])
    o6, o7, o8 = np.uint64(s0 + offs[6]), np.uint64(s0 + offs[7]), np.uint64(s0 + offs[8])
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6], ws[7], ws[8]
    d = np.uint64(d0)
    if add:  # two loops: a test inside one stopped LLVM from vectorising it
        for q in range(np.uint64(length)):
            dst[d + q] += ((w0 * src[o0 + q] + w1 * src[o1 + q] + w2 * src[o2 + q])
                           + (w3 * src[o3 + q] + w4 * src[o4 + q] + w5 * src[o5 + q])
                           + (w6 * src[o6 + q] + w7 * src[o7 + q] + w8 * src[o8 + q]))
    else:
        for q in range(np.uint64(length)):
            dst[d + q] = init + ((w0 * src[o0 + q] + w1 * src[o1 + q] + w2 * src[o2 + q])
                                 + (w3 * src[o3 + q] + w4 * src[o4 + q] + w5 * src[o5 + q])
                                 + (w6 * src[o6 + q] + w7 * src[o7 + q] + w8 * src[o8 + q]))


@kernel
def _run9x2(dst, d0, d1, src, offs, s0, ws, vs, length, init0, init1, add):
    """``_run9`` twice over the same nine source runs, with weights ws into dst[d0 ..] and vs into dst[d1 ..]
    (which must not overlap): each source vector is loaded once for both."""
    o0, o1, o2 = np.uint64(s0 + offs[0]), np.uint64(s0 + offs[1]), np.uint64(s0 + offs[2])
    o3, o4, o5 = np.uint64(s0 + offs[3]), np.uint64(s0 + offs[4]), np.uint64(s0 + offs[5])
    o6, o7, o8 = np.uint64(s0 + offs[6]), np.uint64(s0 + offs[7]), np.uint64(s0 + offs[8])
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6], ws[7], ws[8]
    v0, v1, v2, v3, v4, v5, v6, v7, v8 = vs[0], vs[1], vs[2], vs[3], vs[4], vs[5], vs[6], vs[7], vs[8]
    e0, e1 = np.uint64(d0), np.uint64(d1)
    if not add:
        for q in range(np.uint64(length)):
            a0, a1, a2 = src[o0 + q], src[o1 + q], src[o2 + q]
            a3, a4, a5 = src[o3 + q], src[o4 + q], src[o5 + q]
            a6, a7, a8 = src[o6 + q], src[o7 + q], src[o8 + q]
            dst[e0 + q] = init0 + ((w0 * a0 + w1 * a1 + w2 * a2) + (w3 * a3 + w4 * a4 + w5 * a5)
                                   + (w6 * a6 + w7 * a7 + w8 * a8))
            dst[e1 + q] = init1 + ((v0 * a0 + v1 * a1 + v2 * a2) + (v3 * a3 + v4 * a4 + v5 * a5)
                                   + (v6 * a6 + v7 * a7 + v8 * a8))
        return
    for q in range(np.uint64(length)):
        a0, a1, a2 = src[o0 + q], src[o1 + q], src[o2 + q]
        a3, a4, a5 = src[o3 + q], src[o4 + q], src[o5 + q]
        a6, a7, a8 = src[o6 + q], src[o7 + q], src[o8 + q]
        dst[e0 + q] += (w0 * a0 + w1 * a1 + w2 * a2) + (w3 * a3 + w4 * a4 + w5 * a5) + (w6 * a6 + w7 * a7 + w8 * a8)
        dst[e1 + q] += (v0 * a0 + v1 * a1 + v2 * a2) + (v3 * a3 + v4 * a4 + v5 * a5) + (v6 * a6 + v7 * a7 + v8 * a8)


@kernel
def _shifted_planes(x, n, xs, masks, shifts, top):
    """xs[c, j] = sample n's planes padded with ``top // w`` zero rows above and below, shifted by
    shifts[j] columns, zero where masks[j] is 0 (a select, not a product: an inf stays where it was)."""
    length = x.shape[2] * x.shape[3]
    for c in range(x.shape[1]):
        src = x[n, c].reshape(-1)
        for j in range(xs.shape[1]):
            dst = xs[c, j]
            s = shifts[j]
            # a shift of a whole plane or more (a 1-pixel-wide plane under a wide kernel) keeps nothing: clamp
            # so that lo <= hi, else the zeroing below would index from the end and leave scratch unset
            lo = min(length, max(0, -s))
            hi = max(lo, min(length, length - s))
            dst[:top + lo] = 0
            dst[top + hi:] = 0
            out, keep, shifted = dst[top + lo:top + hi], masks[j, lo:hi], src[lo + s:hi + s]
            for q in range(hi - lo):
                out[q] = shifted[q] if keep[q] else 0


@kernel
def _claim(counter, chunk, row_blocks, n, h):
    """The next unclaimed chunk: (its index, first and last sample, first and last row), ``chunk`` whole
    samples, or where ``row_blocks`` is not None one of that many blocks of rows of one sample; first == last
    when none is left."""
    k = fetch_add(counter, 0, 1)
    if row_blocks is None:  # whole samples (None: Numba compiles this case apart, without the rows' arithmetic)
        first = min(k * chunk, n)
        return k, first, min(first + chunk, n), 0, h
    first, b = min(k // row_blocks, n), k % row_blocks
    return k, first, min(first + 1, n), h * b // row_blocks, h * (b + 1) // row_blocks


@kernel
def _forward(x, wg, offs, bias, y, xs, masks, shifts, top, counter, chunk, row_blocks):
    """y[n] for the chunks this thread claims (``_claim``); wg (c_out, groups, 9) and offs (groups, 9): the
    taps' weights and runs in xs (zero weights pad the last group)."""
    n_all, c_out, h, w = y.shape
    length = h * w
    flat_y, flat_xs = y.reshape(-1), xs.reshape(-1)
    built = -1  # the sample whose shifted planes xs holds
    while True:
        _, first, last, r0, r1 = _claim(counter, chunk, row_blocks, n_all, h)
        if first >= last:
            return
        s0, run = r0 * w, (r1 - r0) * w
        for n in range(first, last):
            if n != built:
                _shifted_planes(x, n, xs, masks, shifts, top)
                built = n
            for g in range(offs.shape[0]):
                for o in range(0, c_out - 1, 2):  # two output channels per pass: one load of the taps for both
                    d = (n * c_out + o) * length + s0
                    _run9x2(flat_y, d, d + length, flat_xs, offs[g], s0, wg[o, g], wg[o + 1, g], run, bias[o],
                            bias[o + 1], g > 0)
                if c_out % 2:
                    _run9(flat_y, (n * c_out + c_out - 1) * length + s0, flat_xs, offs[g], s0, wg[c_out - 1, g],
                          run, bias[c_out - 1], g > 0)


@kernel
def _add3(dw, o, t, a, b, c):
    dw[o, t] += a
    dw[o, t + 1] += b
    dw[o, t + 2] += c


@kernel
def _dots43(dw, o0, d, xs, t0, offs, length, s0, span, zero):
    """dw[o0:o0 + 4, t0:t0 + 3] += dots of dy's planes o0.. (d, flat; planes ``length`` apart) with the tap
    runs t0.. of xs, over ``span`` positions from s0: twelve sums that stay in registers over one pass."""
    a0, a1 = np.uint64(o0 * length + s0), np.uint64((o0 + 1) * length + s0)
    a2, a3 = np.uint64((o0 + 2) * length + s0), np.uint64((o0 + 3) * length + s0)
    b0, b1, b2 = np.uint64(offs[t0] + s0), np.uint64(offs[t0 + 1] + s0), np.uint64(offs[t0 + 2] + s0)
    s00 = s01 = s02 = s10 = s11 = s12 = s20 = s21 = s22 = s30 = s31 = s32 = zero
    for q in range(np.uint64(span)):
        u0, u1, u2 = xs[b0 + q], xs[b1 + q], xs[b2 + q]
        v0, v1, v2, v3 = d[a0 + q], d[a1 + q], d[a2 + q], d[a3 + q]
        s00, s01, s02 = s00 + v0 * u0, s01 + v0 * u1, s02 + v0 * u2
        s10, s11, s12 = s10 + v1 * u0, s11 + v1 * u1, s12 + v1 * u2
        s20, s21, s22 = s20 + v2 * u0, s21 + v2 * u1, s22 + v2 * u2
        s30, s31, s32 = s30 + v3 * u0, s31 + v3 * u1, s32 + v3 * u2
    _add3(dw, o0, t0, s00, s01, s02)
    _add3(dw, o0 + 1, t0, s10, s11, s12)
    _add3(dw, o0 + 2, t0, s20, s21, s22)
    _add3(dw, o0 + 3, t0, s30, s31, s32)


@kernel
def _backward(x, dy, dw, offs, xs, fmask, shifts, top, wg, sources, dsts, leads, dx, planes, bmask, top_p, counter,
              chunk, row_blocks, zero, need_dw, need_dx, need_db):
    """The chunks this thread claims (``_claim``), one sample at a time (dy[n] is read from the cache the
    second time), over the chunk's rows r0 <= a < r1:

    - ``need_dw``: dw[k, :, :taps] = chunk k's dots of dy's planes with the tap runs (offs: each tap's
      run in xs), summed in a local array written once (threads share no cache line while they run);
      whichever thread claims a chunk, its sum is the same; ``need_db``: dw[k, :, taps] = the planes' sums;
    - ``need_dx``: dx[n]. Group g adds sum_u wg[g, u] * dy[n].flat[sources[g, u] + q] onto
      planes.flat[dsts[g] + q]; then dx[n, c][q] = sum_j planes[c, j][top_p + q - shifts[j]] where bmask[j].
      The chunk's rows of dx read q = dy's q' - leads[g] of group g: its run is cut to those.

    The loops stay in this one function: per-sample helper calls measured slower (their arrays' reference
    counts; docs/kernels.md, "Ninth pass")."""
    c_out, taps = dw.shape[1], dw.shape[2] - 1
    n_all, h, w = dy.shape[0], dy.shape[2], dy.shape[3]
    length = h * w
    flat_xs, flat_p = xs.reshape(-1), planes.reshape(-1)
    blocked_o, blocked_t = c_out - c_out % 4, taps - taps % 3
    acc = np.zeros((c_out, taps + 1), dtype=dw.dtype)
    built = -1  # the sample whose shifted planes xs holds
    while True:
        k, first, last, r0, r1 = _claim(counter, chunk, row_blocks, n_all, h)
        if first >= last:
            return
        s0, span = r0 * w, (r1 - r0) * w
        acc[:, :] = 0
        for n in range(first, last):
            d = dy[n].reshape(-1)
            if need_db:
                for o in range(c_out):
                    run, s = d[o * length + s0:o * length + s0 + span], zero
                    for q in range(span):  # from 0: no negative-index test, so LLVM vectorises it
                        s += run[q]
                    acc[o, taps] += s
            if need_dw:
                if n != built:
                    _shifted_planes(x, n, xs, fmask, shifts, top)
                    built = n
                for o in range(0, blocked_o, 4):
                    for t in range(0, blocked_t, 3):
                        _dots43(acc, o, d, flat_xs, t, offs, length, s0, span, zero)
                for o in range(c_out):  # the channels and taps outside the 4x3 blocks, one dot each
                    for t in range(blocked_t if o < blocked_o else 0, taps):
                        run = d[o * length + s0:o * length + s0 + span]
                        taps_run = flat_xs[offs[t] + s0:offs[t] + s0 + span]
                        s = zero
                        for q in range(span):
                            s += run[q] * taps_run[q]
                        acc[o, t] += s
            if need_dx:
                # a whole plane: whole runs (a plane's length, a multiple of the vector more often than a cut run)
                if span == length:
                    planes[:, :, :] = 0
                for c in range(planes.shape[0] if span < length else 0):
                    for j in range(planes.shape[1]):
                        planes[c, j, top_p - shifts[j] + s0:top_p - shifts[j] + s0 + span] = 0
                for g in range(sources.shape[0]):
                    lo, hi = 0, length
                    if span < length:
                        lo, hi = max(0, s0 + leads[g]), min(length, s0 + span + leads[g])
                    if hi > lo:
                        _run9(flat_p, dsts[g] + lo, d, sources[g], lo, wg[g], hi - lo, wg[g, 0], True)
                for c in range(dx.shape[1]):
                    out = dx[n, c].reshape(-1)[s0:s0 + span]
                    for j in range(planes.shape[1]):
                        keep = bmask[j, s0:s0 + span]
                        p = planes[c, j][top_p - shifts[j] + s0:top_p - shifts[j] + s0 + span]
                        if j == 0:
                            for q in range(span):
                                out[q] = p[q] if keep[q] else 0
                        else:
                            for q in range(span):
                                out[q] += p[q] if keep[q] else 0
        if need_dw or need_db:
            dw[k] = acc


# -- entry points (called by kernels.conv with the plan's thread count) -------------------------------------
class _Layout(NamedTuple):
    """One shape's offsets and masks (cached and shared between calls: never modified)."""

    shifts: np.ndarray    # (kw,) columns each kernel column's copy is shifted by, j*d_w - pad_w
    fmask: np.ndarray     # (kw, h*w) uint8: the forward's pixels that a shift keeps inside their row
    bmask: np.ndarray     # (kw, h*w) uint8: the same for the input gradient's shift back
    span: int             # a padded plane's length, (h + 2*pad_h)*w
    top: int              # where its image starts, pad_h*w
    offs: np.ndarray      # (groups, 9): each tap's run in the shifted copies, zero-weight slots padding the last
    dx_channels: np.ndarray  # (dx groups, 9): the output channels of each input-gradient group (0 where unused)
    dx_taps: np.ndarray   # (dx groups, 9): the tap (c, i, j) of each group, repeated
    dx_used: np.ndarray   # (dx groups, 9) bool: the slots that hold an output channel
    dx_dsts: np.ndarray   # (dx groups,): where each group's run lands in the planes P
    dx_leads: np.ndarray  # (dx groups,): dy's position minus dx's for each group's terms
    plane: int            # length of one plane P, with a margin of max |shift| on each side
    margin: int


@functools.lru_cache(maxsize=64)
def _layout(c_in: int, c_out: int, hw: tuple[int, int], kernel_hw: tuple[int, int], geometry: Geometry) -> _Layout:
    (h, w), (kh, kw) = hw, kernel_hw
    pad_h, dil_h, dil_w, pad_w = geometry.pad_h, geometry.dilation_h, geometry.dilation_w, geometry.pad_w
    length, span = h * w, (h + 2 * pad_h) * w
    shifts = np.array([j * dil_w - pad_w for j in range(kw)], dtype=np.int64)
    column = np.arange(length) % w
    fmask = ((column + shifts[:, None] >= 0) & (column + shifts[:, None] < w)).astype(np.uint8)
    bmask = ((column - shifts[:, None] >= 0) & (column - shifts[:, None] < w)).astype(np.uint8)
    taps = c_in * kh * kw
    c, i, j = np.unravel_index(np.arange(taps), (c_in, kh, kw))
    groups = -(-taps // GROUP)
    offs = np.zeros(groups * GROUP, dtype=np.int64)
    offs[:taps] = (c * kw + j) * span + i * dil_h * w
    # the input gradient: per (c, j, i) the output channels in groups of 9 onto planes[c, j] (a margin of
    # max |s_j| columns on each side, so that the combination's reads stay inside)
    margin = int(np.abs(shifts).max())
    plane = span + 2 * margin
    rows = [(cc, ii, jj, k) for cc in range(c_in) for jj in range(kw) for ii in range(kh)
            for k in range(-(-c_out // GROUP))]
    channels = np.array([[k * GROUP + u for u in range(GROUP)] for (_, _, _, k) in rows], dtype=np.int64)
    used = channels < c_out
    tap_of = np.array([[(cc * kh + ii) * kw + jj] * GROUP for (cc, ii, jj, _) in rows], dtype=np.int64)
    dsts = np.array([(cc * kw + jj) * plane + margin + ii * dil_h * w for (cc, ii, jj, _) in rows], dtype=np.int64)
    leads = np.array([(pad_h - ii * dil_h) * w - shifts[jj] for (_, ii, jj, _) in rows], dtype=np.int64)
    return _Layout(shifts, fmask, bmask, span, pad_h * w, offs.reshape(groups, GROUP), np.where(used, channels, 0),
                   tap_of, used, dsts, leads, plane, margin)


class _Chunks(NamedTuple):
    """How one call's work is cut: ``count`` chunks of ``size`` whole samples each or, for one image, of one
    of ``row_blocks`` blocks of its rows; the threads to run (no more than chunks) and their counter (element 0
    of 64 bytes, fresh per call; not aligned to a cache line). The chunks do not depend on the thread count, so
    neither do the sums."""

    size: int
    row_blocks: int | None
    count: int
    threads: int
    counter: np.ndarray


def _chunks(n: int, h: int, threads: int) -> _Chunks:
    size = max(1, -(-n // CHUNKS))
    row_blocks = min(h, CHUNKS) if n == 1 else None
    count = (-(-n // size) if row_blocks is None else row_blocks) if n else 0
    return _Chunks(size, row_blocks, count, max(1, min(threads, count)), np.zeros(8, dtype=np.int64))


def forward(x: np.ndarray, w: np.ndarray, geometry: Geometry, bias: np.ndarray, threads: int,
            out: np.ndarray | None = None) -> np.ndarray:
    """y = conv2d(x, w) + bias for a geometry where ``conv_plan.small_fits``, into ``out`` (checked by the
    caller) or a new array. Shapes: x (n, c_in, h, w),
    w (c_out, c_in, kh, kw), bias (c_out,) -> (n, c_out, h, w)."""
    n, c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    lay = _layout(c_in, c_out, (h, wd), (kh, kw), geometry)
    wg = np.zeros((c_out, lay.offs.size), dtype=x.dtype)
    wg[:, :c_in * kh * kw] = w.reshape(c_out, c_in * kh * kw)
    wg = wg.reshape(c_out, lay.offs.shape[0], GROUP)
    y = np.empty((n, c_out, h, wd), dtype=x.dtype) if out is None else out
    cut = _chunks(n, h, threads)  # one image: its threads take blocks of rows, each with its own shifted planes
    xs = [scratch(f"small_xs{i}", (c_in, kw, lay.span), x.dtype) for i in range(cut.threads)]
    run_parts(lambda i: _forward(x, wg, lay.offs, bias, y, xs[i], lay.fmask, lay.shifts, lay.top, cut.counter,
                                 cut.size, cut.row_blocks), cut.threads)
    return y


def backward(x: np.ndarray | None, dy: np.ndarray, w: np.ndarray | None, kernel_hw: tuple[int, int],
             geometry: Geometry, threads: int, out: np.ndarray | None = None, need_db: bool = False
             ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(dx, dw, db) of a convolution where ``conv_plan.small_fits``, in one pass over the samples shared by
    ``threads``: dx = conv_transpose2d(dy, w) unless w is None (into ``out``, checked by the caller, or a new
    array), dw of sum(dy * conv2d(x, w)) unless x is None, db = dy summed over all but its channel axis where
    ``need_db``. Shapes: x (n, c_in, h, w), dy (n, c_out, h, w), w (c_out, c_in, kh, kw) -> dx like x,
    dw (c_out, c_in, kh, kw), db (c_out,)."""
    n, c_out, h, wd = dy.shape
    (kh, kw), need_dw, need_dx = kernel_hw, x is not None, w is not None
    c_in = x.shape[1] if need_dw else w.shape[1]
    lay = _layout(c_in, c_out, (h, wd), (kh, kw), geometry)
    if need_dx:
        wg = np.where(lay.dx_used, w.reshape(c_out, c_in * kh * kw)[lay.dx_channels, lay.dx_taps], 0).astype(dy.dtype)
        dx = np.empty((n, c_in, h, wd), dtype=dy.dtype) if out is None else out
    else:  # placeholders of the kernel's types, never read
        wg, dx = np.zeros(lay.dx_channels.shape, dtype=dy.dtype), np.empty((0, 1, 1, 1), dtype=dy.dtype)
    cut = _chunks(n, h, threads)
    taps, parts = c_in * kh * kw, cut.threads
    sums = np.zeros((max(cut.count, 1), c_out, taps + 1), dtype=dy.dtype)  # each chunk's dw and db (none: 0)
    xs = [scratch(f"small_xs{i}", (c_in, kw, lay.span) if need_dw else (1, 1, 1), dy.dtype) for i in range(parts)]
    planes = [scratch(f"small_p{i}", (c_in, kw, lay.plane) if need_dx else (1, 1, 1), dy.dtype) for i in range(parts)]
    sources, zero = lay.dx_channels * (h * wd), dy.dtype.type(0)
    run_parts(lambda i: _backward(x if need_dw else dy, dy, sums, lay.offs.reshape(-1), xs[i], lay.fmask,
                                  lay.shifts, lay.top, wg, sources, lay.dx_dsts, lay.dx_leads, dx, planes[i],
                                  lay.bmask, lay.top + lay.margin, cut.counter, cut.size, cut.row_blocks, zero,
                                  need_dw, need_dx, need_db), parts)
    total = sums[0] if len(sums) == 1 else sums.sum(axis=0)
    return ((dx if need_dx else None), (np.ascontiguousarray(total[:, :taps]).reshape(c_out, c_in, kh, kw)
                                        if need_dw else None), (total[:, taps].copy() if need_db else None))


def grad_input(dy: np.ndarray, w: np.ndarray, geometry: Geometry, threads: int,
               out: np.ndarray | None = None) -> np.ndarray:
    """dx = conv_transpose2d(dy, w) (``backward``'s dx alone). Shapes: dy (n, c_out, h, w),
    w (c_out, c_in, kh, kw) -> (n, c_in, h, w)."""
    return backward(None, dy, w, tuple(w.shape[2:]), geometry, threads, out)[0]


def grad_weight(x: np.ndarray, dy: np.ndarray, kernel_hw: tuple[int, int], geometry: Geometry,
                threads: int) -> np.ndarray:
    """dw of sum(dy * conv2d(x, w)) (``backward``'s dw alone). Shapes: x (n, c_in, h, w),
    dy (n, c_out, h, w) -> (c_out, c_in, kh, kw)."""
    return backward(x, dy, None, kernel_hw, geometry, threads)[1]
