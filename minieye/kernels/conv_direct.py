"""Direct convolution loops, for few channels per group (deblurring, depthwise, digits).

Same maths as ``kernels/conv.py``'s docstring. Stride 1 (the usual case) runs on
zero-padded "wide" planes (``conv_wide``): every kernel tap is one long contiguous
multiply-add, and the input gradient is the forward of the flipped kernel. Other
strides use the row kernels here, whose innermost loop runs along an image row with
the valid column range of each tap computed once instead of testing the padding per
pixel.

The ``if stride_w == 1`` branches repeat their loop on purpose: a unit-step slice is a
contiguous array to Numba, so LLVM vectorises the multiply-add; the strided slice of
the other branch is not, and would slow the common case if it served both.

Work is split into independent tasks, so threads need no locks:

- forward:      one task per (sample, output channel, block of output rows);
- grad_input:   one task per (sample, input channel, block of input rows), gathering
                from dy (each input row knows which output rows and taps reach it);
- grad_weight:  one task per (output channel, input channel of its group, block of
                (sample, output row) pairs), each writing its own partial ``dw[kh, kw]``
                that the driver sums.

Task ranges run on ``_threads.run_parts`` over the call's ``Plan.threads`` (1 below the
work threshold: a hand-off costs tens of microseconds, more than a digit-sized
convolution); the plan also says which of the paths above runs.
"""
from __future__ import annotations

import numpy as np

from . import conv_wide
from ._jit import kernel
from ._threads import run_blocks
from .conv_geometry import conv_output_size
from .conv_layout import scratch
from .conv_plan import Plan


@kernel
def valid_range(n_out: int, n_in: int, offset: int, stride: int) -> tuple:
    """Output indices o in [lo, hi) with 0 <= o*stride + offset < n_in."""
    lo = (-offset + stride - 1) // stride if offset < 0 else 0
    last = n_in - 1 - offset
    hi = last // stride + 1 if last >= 0 else 0
    lo = min(lo, n_out)
    hi = max(lo, min(hi, n_out))
    return lo, hi


