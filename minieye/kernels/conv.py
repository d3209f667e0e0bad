"""2-D convolution (cross-correlation, NCHW) and its two adjoints, on trusted arrays.

With stride s, padding p, dilation d and ``groups`` g (channel c_in of group
``c // (c_in/g)`` only meets the output channels of that group), the forward is

    y[n, o, a, b] = sum_{c in group(o), i, j} w[o, c', i, j] * x[n, c, a*s_h - p_h + i*d_h, b*s_w - p_w + j*d_w]

(c' = c - group_start; x is zero outside the image). It is linear in x and in w:

    grad_input:  dx = C^T dy          (the transposed convolution, "deconvolution")
    grad_weight: dw[o, c', i, j] = sum_{n, a, b} dy[n, o, a, b] * x[n, c, a*s_h - p_h + i*d_h, ...]

where C is the convolution matrix of ``x -> y``. ``conv_transpose2d`` is exactly
``grad_input`` as a forward map, so one implementation serves both directions:
the transposed convolution's forward is ``conv2d_grad_input``, its input gradient is
``conv2d_forward`` and its weight gradient is ``conv2d_grad_weight`` with the roles
of x and dy swapped.

Algorithms (``conv_plan.plan`` decides once per call; see docs/kernels.md for measurements):

- ``gemm``: unfold tiles of each sample into columns (``conv_gemm``), one matrix product
  per tile and group with BLAS (``conv_blas.gemm``: NumPy's OpenBLAS where it can), fold
  back for the input gradient. Best when channels are many (the product does
  ``2 * c_out/g`` flops per unfolded element). Where one sample's product is small, one
  product spans a block of whole samples (``conv_blocks``; sized by ``conv_layout``).
- ``taps``: without groups, one product per kernel tap on views of the padded phase
  planes (``conv_taps``), no unfolding; the forward and (with no more outputs than inputs,
  or AVX-512 BLAS) the input gradient, the weight gradient as ``gemm``. Where the stride
  divides the kernel ("auto" only), one product per shift of the phase planes instead, for all
  three passes (``conv_shifts``).
- ``winograd``, ``winograd4``: F(2x2, 3x3) and F(4x4, 3x3) (``conv_winograd``, ``conv_winograd4``, run
  by ``conv_winograd_run``) for 3x3 stride-1 layers with many channels. F(4x4)'s input gradient runs as
  the adjoint of its forward (``conv_winograd4_grad``) where there are more outputs than inputs, and
  ``conv2d_backward`` computes both gradients in one pass over the images.
- ``small``: few input channels on "same" planes at stride 1: every pass fused multiply-add runs
  over whole planes, nine taps each, no unfolding and no BLAS (``conv_small``).
- ``direct``: multiply-adds along zero-padded, flattened planes (``conv_wide``; row loops
  in ``conv_direct`` for strides above 1). Best for few channels per group
  (single-channel deblurring, depthwise convolution, digits).

Work big enough to pay for it is split over the plan's threads (``_threads``). While a GEMM
call runs, BLAS is held to one thread: its products are tile-sized, where BLAS's own
threads cost more than they give (on the loaded 2-core machine, 4-45 GFLOP/s instead of
55-85 for one thread; docs/kernels.md), and with our threads they would oversubscribe.
The user's setting is put back when the call ends. The direct path never calls BLAS.
Scratch buffers are kept per calling thread between calls (``release_scratch`` frees them;
within a ``scratch_scope`` they are freed when it ends).

These functions validate nothing but ``out=`` (``minieye.functional`` does) and expect
C-contiguous arrays of one float dtype.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from . import conv_blas, conv_blocks, conv_direct, conv_gemm, conv_shifts, conv_small, conv_taps, conv_winograd_run
from ..checks import check_out
from ._blas import single_threaded_blas
from ._threads import run_parts
from .conv_geometry import Geometry, conv_output_size, output_size
from .conv_plan import Algorithm, Plan, check_shifts as _check_shifts, plan as make_plan
from .conv_layout import GemmLayout as _GemmLayout, gemm_args as _gemm_args, gemm_layout as _gemm_layout, \
    release_scratch, run_shifts as _run_shifts, run_taps as _run_taps, scratch as _scratch, \
    scratch_scope, shift_threads as _shift_threads

__all__ = [
    "conv2d_forward",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "conv2d_backward",
    "grad_bias",
    "conv2d_forward_and_grad_weight",
    "conv2d_backward_transposed",
    "release_scratch",
    "scratch_scope",
]


def _shift(bias: np.ndarray | None, c_out: int, dtype: np.dtype) -> np.ndarray:
    """The bias the kernels add to each output channel: (c_out,) contiguous, zeros without one."""
    return np.zeros(c_out, dtype=dtype) if bias is None else np.ascontiguousarray(bias, dtype=dtype)


def _tap_major(w: np.ndarray) -> np.ndarray:
    """(c_out, c_in, kh, kw) -> (kh*kw, c_out, c_in), the layout of ``conv_taps``."""
    return np.ascontiguousarray(w.transpose(2, 3, 0, 1)).reshape(w.shape[2] * w.shape[3], w.shape[0], w.shape[1])


def _shifts(x: np.ndarray, w_shape: tuple[int, ...], geometry: Geometry, plan: Plan, y: np.ndarray | None,
            w: np.ndarray | None, dy: np.ndarray | None, bias: np.ndarray | None = None) -> np.ndarray | None:
    """A ``conv_shifts`` pass over x (n, c_in, h, w) for a weight of ``w_shape``: writes y (the forward) where
    given, from the weight ``w``; returns dw (shape w_shape) where dy is given."""
    n, c_in = x.shape[:2]
    c_out, kernel_hw = w_shape[0], tuple(w_shape[2:])
    _check_shifts(kernel_hw, geometry)
    stride = (geometry.stride_h, geometry.stride_w)
    shifts = (kernel_hw[0] // stride[0]) * (kernel_hw[1] // stride[1])
    need_y, need_dw = y is not None, dy is not None
    # each thread's dW per shift, transposed (none for the forward alone: ws stands in, untouched)
    k = c_in * stride[0] * stride[1]
    dws = np.zeros((_shift_threads(n, plan), shifts, k, c_out), dtype=x.dtype) if need_dw else None
    ws = np.empty((shifts, c_out, k), dtype=x.dtype) if w is None else conv_shifts.shift_weight(w, stride)  # shape only
    shift = _shift(bias, c_out, x.dtype)
    _run_shifts(lambda *a: conv_taps.forward(x, ws, shift, dy if need_dw else y, y if need_y else dy,
                                             dws[a[4]] if need_dw else ws, need_y, need_dw, True, *a),
                n, c_in, c_out, x.shape[2:], kernel_hw, (y if need_y else dy).shape[2:], geometry, plan, x.dtype)
    return (conv_shifts.from_shift_weight(dws.sum(axis=0).transpose(0, 2, 1), c_in, kernel_hw, stride)
            if need_dw else None)


def _thread_scratch(layout: _GemmLayout, i: int, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """Thread i's buffers for the GEMM kernels: columns, planes, tile, and ``conv_blas.gemm``'s scalars."""
    return (_scratch(f"cols{i}", (layout.cols_size,), dtype), _scratch(f"plane{i}", layout.plane_shape, dtype),
            _scratch(f"tile{i}", (layout.tile_size,), dtype), *_gemm_args(dtype))


_WINOGRAD = conv_winograd_run.WINOGRAD


def _winograd(x: np.ndarray, w: np.ndarray, pads: tuple[int, int], out_hw: tuple[int, int], plan: Plan,
              bias: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """A 3x3 stride-1 convolution by the plan's Winograd algorithm whose input pixel (r, c) is
    x[r - pads[0], c - pads[1]] (zero outside). Shapes: x (n, c_in, h, w), w (c_out, c_in, 3, 3)
    -> (n, c_out, *out_hw)."""
    y = _output(out, (x.shape[0], w.shape[0]) + tuple(out_hw), x.dtype)
    return conv_winograd_run.forward(x, w, pads, plan, _shift(bias, w.shape[0], x.dtype), y)


def _output(out: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Where a kernel writes its result: ``out`` (checked by the entry point), else a new array."""
    return np.empty(shape, dtype=dtype) if out is None else out


