"""Scratch buffers, tiles and sample blocks of the GEMM and TAPS convolutions (``kernels.conv`` runs them).

``gemm_layout`` sizes one call's scratch from its ``Plan``: the tile of output rows whose unfolded
columns fit ``conv_tile_bytes``, or, where whole samples fit, how many samples one product spans
(``sample_block``; ``conv_blocks``) and how many threads share the blocks. ``run_taps`` runs a per-tap
kernel (``conv_taps``, or its stacked-samples twin in ``conv_blocks``) over those threads, ``run_shifts``
one per shift (``conv_shifts``). Buffers are kept per thread between calls (``scratch``).
"""
from __future__ import annotations

import contextlib
import math
import threading
from typing import Callable, Iterator, NamedTuple

import numpy as np

from . import conv_blas
from ._blas import single_threaded_blas
from ._threads import run_parts
from .conv_geometry import Geometry
from .conv_plan import Plan

__all__ = ["GemmLayout", "gemm_args", "gemm_layout", "release_scratch", "run_shifts", "run_taps", "sample_block",
           "in_scratch_scope", "scratch", "scratch_scope", "shift_threads"]


_local = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A reusable uninitialised buffer (per thread, name and dtype): large fresh arrays cost
    page faults on every call, more than the unfolding itself."""
    store = getattr(_local, "buffers", None)
    if store is None:
        store = _local.buffers = {}
    size = math.prod(shape)  # not np.prod: microseconds per call, a dozen calls per pass
    key = (name, np.dtype(dtype).str)
    buffer = store.get(key)
    if buffer is None or buffer.size < size:
        buffer = store[key] = np.empty(max(size, 1), dtype=dtype)
    return buffer[:size].reshape(shape)


def release_scratch() -> None:
    """Free the buffers this thread keeps between calls."""
    _local.buffers = {}


@contextlib.contextmanager
def scratch_scope() -> Iterator[None]:
    """Scratch made or grown inside is reused there and freed on leaving (the thread's buffers
    are back to what they were; nested scopes: the outermost frees). For a run of many
    convolutions (a restoration) whose buffers must not outlive it: at 640x640 the denoiser's
    are a few hundred MB."""
    if getattr(_local, "scoped", False):
        yield
        return
    kept = getattr(_local, "buffers", None) or {}
    _local.buffers, _local.scoped = dict(kept), True
    try:
        yield
    finally:
        _local.buffers, _local.scoped = kept, False


def in_scratch_scope() -> bool:
    """Whether this thread runs inside a ``scratch_scope``: a run that bounds its memory, where nothing the
    kernels could recompute is kept between calls."""
    return getattr(_local, "scoped", False)


def gemm_args(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """One thread's scratch for ``conv_blas.gemm``'s by-reference arguments."""
    return np.zeros(8, dtype=conv_blas.int_dtype()), np.zeros(2, dtype=dtype)


def run_taps(run: Callable, run_blocks: Callable, n: int, c_in: int, c_out: int, hw: tuple[int, int],
              kernel_hw: tuple[int, int], out_hw: tuple[int, int], geometry: Geometry, plan: Plan,
              dtype: np.dtype) -> None:
    """Run a ``conv_taps`` kernel over the plan's threads: ``run(planes, tile, ints, scalars, i, threads,
    tile_rows, kw, *geometry.args())`` for thread i (the phase planes laid out as for GEMM), or its
    ``conv_blocks`` twin ``run_blocks`` (``block`` in place of ``tile_rows``) where samples are blocked."""
    layout = gemm_layout(n, plan, c_in, hw, kernel_hw, out_hw, c_out, geometry, dtype)
    # a tile holds the output rows and the input rows they read (not c_in*kh*kw unfolded rows)
    c_planes, phases, plane_len = layout.plane_shape
    row = -(-(hw[1] + 2 * geometry.pad_w) // geometry.stride_w)
    sample_len = -(-(hw[0] + 2 * geometry.pad_h) // geometry.stride_h) * row
    itemsize = np.dtype(dtype).itemsize
    tile_rows = int(max(1, min(out_hw[0], plan.tile_bytes // ((c_in + c_out) * row * itemsize))))
    # stacked planes compute their padding rows too: measured slower on every shape tried, so only when forced
    block, threads = sample_block(n, min(plan.threads, n), plan, (c_in * phases + c_out) * sample_len * itemsize,
                                  False)
    planes_shape, tile_size = layout.plane_shape, c_out * tile_rows * row
    if block > 1:
        run, tile_rows = run_blocks, block
        planes_shape = (c_planes, phases, block * sample_len + plane_len - sample_len)
        tile_size = c_out * block * sample_len
    buffers = [(scratch(f"plane{i}", planes_shape, dtype), scratch(f"tile{i}", (tile_size,), dtype),
                *gemm_args(dtype)) for i in range(threads)]

    def part(i: int) -> None:
        run(*buffers[i], i, threads, tile_rows, kernel_hw[1], *geometry.args())

    with single_threaded_blas():
        run_parts(part, threads)


def shift_threads(n: int, plan: Plan) -> int:
    """Threads of a ``conv_shifts`` call: whole samples each."""
    return max(1, min(plan.threads, n))


def run_shifts(run: Callable, n: int, c_in: int, c_out: int, hw: tuple[int, int], kernel_hw: tuple[int, int],
               out_hw: tuple[int, int], geometry: Geometry, plan: Plan, dtype: np.dtype) -> None:
    """Run a ``conv_taps`` kernel per shift (``conv_shifts``) over ``shift_threads(n, plan)`` threads: ``run(planes,
    tile, ints, scalars, i, threads, tile_rows, kw // s_w, s_h, s_w, pad_h, pad_w, 1, 1)`` for thread i, with the
    phase planes of ``conv_gemm`` and a tile of two halves (output rows and their output gradient) that fit
    ``tile_bytes``."""
    sh, sw = geometry.stride_h, geometry.stride_w
    row = -(-(hw[1] + 2 * geometry.pad_w) // sw)
    plane_len = -(-(hw[0] + 2 * geometry.pad_h) // sh) * row + (kernel_hw[1] - 1) // sw + 1
    tile_rows = int(max(1, min(out_hw[0], plan.tile_bytes // ((c_in + c_out) * row * np.dtype(dtype).itemsize))))
    threads = shift_threads(n, plan)
    buffers = [(scratch(f"plane{i}", (c_in, sh * sw, plane_len), dtype),
                scratch(f"tile{i}", (2 * c_out * tile_rows * row,), dtype), *gemm_args(dtype)) for i in range(threads)]

    def part(i: int) -> None:
        run(*buffers[i], i, threads, tile_rows, kernel_hw[1] // sw, sh, sw, geometry.pad_h, geometry.pad_w, 1, 1)

    with single_threaded_blas():
        run_parts(part, threads)


def sample_block(n: int, threads: int, plan: Plan, sample_bytes: int, fits: bool) -> tuple[int, int]:
    """Samples per product and the threads that share the blocks. ``plan.sample_block`` > 1 forces that
    at most; 0 as many whole samples as a quarter of ``conv_tile_bytes`` holds (``sample_bytes`` each)
    where one sample ``fits`` a tile; never more than leaves each thread a block, and the same number of blocks
    for every thread where the batch allows. 1: per sample."""
    threads = max(1, threads)
    # a quarter of the GEMM tile: with AVX-512 BLAS kernels, blocks of 1.5 MB (32 samples of 1 -> 32 channels
    # on 16x16 planes) ran 1.3-2x slower than per sample, of 377 KB 11-14 % faster
    budget = plan.tile_bytes // 4
    block = plan.sample_block if plan.sample_block != 0 else (budget // sample_bytes if fits else 1)
    block = int(max(1, min(block, -(-n // threads))))
    if block > 1:  # the same number of blocks for every thread, as even as the batch allows
        blocks = -(-n // block)
        blocks = -(-blocks // threads) * threads
        block = -(-n // blocks)
    return block, max(1, min(threads, -(-n // block)))


class GemmLayout(NamedTuple):
    """One GEMM call's split: threads, output rows per tile, the scratch sizes (elements) per thread."""

    threads: int
    tile_rows: int
    cols_size: int
    plane_shape: tuple[int, int, int]
    tile_size: int
    block: int = 1  # samples per product (conv_blocks) when above 1; tile_rows is then h_out
    exact: bool = False  # blocks: h_out*w_out columns per sample instead of h_out*row (conv_blocks)


def gemm_layout(n: int, plan: Plan, c_in: int, hw: tuple[int, int], kernel_hw: tuple[int, int],
                out_hw: tuple[int, int], c_out_g: int, geometry: Geometry, dtype: np.dtype,
                backward: bool = False) -> GemmLayout:
    """Scratch sizes of the GEMM kernels; a tile of ``tile_bytes`` fits the L2 cache with the plane.
    ``backward``: a pass without the forward product (weight or input gradient), which may take a
    block's samples without their wide columns (``exact``)."""
    kh, kw = kernel_hw
    # Phase planes (see conv_gemm): s_h*s_w planes per channel of hps x wps padded pixels,
    # plus slack: a tile's run reads up to (kw - 1)*dilation_w // s_w past its last row.
    sh, sw = geometry.stride_h, geometry.stride_w
    hps = -(-(hw[0] + 2 * geometry.pad_h) // sh)
    row = -(-(hw[1] + 2 * geometry.pad_w) // sw)
    plane = hps * row + (kw - 1) * geometry.dilation_w // sw + 1
    itemsize = np.dtype(dtype).itemsize
    tile_rows = int(max(1, min(out_hw[0], plan.tile_bytes // (c_in * kh * kw * row * itemsize))))
    # a block's columns and product both stay in the cache
    sample_bytes = (c_in * kh * kw + c_out_g) * out_hw[0] * row * itemsize
    block, threads = sample_block(n, min(plan.threads, n), plan, sample_bytes, tile_rows == out_hw[0])
    if block > 1:
        tile_rows = out_hw[0]
    # Without the wide columns, copying dY in (or the output out) is one run per channel and sample, but the
    # unfolding and folding one run per output row: that pays where the output has more channels than the
    # columns have rows (digits 1 -> 16: weight and input gradients 18-26 % faster; 1 -> 32 on 16x16
    # planes 18-27 %), and only in the gradients (the digits forward: 10-17 % slower; 4 -> 8: all slower)
    exact = block > 1 and backward and c_out_g >= c_in * kh * kw
    span = block * tile_rows * (out_hw[1] if exact else row)
    return GemmLayout(threads, tile_rows, c_in * kh * kw * span, (c_in, sh * sw, plane), c_out_g * span, block, exact)
