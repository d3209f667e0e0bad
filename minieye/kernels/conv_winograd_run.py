"""How ``kernels.conv`` runs the Winograd algorithms on a call's threads: chunks of images, per-thread
scratch, the weight transforms on one BLAS thread.

``forward`` serves F(2x2, 3x3) and F(4x4, 3x3) (``conv_winograd``, ``conv_winograd4``): the forward,
and the input gradient as the forward of dy with the flipped kernel. F(4x4)'s input gradient can also
run as the adjoint of its forward (``grad_input4``, ``conv_winograd4_grad``), and a backward that needs
both gradients as one pass over the images (``grads4``) that transforms dy once for both.
"""
from __future__ import annotations

import numpy as np

from . import conv_winograd, conv_winograd4, conv_winograd4_grad
from ._blas import single_threaded_blas
from ._threads import run_parts
from .conv_layout import gemm_args, in_scratch_scope, scratch
from .conv_plan import Algorithm, Plan

# the module of each Winograd algorithm: F(2x2, 3x3) and F(4x4, 3x3), with the same kernel signatures
WINOGRAD = {Algorithm.WINOGRAD: conv_winograd, Algorithm.WINOGRAD4: conv_winograd4}


def adjoint_pays(c_in: int, c_out: int, out_hw: tuple[int, int], both: bool) -> bool:
    """Whether F(4x4)'s input gradient runs as the adjoint of the forward (alone, or with the weight gradient
    in one pass where ``both``) rather than as the forward of dy. The adjoint transforms dy's c_out channels
    by A and dx's c_in by B (its split's adjoint: per plane, slower than the split on small planes); the
    forward of dy transforms dy's by B^T (split and all) and dx's by A^T. With both gradients the adjoint
    also shares A dY A^T with the weight gradient. Measured per layer (docs/kernels.md, "Ninth pass"): both
    gradients faster with more outputs than inputs, and with as many on planes of 8x8 tiles or more; the
    input gradient alone with more outputs than inputs on planes of 8x8 tiles or more."""
    large = conv_winograd4.positions(out_hw) >= 64
    return (c_out > c_in and (both or large)) or (both and c_out == c_in and large)