@kernel
def _forward_task(x, w, y, t, n_blocks, block, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    n_img, c_in, h, w_in = x.shape
    _, c_out, h_out, w_out = y.shape
    c_in_g, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    c_out_g = c_out // (c_in // c_in_g)
    plane = t // n_blocks
    n = plane // c_out
    o = plane % c_out
    c0 = (o // c_out_g) * c_in_g
    oh0 = (t % n_blocks) * block
    oh1 = min(h_out, oh0 + block)
    for oh in range(oh0, oh1):
        dst = y[n, o, oh]
        dst[:] = 0
        for cc in range(c_in_g):
            for i in range(kh):
                ih = oh * stride_h - pad_h + i * dil_h
                if ih < 0 or ih >= h:
                    continue
                src = x[n, c0 + cc, ih]
                for j in range(kw):
                    off = j * dil_w - pad_w
                    lo, hi = valid_range(w_out, w_in, off, stride_w)
                    wv = w[o, cc, i, j]
                    if stride_w == 1:
                        d = dst[lo:hi]
                        sl = src[lo + off:hi + off]
                        for q in range(hi - lo):
                            d[q] += wv * sl[q]
                    else:
                        d = dst[lo:hi]
                        sl = src[lo * stride_w + off:(hi - 1) * stride_w + off + 1:stride_w]
                        for q in range(hi - lo):
                            d[q] += wv * sl[q]


@kernel
def _grad_input_task(dy, w, dx, t, n_blocks, block, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    n_img, c_out, h_out, w_out = dy.shape
    _, c_in, h, w_in = dx.shape
    c_in_g, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    c_out_g = c_out // (c_in // c_in_g)
    plane = t // n_blocks
    n = plane // c_in
    c = plane % c_in
    cc = c % c_in_g
    o0 = (c // c_in_g) * c_out_g
    ih0 = (t % n_blocks) * block
    ih1 = min(h, ih0 + block)
    for ih in range(ih0, ih1):
        dst = dx[n, c, ih]
        dst[:] = 0
        for i in range(kh):
            r = ih + pad_h - i * dil_h  # = oh * stride_h for the output row this tap reads from
            if r < 0 or r % stride_h != 0 or r // stride_h >= h_out:
                continue
            oh = r // stride_h
            for oo in range(c_out_g):
                src = dy[n, o0 + oo, oh]
                for j in range(kw):
                    off = j * dil_w - pad_w
                    lo, hi = valid_range(w_out, w_in, off, stride_w)
                    wv = w[o0 + oo, cc, i, j]
                    if stride_w == 1:
                        d = dst[lo + off:hi + off]
                        sl = src[lo:hi]
                        for q in range(hi - lo):
                            d[q] += wv * sl[q]
                    else:
                        d = dst[lo * stride_w + off:(hi - 1) * stride_w + off + 1:stride_w]
                        sl = src[lo:hi]
                        for q in range(hi - lo):
                            d[q] += wv * sl[q]


@kernel
def _grad_weight_task(x, dy, partial, t, n_blocks, block, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    n_img, c_in, h, w_in = x.shape
    _, c_out, h_out, w_out = dy.shape
    c_in_g, kh, kw = partial.shape[2], partial.shape[3], partial.shape[4]
    c_out_g = c_out // (c_in // c_in_g)
    pair = t // n_blocks
    o = pair // c_in_g
    cc = pair % c_in_g
    c = (o // c_out_g) * c_in_g + cc
    r0 = (t % n_blocks) * block
    r1 = min(n_img * h_out, r0 + block)
    acc = partial[t % n_blocks, o, cc]
    acc[:, :] = 0
    for r in range(r0, r1):  # r runs over (sample, output row) pairs
        n = r // h_out
        oh = r % h_out
        g = dy[n, o, oh]
        for i in range(kh):
            ih = oh * stride_h - pad_h + i * dil_h
            if ih < 0 or ih >= h:
                continue
            src = x[n, c, ih]
            for j in range(kw):
                off = j * dil_w - pad_w
                lo, hi = valid_range(w_out, w_in, off, stride_w)
                s = acc[i, j] * 0
                if stride_w == 1:
                    gl = g[lo:hi]
                    sl = src[lo + off:hi + off]
                    for q in range(hi - lo):
                        s += gl[q] * sl[q]
                else:
                    gl = g[lo:hi]
                    sl = src[lo * stride_w + off:(hi - 1) * stride_w + off + 1:stride_w]
                    for q in range(hi - lo):
                        s += gl[q] * sl[q]
                acc[i, j] += s


@kernel
def _forward_tasks(x, w, y, t0, t1, n_blocks, block, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    for t in range(t0, t1):
        _forward_task(x, w, y, t, n_blocks, block, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w)


@kernel
def _grad_input_tasks(dy, w, dx, t0, t1, n_blocks, block, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    for t in range(t0, t1):
        _grad_input_task(dy, w, dx, t, n_blocks, block, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w)


@kernel
def _grad_weight_tasks(x, dy, partial, t0, t1, n_blocks, block, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    for t in range(t0, t1):
        _grad_weight_task(x, dy, partial, t, n_blocks, block, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w)


def _run(tasks_kernel, arrays: tuple, n_tasks: int, threads: int, rest: tuple) -> None:
    """``tasks_kernel(*arrays, t0, t1, *rest)`` over tasks [0, n_tasks), split over ``threads``."""
    run_blocks(lambda t0, t1: tasks_kernel(*arrays, t0, t1, *rest), n_tasks, threads)


def _blocks(rows: int, planes: int, threads: int) -> tuple[int, int]:
    """(row blocks per plane, rows per block): enough tasks to balance the threads."""
    if threads <= 1:
        return 1, max(rows, 1)
    wanted = 4 * threads
    n_blocks = max(1, min(rows, -(-wanted // planes)))
    block = -(-rows // n_blocks)
    return -(-rows // block), block


def _pad_planes(x: np.ndarray, top: int, bottom: int, left: int, right: int, slack: int) -> np.ndarray:
    """x zero-padded on each side (a negative amount crops) and flattened per plane, plus
    ``slack`` trailing zeros, in this thread's scratch (valid until the next call: the callers use
    it within the call). Shapes: (n, c, h, w) -> (n, c, (h+top+bottom)*(w+left+right) + slack)."""
    n, c, h, w = x.shape
    hp, wp = h + top + bottom, w + left + right
    xp = scratch("direct_pad", (n, c, hp * wp + slack), x.dtype)  # fresh arrays: page faults at every call
    xp[:, :, hp * wp:] = 0
    inside = xp[:, :, :hp * wp].reshape(n, c, hp, wp)
    rows, cols = slice(max(top, 0), hp - max(bottom, 0)), slice(max(left, 0), wp - max(right, 0))
    inside[:, :, :rows.start] = 0  # the zero border only: the rest is overwritten by x
    inside[:, :, rows.stop:] = 0
    inside[:, :, rows, :cols.start] = 0
    inside[:, :, rows, cols.stop:] = 0
    inside[:, :, rows, cols] = x[:, :, max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]
    return xp


def _wide_forward(x: np.ndarray, w: np.ndarray, pads: tuple[int, int, int, int], dilation_h: int,
                  dilation_w: int, plan: Plan, bias: np.ndarray | None = None,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Stride-1 convolution with padding (top, bottom, left, right), plus bias (c_out,) if given, into
    ``out`` (checked by the caller) or a new array. Tasks of ``plan.wide_tile`` output pixels keep the
    accumulator in the L1 cache."""
    n, c_in, h, w_in = x.shape
    c_out, c_in_g, kh, kw = w.shape
    top, bottom, left, right = pads
    xp = _pad_planes(x, top, bottom, left, right, (kw - 1) * dilation_w)
    hp, wp = h + top + bottom, w_in + left + right
    h_out, w_out = hp - dilation_h * (kh - 1), wp - dilation_w * (kw - 1)
    yw = np.empty((n, c_out, h_out * wp), dtype=x.dtype)
    tile_rows = max(1, min(h_out, plan.wide_tile // wp))
    n_tiles = -(-h_out // tile_rows)
    _run(conv_wide.forward_tasks, (xp, w, yw), n * c_out * n_tiles, plan.threads,
         (n_tiles, tile_rows, wp, dilation_h, dilation_w))
    wide = yw.reshape(n, c_out, h_out, wp)[..., :w_out]
    if bias is None and out is None:
        return np.ascontiguousarray(wide)
    y = np.empty((n, c_out, h_out, w_out), dtype=x.dtype) if out is None else out
    if bias is None:
        np.copyto(y, wide)
    else:
        np.add(wide, bias.astype(x.dtype, copy=False)[None, :, None, None], out=y)  # crop and bias in one pass
    return y


def flip_transposed(w: np.ndarray, groups: int) -> np.ndarray:
    """The weight of the convolution that computes dx from dy (stride 1): kernels flipped,
    (c_out, c_in/g) roles swapped within each group. Shapes: (c_out, c_in/g, kh, kw) -> (c_in, c_out/g, kh, kw)."""
    c_out, c_in_g, kh, kw = w.shape
    c_out_g = c_out // groups
    swapped = w.reshape(groups, c_out_g, c_in_g, kh, kw).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    return np.ascontiguousarray(swapped.reshape(groups * c_in_g, c_out_g, kh, kw))


def forward(x: np.ndarray, w: np.ndarray, geometry, plan: Plan, bias: np.ndarray | None = None,
            out: np.ndarray | None = None) -> np.ndarray:
    """conv2d (+ bias), into ``out`` (checked by the caller) or a new array. Shapes: x (n, c_in, h, w),
    w (c_out, c_in/g, kh, kw), bias (c_out,) or None -> (n, c_out, h_out, w_out)."""
    if plan.wide:
        pads = (geometry.pad_h, geometry.pad_h, geometry.pad_w, geometry.pad_w)
        return _wide_forward(x, w, pads, geometry.dilation_h, geometry.dilation_w, plan, bias, out)
    n, c_in, h, w_in = x.shape
    c_out, c_in_g, kh, kw = w.shape
    h_out = conv_output_size(h, kh, geometry.stride_h, geometry.pad_h, geometry.dilation_h)
    w_out = conv_output_size(w_in, kw, geometry.stride_w, geometry.pad_w, geometry.dilation_w)
    y = np.empty((n, c_out, h_out, w_out), dtype=x.dtype) if out is None else out
    n_blocks, block = _blocks(h_out, n * c_out, plan.threads)
    _run(_forward_tasks, (x, w, y), n * c_out * n_blocks, plan.threads, (n_blocks, block, *geometry.args()))
    if bias is not None:
        y += bias.astype(x.dtype, copy=False)[None, :, None, None]
    return y


def grad_input(dy: np.ndarray, w: np.ndarray, input_hw: tuple[int, int], geometry, plan: Plan,
               out: np.ndarray | None = None) -> np.ndarray:
    """dx = conv2d's adjoint applied to dy, into ``out`` (checked by the caller) or a new array.
    Shapes: dy (n, c_out, h_out, w_out) -> (n, c_in, *input_hw)."""
    n, c_out, h_out, w_out = dy.shape
    _, c_in_g, kh, kw = w.shape
    if plan.wide:
        # dx[r] = sum_i w[i] dy[r + pad - i*d]: a convolution of dy padded in front by
        # P = d*(k-1) - pad with the flipped kernel (r + pad - i*d = r - P + i'*d, i' = k-1-i);
        # the back padding makes the output height dy.shape[2] + top + bottom - d*(k-1)
        # come out as input_hw[0] (it differs from P by the output_padding).
        top = geometry.dilation_h * (kh - 1) - geometry.pad_h
        left = geometry.dilation_w * (kw - 1) - geometry.pad_w
        bottom = input_hw[0] - h_out - top + geometry.dilation_h * (kh - 1)
        right = input_hw[1] - w_out - left + geometry.dilation_w * (kw - 1)
        return _wide_forward(dy, flip_transposed(w, geometry.groups), (top, bottom, left, right),
                             geometry.dilation_h, geometry.dilation_w, plan, out=out)
    c_in = c_in_g * geometry.groups
    h, w_in = input_hw
    dx = np.empty((n, c_in, h, w_in), dtype=dy.dtype) if out is None else out
    n_blocks, block = _blocks(h, n * c_in, plan.threads)
    _run(_grad_input_tasks, (dy, w, dx), n * c_in * n_blocks, plan.threads, (n_blocks, block, *geometry.args()))
    return dx


def grad_weight(x: np.ndarray, dy: np.ndarray, kernel_hw: tuple[int, int], geometry, plan: Plan) -> np.ndarray:
    """dw of sum(dy * conv2d(x, w)).

    Shapes: x (n, c_in, h, w), dy (n, c_out, h_out, w_out) -> (c_out, c_in/g, kh, kw).
    """
    n, c_in, h, w_in = x.shape
    _, c_out, h_out, w_out = dy.shape
    c_in_g = c_in // geometry.groups
    kh, kw = kernel_hw
    threads = plan.threads
    if not plan.wide:
        n_blocks, block = _blocks(n * h_out, c_out * c_in_g, threads)
        partial = np.empty((n_blocks, c_out, c_in_g, kh, kw), dtype=x.dtype)
        _run(_grad_weight_tasks, (x, dy, partial), c_out * c_in_g * n_blocks, threads,
             (n_blocks, block, *geometry.args()))
        return partial.sum(axis=0)
    xp = _pad_planes(x, geometry.pad_h, geometry.pad_h, geometry.pad_w, geometry.pad_w, (kw - 1) * geometry.dilation_w)
    wp = w_in + 2 * geometry.pad_w
    if plan.small_planes:  # per-tap rows summed over a chunk of samples
        pairs = c_out * c_in_g
        n_chunks = max(1, min(n, -(-4 * threads // pairs)))
        chunk = -(-n // n_chunks)
        partial = np.empty((n_chunks, c_out, c_in_g, kh, kw), dtype=x.dtype)
        _run(conv_wide.grad_weight_small_tasks, (xp, dy, partial), pairs * n_chunks,
             threads, (n_chunks, chunk, wp, geometry.dilation_h, geometry.dilation_w))
        return partial.sum(axis=0)
    dyw = np.zeros((n, c_out, h_out, wp), dtype=dy.dtype)
    dyw[..., :w_out] = dy
    tile_rows = max(1, min(h_out, plan.wide_tile // wp))
    n_tiles = -(-h_out // tile_rows)
    partial = np.empty((n * n_tiles, c_out, c_in_g, kh, kw), dtype=x.dtype)
    _run(conv_wide.grad_weight_tasks, (xp, dyw.reshape(n, c_out, h_out * wp), partial),
         c_out * c_in_g * n * n_tiles, threads, (n_tiles, tile_rows, wp, geometry.dilation_h, geometry.dilation_w))
    return partial.sum(axis=0)