# -- entry points ---------------------------------------------------------------------------
# Each takes the call's Plan (computed here when None: the layers pass the one of their forward), and
# ``out``: an array to write the result into (C-contiguous, the result's shape and dtype, sharing no memory
# with the operands: checks.check_out; its contents are overwritten), for callers that reuse their buffers;
# the result is returned either way.
def conv2d_forward(x: np.ndarray, w: np.ndarray, geometry: Geometry, plan: Plan | None = None,
                   bias: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """``y = conv2d(x, w) + bias``. Shapes: x (n, c_in, h, w), w (c_out, c_in/g, kh, kw), bias (c_out,)
    or None -> (n, c_out, h_out, w_out). The bias is added while the output is written."""
    plan = plan or make_plan(x.shape, w.shape, geometry)
    if out is not None:
        check_out(out, x.shape[:1] + w.shape[:1] + output_size(x.shape[2:], w.shape[2:], geometry), x.dtype,
                  "conv2d_forward", x, w, bias)
    if plan.algorithm is Algorithm.DIRECT:
        return conv_direct.forward(x, w, geometry, plan, bias, out)
    if plan.algorithm is Algorithm.SMALL:
        return conv_small.forward(x, w, geometry, _shift(bias, w.shape[0], x.dtype), plan.threads, out)
    if plan.algorithm in _WINOGRAD:
        out_hw = output_size(x.shape[2:], w.shape[2:], geometry)
        return _winograd(x, w, (geometry.pad_h, geometry.pad_w), out_hw, plan, bias, out)
    if plan.algorithm is Algorithm.TAPS:
        y = _output(out, x.shape[:1] + w.shape[:1] + output_size(x.shape[2:], w.shape[2:], geometry), x.dtype)
        if plan.shifts:
            _shifts(x, w.shape, geometry, plan, y, w, None, bias)
            return y
        wt = _tap_major(w)
        shift = _shift(bias, w.shape[0], x.dtype)
        _run_taps(lambda *a: conv_taps.forward(x, wt, shift, y, y, wt, True, False, False, *a),
                  lambda *a: conv_blocks.taps_forward(x, wt, shift, y, *a), x.shape[0], x.shape[1], w.shape[0],
                  x.shape[2:], w.shape[2:], y.shape[2:], geometry, plan, x.dtype)
        return y
    y, _ = conv2d_forward_and_grad_weight(x, w, None, geometry, plan, need_y=True, bias=bias, out=out)
    return y


def conv2d_grad_weight(x: np.ndarray, dy: np.ndarray, kernel_hw: tuple[int, int], geometry: Geometry,
                       plan: Plan | None = None) -> np.ndarray:
    """``dw`` of ``sum(dy * conv2d(x, w))``. Shapes: x (n, c_in, h, w), dy (n, c_out, h_out, w_out)
    -> (c_out, c_in/g, kh, kw)."""
    c_out, c_in, g = dy.shape[1], x.shape[1], geometry.groups
    w_shape = (c_out, c_in // g) + tuple(kernel_hw)
    plan = plan or make_plan(x.shape, w_shape, geometry)
    if plan.algorithm is Algorithm.DIRECT:
        return conv_direct.grad_weight(x, dy, kernel_hw, geometry, plan)
    if plan.algorithm is Algorithm.SMALL:
        if x.shape[2:] == dy.shape[2:]:
            return conv_small.grad_weight(x, dy, tuple(kernel_hw), geometry, plan.threads)
        plan = replace(plan, algorithm=Algorithm.GEMM)  # not a "same" shape (see conv2d_grad_input)
    if plan.algorithm in _WINOGRAD and plan.winograd_grad_weight:
        return conv_winograd_run.grad_weight(x, dy, (geometry.pad_h, geometry.pad_w), plan)
    if plan.shifts:
        return _shifts(x, w_shape, geometry, plan, None, None, dy)
    carrier = np.empty(w_shape, dtype=x.dtype)  # gives the shape only
    _, dw = conv2d_forward_and_grad_weight(x, carrier, dy, geometry, plan, need_y=False)
    return dw


def conv2d_forward_and_grad_weight(x: np.ndarray, w: np.ndarray, dy: np.ndarray | None, geometry: Geometry,
                                   plan: Plan | None = None, need_y: bool = True, bias: np.ndarray | None = None,
                                   out: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Forward and/or weight gradient through one unfolding of ``x`` (GEMM algorithm).

    Both are products with the same columns: ``y_n = W @ cols_n`` and ``dw = sum_n dy_n @ cols_n^T``.
    The transposed convolution's backward needs both at once (its dx and dw), so it
    unfolds its output gradient only once. ``w`` only gives the shape when ``need_y`` is False.
    """
    n, c_in, h, w_in = x.shape
    c_out, c_in_g, kh, kw = w.shape
    plan = plan or make_plan(x.shape, w.shape, geometry)
    g = geometry.groups
    c_out_g, k = c_out // g, c_in_g * kh * kw
    out_hw = (conv_output_size(h, kh, geometry.stride_h, geometry.pad_h, geometry.dilation_h),
              conv_output_size(w_in, kw, geometry.stride_w, geometry.pad_w, geometry.dilation_w))
    if out is not None and need_y:
        check_out(out, (n, c_out) + out_hw, x.dtype, "conv2d_forward_and_grad_weight", x, w, dy, bias)
    layout = _gemm_layout(n, plan, c_in, (h, w_in), (kh, kw), out_hw, c_out_g, geometry, x.dtype, not need_y)
    run = conv_blocks.forward_and_grad_weight if layout.block > 1 else conv_gemm.forward_and_grad_weight
    y = _output(out, (n, c_out) + out_hw, x.dtype) if need_y else np.empty((1, 1, 1, 1), dtype=x.dtype)
    need_dw = dy is not None
    dw_part = np.zeros((layout.threads, g, k, c_out_g) if need_dw else (layout.threads, 1, 1, 1), dtype=x.dtype)
    w2 = np.ascontiguousarray(w.reshape(g, c_out_g, k)) if need_y else np.empty((g, c_out_g, k), dtype=x.dtype)
    shift = _shift(bias, c_out, x.dtype)
    scratch = [_thread_scratch(layout, i, x.dtype) for i in range(layout.threads)]

    def part(i: int) -> None:
        run(x, w2, shift, dy if need_dw else x, y, dw_part[i], *scratch[i], i, layout.threads, need_y, need_dw,
            *((layout.block, layout.exact) if layout.block > 1 else (layout.tile_rows,)), kh, kw, *geometry.args())

    with single_threaded_blas():
        run_parts(part, layout.threads)
    # the kernels accumulate dW transposed, (g, k, c_out/g)
    dw = np.ascontiguousarray((dw_part[0] if layout.threads == 1 else dw_part.sum(axis=0)).transpose(0, 2, 1)
                              ).reshape(c_out, c_in_g, kh, kw) if need_dw else None
    return (y if need_y else None), dw


def conv2d_grad_input(dy: np.ndarray, w: np.ndarray, input_hw: tuple[int, int], geometry: Geometry,
                      plan: Plan | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """``dx = C^T dy`` (also the transposed convolution's forward).

    Shapes: dy (n, c_out, h_out, w_out), w (c_out, c_in/g, kh, kw) -> (n, c_in, *input_hw).
    Input rows/columns that no window reaches (stride remainders) get zero.
    """
    n, c_out, h_out, w_out = dy.shape
    _, c_in_g, kh, kw = w.shape
    g = geometry.groups
    c_in = c_in_g * g
    plan = plan or make_plan((n, c_in) + tuple(input_hw), w.shape, geometry)
    if out is not None:
        check_out(out, (n, c_in) + tuple(input_hw), dy.dtype, "conv2d_grad_input", dy, w)
    if plan.algorithm is Algorithm.DIRECT:
        return conv_direct.grad_input(dy, w, input_hw, geometry, plan, out)
    if plan.algorithm is Algorithm.SMALL:
        if tuple(input_hw) == dy.shape[2:]:
            return conv_small.grad_input(dy, w, geometry, plan.threads, out)
        # a transposed layer's output_padding (stride 1, dilation 2) asks for a larger input than dy:
        # not a "same" shape, so as GEMM
        plan = replace(plan, algorithm=Algorithm.GEMM)
    if plan.algorithm is Algorithm.WINOGRAD4 and conv_winograd_run.adjoint_pays(c_in, c_out, (h_out, w_out), False):
        return conv_winograd_run.grad_input4(dy, w, (geometry.pad_h, geometry.pad_w), plan,
                                             _output(out, (n, c_in) + tuple(input_hw), dy.dtype))
    if plan.algorithm in _WINOGRAD:  # the forward of dy with the flipped kernel, padded by 2 - pad
        return _winograd(dy, conv_direct.flip_transposed(w, 1), (2 - geometry.pad_h, 2 - geometry.pad_w),
                         tuple(input_hw), plan, out=out)
    if plan.shifts:
        _check_shifts((kh, kw), geometry)
        dx = _output(out, (n, c_in) + tuple(input_hw), dy.dtype)
        ws = conv_shifts.shift_weight(w, geometry.stride)
        _run_shifts(lambda *a: conv_taps.grad_input(dy, ws, dx, True, *a), n, c_in, c_out, tuple(input_hw), (kh, kw),
                    (h_out, w_out), geometry, plan, dy.dtype)
        return dx
    if plan.algorithm is Algorithm.TAPS and plan.taps_grad_input:
        dx = _output(out, (n, c_in) + tuple(input_hw), dy.dtype)
        wt = _tap_major(w)
        _run_taps(lambda *a: conv_taps.grad_input(dy, wt, dx, False, *a),
                  lambda *a: conv_blocks.taps_grad_input(dy, wt, dx, *a), n, c_in, c_out, tuple(input_hw), (kh, kw),
                  (h_out, w_out), geometry, plan, dy.dtype)
        return dx
    c_out_g, k = c_out // g, c_in_g * kh * kw
    dx = _output(out, (n, c_in) + tuple(input_hw), dy.dtype)
    layout = _gemm_layout(n, plan, c_in, tuple(input_hw), (kh, kw), (h_out, w_out), c_out_g, geometry, dy.dtype,
                          True)
    run = conv_blocks.grad_input if layout.block > 1 else conv_gemm.grad_input
    w2t = np.ascontiguousarray(w.reshape(g, c_out_g, k).transpose(0, 2, 1))
    scratch = [_thread_scratch(layout, i, dy.dtype) for i in range(layout.threads)]

    def part(i: int) -> None:
        run(dy, w2t, dx, *scratch[i], i, layout.threads,
            *((layout.block, layout.exact) if layout.block > 1 else (layout.tile_rows,)), kh, kw, *geometry.args())

    with single_threaded_blas():
        run_parts(part, layout.threads)
    return dx


def conv2d_backward(x: np.ndarray, dy: np.ndarray, w: np.ndarray, geometry: Geometry, plan: Plan | None = None,
                    *, need_dx: bool = True, need_dw: bool = True, need_db: bool = False
                    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """A convolution layer's gradients of ``y = conv2d(x, w) + b``: (dx, dw, db), each None unless asked
    for. Shapes: x (n, c_in, h, w), dy (n, c_out, h_out, w_out), w (c_out, c_in/g, kh, kw) -> dx like x,
    dw like w, db (c_out,). SMALL computes all three in one pass over the samples (``conv_small.backward``:
    one hand-off to the threads, dy read once); F(4x4, 3x3) both gradients in one pass over the images (dy
    transformed once, for both) where ``conv_winograd_run.adjoint_pays``, and its weight gradient's pass
    over dy also sums the bias gradient; otherwise ``conv2d_grad_input``,
    ``conv2d_grad_weight`` and ``grad_bias``."""
    plan = plan or make_plan(x.shape, w.shape, geometry)
    if plan.algorithm is Algorithm.SMALL and x.shape[2:] == dy.shape[2:] and (need_dw or need_dx):
        return conv_small.backward(x if need_dw else None, dy, w if need_dx else None, tuple(w.shape[2:]),
                                   geometry, plan.threads, need_db=need_db)
    if need_dw and plan.algorithm is Algorithm.WINOGRAD4 and plan.winograd_grad_weight:
        pads, db = (geometry.pad_h, geometry.pad_w), (np.empty(dy.shape[1], dtype=dy.dtype) if need_db else None)
        if need_dx and conv_winograd_run.adjoint_pays(x.shape[1], dy.shape[1], dy.shape[2:], True):
            dx = np.empty_like(x)
            return dx, conv_winograd_run.grads4(x, dy, w, pads, plan, dx, db=db), db
        dw = conv_winograd_run.grad_weight(x, dy, pads, plan, db=db)
    else:
        db = grad_bias(dy) if need_db else None
        dw = conv2d_grad_weight(x, dy, w.shape[2:], geometry, plan) if need_dw else None
    return (conv2d_grad_input(dy, w, x.shape[2:], geometry, plan) if need_dx else None), dw, db


def grad_bias(dy: np.ndarray) -> np.ndarray:
    """dy (N, C, *size) summed over all but its channel axis -> (C,)."""
    # einsum sums in SIMD blocks: 4x faster than sum(axis=(0, 2, 3)) and as accurate here (explicit lengths:
    # reshape cannot infer -1 for an empty batch)
    return np.einsum("ncl->c", dy.reshape(dy.shape[:2] + (math.prod(dy.shape[2:]),)))


def conv2d_backward_transposed(dy: np.ndarray, w: np.ndarray, x: np.ndarray, geometry: Geometry,
                               plan: Plan | None = None, need_dw: bool = True, need_dx: bool = True
                               ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Backward of the transposed convolution ``y = conv_transpose2d(x, w)``.

    Returns ``(dx, dw) = (conv2d(dy, w), grad_weight with dy as the input and x as the
    output gradient)`` (dw None unless ``need_dw``, dx None unless ``need_dx``). Shapes: dy (n, c_out_t, H, W),
    w (c_in_t, c_out_t/g, kh, kw), x (n, c_in_t, h, w) -> dx like x, dw like w. ``plan``: the
    plan of the convolution of dy with w (the transposed forward's).

    When output_padding is at least the stride (allowed when the dilation is larger),
    conv2d(dy) has more rows or columns than x: those positions exist in neither x nor
    y's preimage, so x is zero-extended for dw and dx is cropped back.
    """
    kh, kw = w.shape[2:]
    conv_hw = (conv_output_size(dy.shape[2], kh, geometry.stride_h, geometry.pad_h, geometry.dilation_h),
               conv_output_size(dy.shape[3], kw, geometry.stride_w, geometry.pad_w, geometry.dilation_w))
    h, w_in = x.shape[2:]
    if conv_hw != (h, w_in):
        extended = np.zeros(x.shape[:2] + conv_hw, dtype=x.dtype)
        extended[:, :, :h, :w_in] = x
        x = extended
    plan = plan or make_plan(dy.shape, w.shape, geometry)
    if not need_dx:
        return None, (conv2d_grad_weight(dy, x, (kh, kw), geometry, plan) if need_dw else None)
    # per shift, one padding of dy serves dx and dw; otherwise a TAPS plan's weight gradient unfolds dy
    # as GEMM does, and one unfolding then serves both products (docs/kernels.md)
    if plan.shifts and need_dw:
        dx = np.empty(x.shape, dtype=x.dtype)
        dw = _shifts(dy, w.shape, geometry, plan, dx, w, x)
    elif plan.algorithm not in (Algorithm.GEMM, Algorithm.TAPS) or not need_dw:
        dx = conv2d_forward(dy, w, geometry, plan)
        dw = conv2d_grad_weight(dy, x, (kh, kw), geometry, plan) if need_dw else None
    else:
        dx, dw = conv2d_forward_and_grad_weight(dy, w, x, geometry, plan, need_y=True)
    if conv_hw != (h, w_in):
        dx = np.ascontiguousarray(dx[:, :, :h, :w_in])
    return dx, dw