def parts(n: int, c_in: int, c_out: int, out_hw: tuple[int, int], plan: Plan, dtype: np.dtype
          ) -> tuple[int, list[int], list[tuple[np.ndarray, ...]]]:
    """Images per chunk, each thread's first image (and the end), and each thread's scratch for
    the plan's Winograd kernels: the chunk's split images, V, M, the transform blocks, and
    ``conv_blas.gemm``'s scalars."""
    wino = WINOGRAD[plan.algorithm]
    plane, elements = wino.positions(out_hw), wino.ELEMENTS
    # a chunk of whole images whose transformed tiles (V and M) fill about two GEMM tiles' worth of cache
    chunk = int(max(1, min(n, 2 * plan.tile_bytes // (elements * (c_in + c_out) * plane * np.dtype(dtype).itemsize))))
    threads = max(1, min(plan.threads, -(-n // chunk)))
    buffers = [(scratch(f"wino_x{i}", (chunk,) + conv_winograd.split_shape(c_in, out_hw, wino.TILE), dtype),
                scratch(f"wino_v{i}", (elements * c_in * chunk * plane,), dtype),
                scratch(f"wino_m{i}", (elements * c_out * chunk * plane,), dtype),
                scratch(f"wino_y{i}", (wino.block_size(out_hw, chunk),), dtype), *gemm_args(dtype)) for i in range(threads)]
    return chunk, [n * p // threads for p in range(threads + 1)], buffers


def grad_weight(x: np.ndarray, dy: np.ndarray, pads: tuple[int, int], plan: Plan, *,
                db: np.ndarray | None = None) -> np.ndarray:
    """dw of a 3x3 stride-1 convolution by the plan's Winograd algorithm: dU[k] = sum over tiles of
    (A dY A^T)[k] (B^T d B)[k]^T, then dw = G^T dU G. Shapes: x (n, c_in, h, w),
    dy (n, c_out, h_out, w_out) -> (c_out, c_in, 3, 3). F(4x4, 3x3) only: with ``db`` (c_out,) given, the
    bias gradient is written there from the same pass over dy, as ``grads4`` writes it."""
    n, c_in = x.shape[:2]
    c_out, out_hw = dy.shape[1], dy.shape[2:]
    wino = WINOGRAD[plan.algorithm]
    if db is not None and wino is not conv_winograd4:
        raise ValueError(f"grad_weight: db is summed by F(4x4, 3x3) only, not by {plan.algorithm.value}")
    chunk, edges, buffers = parts(n, c_in, c_out, out_hw, plan, x.dtype)
    # F(2x2)'s kernels split dy too; F(4x4)'s read dy's (non-overlapping) blocks in place, and sum them for db
    sums = np.empty((n if db is not None else 0, c_out), dtype=x.dtype)  # no rows: no sums
    extra = [(scratch(f"wino_dy{i}", (chunk,) + conv_winograd.split_shape(c_out, out_hw, wino.TILE), x.dtype),)
             if wino is conv_winograd else () for i in range(len(buffers))]
    du = np.zeros((len(buffers), wino.ELEMENTS, c_out, c_in), dtype=x.dtype)

    def part(i: int) -> None:
        wino.grad_weight_images(x, pads[0], pads[1], dy, du[i], buffers[i][0], *extra[i], *buffers[i][1:],
                                edges[i], edges[i + 1], chunk, *(() if extra[i] else (sums,)))

    with single_threaded_blas():  # the transform's NumPy product too: woken OpenBLAS threads spin
        run_parts(part, len(buffers))  # for a while afterwards, on the cores the next pass needs
        if db is not None:
            np.add.reduce(sums, axis=0, out=db)
        return conv_winograd.grad_weight(du.sum(axis=0), wino.G)


def forward(x: np.ndarray, w: np.ndarray, pads: tuple[int, int], plan: Plan, shift: np.ndarray,
            y: np.ndarray) -> np.ndarray:
    """y = a 3x3 stride-1 convolution by the plan's Winograd algorithm whose input pixel (r, c) is
    x[r - pads[0], c - pads[1]] (zero outside), plus ``shift`` per channel. Shapes: x (n, c_in, h, w),
    w (c_out, c_in, 3, 3), shift (c_out,), y (n, c_out, h_out, w_out), written."""
    n, c_in = x.shape[:2]
    c_out = w.shape[0]
    wino = WINOGRAD[plan.algorithm]
    chunk, edges, buffers = parts(n, c_in, c_out, y.shape[2:], plan, x.dtype)
    with single_threaded_blas():  # the weight transform's NumPy product too (see grad_weight)
        u = conv_winograd.transform_weight(w, wino.G, keep=not in_scratch_scope())  # runs that bound memory keep none

        def part(i: int) -> None:
            wino.forward_images(x, pads[0], pads[1], u, shift, y, *buffers[i], edges[i], edges[i + 1], chunk)

        run_parts(part, len(buffers))
    return y


def grad_input4(dy: np.ndarray, w: np.ndarray, pads: tuple[int, int], plan: Plan, dx: np.ndarray) -> np.ndarray:
    """dx of a 3x3 stride-1 convolution padded by ``pads`` as the adjoint of F(4x4, 3x3)'s forward.
    Shapes: dy (n, c_out, h_out, w_out), w (c_out, c_in, 3, 3), dx (n, c_in, h, w), written."""
    grads4(None, dy, w, pads, plan, dx)
    return dx


def grads4(x: np.ndarray | None, dy: np.ndarray, w: np.ndarray, pads: tuple[int, int], plan: Plan,
           dx: np.ndarray, *, db: np.ndarray | None = None) -> np.ndarray | None:
    """The input gradient of a 3x3 stride-1 convolution padded by ``pads`` as the adjoint of F(4x4, 3x3)'s
    forward, and with x given its weight gradient in the same pass over the images: dx written, dw (or
    None without x) returned. With ``db`` (c_out,) given, the bias gradient (dy summed over images and
    pixels) is written there from the same pass: each image's plane sums (read as dy is transformed, on
    the threads), then added over the images in order, so the result does not depend on the threads.
    Shapes: x and dx (n, c_in, h, w), dy (n, c_out, h_out, w_out), w (c_out, c_in, 3, 3)."""
    n, c_in = dx.shape[:2]
    c_out = dy.shape[1]
    chunk, edges, buffers = parts(n, c_in, c_out, dy.shape[2:], plan, dx.dtype)
    du = np.zeros((len(buffers), conv_winograd4.ELEMENTS, c_out if x is not None else 0, c_in), dtype=dx.dtype)
    sums = np.empty((n if db is not None else 0, c_out), dtype=dx.dtype)  # no rows: no sums
    with single_threaded_blas():
        u = conv_winograd.transform_weight(w, conv_winograd4.G, keep=not in_scratch_scope())

        def part(i: int) -> None:
            conv_winograd4_grad.grads_images(dx if x is None else x, pads[0], pads[1], dy, u, du[i], dx,
                                             *buffers[i], edges[i], edges[i + 1], chunk, x is not None, sums)

        run_parts(part, len(buffers))
        if db is not None:
            np.add.reduce(sums, axis=0, out=db)
        return None if x is None else conv_winograd.grad_weight(du.sum(axis=0), conv_winograd4.G)
