"""How one convolution call runs: the algorithm, the thread count and the tiling, decided once.

``plan(input_shape, weight_shape, geometry)`` is the only place where a convolution's
shape picks its code path; the forward and both gradients of one call share its
``Plan`` (a layer computes it in its forward and keeps it for its backward). It reads
the knobs of ``minieye.options`` at call time:

- ``conv_algorithm``: "auto" chooses by channel counts and kernel (below); "direct", "gemm",
  "winograd" (F(2x2, 3x3)), "winograd4" (F(4x4, 3x3)), "taps" or "small" force one (Winograd only where
  it applies: 3x3, stride 1, no dilation or groups; taps: no groups; small: 2-D, stride 1, no groups,
  output as large as the input).
- ``threads`` (None: ``numba.get_num_threads()``), ``conv_direct_parallel_min_work`` and
  ``conv_gemm_parallel_min_work``: below that many multiply-adds a call stays on the
  caller's thread (handing work to a thread costs tens of microseconds); GEMM, Winograd and
  taps count ``conv_gemm_sample_work`` more per sample (the cost of its products' calls).
- ``conv_sample_block``: whole samples per GEMM or TAPS product (``conv_blocks``). 0: GEMM blocks
  as many as a quarter of ``conv_tile_bytes`` holds where one sample's product has at most
  ``_BLOCK_MAX_WORK`` multiply-adds and fits a tile, else (and TAPS always) per sample; above 1: that
  many at most.
- ``conv_wide_tile`` and ``conv_tile_bytes``: the tile sizes of the direct and GEMM (and
  Winograd) algorithms; ``conv_winograd_min_channels`` and ``conv_winograd_min_pixels``: from how many
  channels and output pixels per plane "auto" picks Winograd F(4x4, 3x3) (None: 16 and 256); ``conv_taps_min_channels``: from how
  many input channels "auto" runs other layers without groups per tap (per shift of the phase planes
  where a stride above 1 divides the kernel: ``Plan.shifts``, ``conv_shifts``).

The shapes are those of the *convolution* (input ``(N, C_in, *size)``, weight
``(C_out, C_in/g, *kernel)``); a transposed convolution plans the convolution it is the
adjoint of, whose input is the transposed one's output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from ..checks import fail
from ..options import get as option
from . import _blas
from ._threads import thread_count
from .conv_geometry import Geometry, output_size

__all__ = ["Algorithm", "Plan", "check_shifts", "plan", "small_fits"]

_BLOCK_MAX_WORK = 100_000  # multiply-adds of one sample's product up to which "auto" blocks samples
_SMALL_MAX_TAPS = 27  # input taps per output (c_in/g * kh * kw) up to which "auto" may pick SMALL ...
_SMALL_MIN_OUTPUTS = 2  # ... from this many output channels per group (one output channel stays DIRECT) ...
_SMALL_MAX_PIXELS = 256 * 256  # ... on planes of at most this many pixels


class Algorithm(Enum):
    """``DIRECT``: multiply-adds along image planes (few channels per group); ``GEMM``: unfolded
    tiles multiplied by BLAS (many channels); ``WINOGRAD`` and ``WINOGRAD4``: F(2x2, 3x3) and
    F(4x4, 3x3) for 3x3 stride-1 layers with many channels ("auto" picks F(4x4)); ``TAPS``: one
    BLAS product per kernel tap on views of the padded input (no groups; no unfolding,
    ``conv_taps``); ``SMALL``: few input channels on "same" planes at stride 1, every pass a set of
    fused multiply-add runs over whole planes, no BLAS (``conv_small``). WINOGRAD(4) and TAPS run the forward and the input gradient their way; the
    weight gradient runs as GEMM, or by Winograd where ``Plan.winograd_grad_weight`` says so."""

    DIRECT = "direct"
    GEMM = "gemm"
    WINOGRAD = "winograd"
    WINOGRAD4 = "winograd4"
    TAPS = "taps"
    SMALL = "small"


@dataclass(frozen=True)
class Plan:
    """One convolution call's decisions (see the module docstring)."""

    algorithm: Algorithm
    threads: int        # parts each kernel call is split into; 1: the caller's thread only
    wide: bool          # DIRECT at stride 1: long runs along zero-padded, flattened planes
    small_planes: bool  # DIRECT wide weight gradient: per-tap rows summed over chunks of samples
    wide_tile: int      # DIRECT wide: output pixels per task
    tile_bytes: int     # GEMM: bytes of one thread's unfolded tile of rows (Winograd: half its chunk)
    taps_grad_input: bool = True  # TAPS: the input gradient per tap too (else by unfolding, as GEMM)
    winograd_grad_weight: bool = True  # WINOGRAD(4): the weight gradient by Winograd too (else as GEMM)
    sample_block: int = 1  # GEMM, TAPS: samples per product (conv_blocks); 0: as many as a quarter of tile_bytes holds
    shifts: bool = False  # TAPS whose stride divides the kernel: every pass one product per shift (conv_shifts)

    def __post_init__(self) -> None:
        if not isinstance(self.algorithm, Algorithm):
            raise TypeError(f"Plan: expected algorithm an Algorithm ({', '.join(a.name for a in Algorithm)}), "
                            f"got {self.algorithm!r}")
        if self.shifts and self.algorithm is not Algorithm.TAPS:
            raise fail("Plan", "shifts only with the TAPS algorithm", self.algorithm.name)


def _taps_fits(geometry: Geometry) -> bool:
    return geometry.groups == 1


def small_fits(kernel: tuple[int, ...], size: tuple[int, ...], geometry: Geometry) -> bool:
    """Where ``conv_small`` computes the convolution: 2-D, stride 1, no groups, output as large as the input."""
    return (len(kernel) == 2 and len(size) == 2 and geometry.nd == 2 and geometry.groups == 1
            and geometry.stride_h == geometry.stride_w == 1
            and all(2 * p == d * (k - 1) for p, d, k in zip(geometry.padding, geometry.dilation, kernel)))


def _winograd_fits(kernel: tuple[int, ...], geometry: Geometry) -> bool:
    plane = geometry.plane()
    return (len(kernel) >= 2 and tuple(kernel[-2:]) == (3, 3) and all(k == 1 for k in kernel[:-2])
            and plane.stride_h == plane.stride_w == 1 and plane.dilation_h == plane.dilation_w == 1
            and geometry.groups == 1)


def _shifts_exact(kernel: tuple[int, ...], geometry: Geometry) -> bool:
    """Where products per shift compute the convolution: a 2-D kernel that the stride divides,
    dilation 1, no groups (``conv_shifts``)."""
    plane = geometry.plane()
    return (len(kernel) == 2 and geometry.groups == 1 and plane.dilation_h == plane.dilation_w == 1
            and kernel[0] % plane.stride_h == 0 and kernel[1] % plane.stride_w == 0)


def _shifts_fit(kernel: tuple[int, ...], geometry: Geometry) -> bool:
    """Where "auto" runs per shift: at stride 1 a shift is one tap, as per tap."""
    return _shifts_exact(kernel, geometry) and max(geometry.stride_h, geometry.stride_w) > 1


def check_shifts(kernel: tuple[int, ...], geometry: Geometry) -> None:
    """Refuse a ``Plan.shifts`` for a geometry where products per shift would be wrong (a plan built by
    hand, or for another layer): they ignore the dilation and the groups, and need every shift's taps."""
    if not _shifts_exact(kernel, geometry):
        raise fail("Plan.shifts", "a 2-D kernel that the stride divides, dilation 1, groups 1",
                   f"kernel {tuple(kernel)}, stride {geometry.stride}, dilation {geometry.dilation}, "
                   f"groups {geometry.groups}", "plan this convolution with conv_plan")


def _auto_algorithm(c_in_g: int, c_out_g: int, kernel: tuple[int, ...], geometry: Geometry,
                    plane_pixels: int, size: tuple[int, ...]) -> Algorithm:
    # few input taps per output (the digits layer's 9, LeNet's first layer's 25) into several channels on
    # "same" planes: fused runs over whole planes beat unfolding and BLAS, whose products are then tiny
    # (docs/kernels.md, "Eighth pass")
    # On larger planes the shifted copies of the input no longer fit the L2 cache and the runs stream from
    # memory: a 416x416 tile of the restoration denoiser (2 -> 16) ran 7 % slower forward, 21 % backward
    if (c_in_g * math.prod(kernel) <= _SMALL_MAX_TAPS and c_out_g >= _SMALL_MIN_OUTPUTS
            and plane_pixels <= _SMALL_MAX_PIXELS and small_fits(kernel, size, geometry)):
        return Algorithm.SMALL
    # The product runs at BLAS speed only when both matrix sides have some width; with a
    # single input or output channel per group the unfolding costs more than it saves,
    # except for one input channel into 6 or more outputs when BLAS has AVX-512 kernels
    # (LeNet's first layer, the digits layer: 1.3-1.8x faster as GEMM there), or into 16 or more
    # with AVX2's (the digits layer: 1.2x faster; LeNet's 6 outputs: 1.1x slower)
    if c_in_g == 1 and c_out_g >= (6 if _blas.avx512_blas() else 16):
        return Algorithm.GEMM
    if c_in_g * c_out_g <= 16 or c_in_g == 1 or c_out_g == 1:
        return Algorithm.DIRECT
    # Winograd's transforms cost per pixel and channel, its savings grow with the channels and
    # the plane. F(4x4, 3x3) against TAPS, measured per pass (docs/kernels.md, "Fifth pass" and
    # "Sixth pass"): ahead from 16 channels in and out on 16x16 planes with AVX2 and AVX-512 BLAS
    # kernels alike, even or behind on 8x8 planes. It is ahead of F(2x2, 3x3) on every layer
    # measured, so "auto" never picks F(2x2).
    min_channels = option("conv_winograd_min_channels") or 16
    min_pixels = option("conv_winograd_min_pixels") or 256
    if (min(c_in_g, c_out_g) >= min_channels and _winograd_fits(kernel, geometry)
            and plane_pixels >= min_pixels):
        return Algorithm.WINOGRAD4
    # per-tap products skip the unfolding (measured faster from 16 input channels, strides 1 and 2);
    # with fewer, each tap's product has too few terms
    if _taps_fits(geometry) and c_in_g >= option("conv_taps_min_channels"):
        return Algorithm.TAPS
    return Algorithm.GEMM


def plan(input_shape: tuple[int, ...], weight_shape: tuple[int, ...], geometry: Geometry) -> Plan:
    """The Plan for a convolution of an input (N, C_in, *size) with a weight (C_out, C_in/g, *kernel)."""
    n, c_in = input_shape[:2]
    c_out, c_in_g = weight_shape[:2]
    kernel = tuple(weight_shape[2:])
    out = output_size(tuple(input_shape[2:]), kernel, geometry)
    chosen = option("conv_algorithm")
    if chosen == "auto":
        algorithm = _auto_algorithm(c_in_g, c_out // geometry.groups, kernel, geometry, math.prod(out[-2:]),
                                    tuple(input_shape[2:]))
    else:
        algorithm = Algorithm(chosen)
        if algorithm in (Algorithm.WINOGRAD, Algorithm.WINOGRAD4) and not _winograd_fits(kernel, geometry):
            raise fail(f"conv_algorithm='{chosen}'", "a 3x3 kernel with stride 1, dilation 1 and groups 1",
                       f"kernel {kernel}, stride {geometry.stride}, dilation {geometry.dilation}, "
                       f"groups {geometry.groups}", "use 'auto' or 'gemm' for this layer")
        if algorithm is Algorithm.SMALL and not small_fits(kernel, tuple(input_shape[2:]), geometry):
            raise fail("conv_algorithm='small'", "a 2-D convolution at stride 1, groups 1, output as large as the input",
                       f"kernel {kernel}, input {tuple(input_shape[2:])}, stride {geometry.stride}, padding "
                       f"{geometry.padding}, dilation {geometry.dilation}, groups {geometry.groups}",
                       "use 'auto' or 'gemm' for this layer")
        if algorithm is Algorithm.TAPS and not _taps_fits(geometry):
            raise fail("conv_algorithm='taps'", "groups 1", f"groups {geometry.groups}",
                       "use 'auto' or 'gemm' for this layer")
    work = n * c_out * c_in_g * math.prod(kernel) * math.prod(out)  # math.prod: np.prod costs microseconds
    available = thread_count()  # the threads knob, else Numba's count
    if algorithm is not Algorithm.DIRECT:
        # threads take whole samples (a 3-D call's samples are its depth slices)
        samples = n * math.prod(out[:-2])
        # each sample's small products cost calls and unfolding beyond their multiply-adds: many
        # small samples (256 digits of 8x8) split well although their multiply-adds are few
        effort = work + samples * option("conv_gemm_sample_work")
        # (SMALL's forward splits the rows of fewer samples than threads: conv_small.forward)
        whole = available if algorithm is Algorithm.SMALL else max(1, min(available, samples))
        threads = 1 if effort < option("conv_gemm_parallel_min_work") else whole
    else:
        threads = 1 if work < option("conv_direct_parallel_min_work") else available
    wide_tile = option("conv_wide_tile")
    plane = geometry.plane()
    wide = plane.stride_h == 1 and plane.stride_w == 1
    kh, kw = (1,) + kernel if len(kernel) == 1 else kernel[-2:]
    h_out = out[-2] if len(out) > 1 else 1
    padded_width = input_shape[-1] + 2 * plane.pad_w
    small_planes = wide and h_out * padded_width * kh * kw <= wide_tile * 4
    # per tap, the input gradient's products have c_in rows and c_out terms each: with more
    # outputs than inputs that measured 5 % slower than unfolding with AVX2 BLAS kernels
    # (16->32, 32->64), 10-15 % faster with AVX-512's
    taps_grad_input = c_out <= c_in or _blas.avx512_blas()
    # Winograd's weight gradient multiplies (c_out x tiles) by (tiles x c_in) per element: measured
    # faster than unfolding with AVX2 BLAS kernels; with AVX-512's, whose unfolded product is faster,
    # only F(4x4) on planes of 32x32 or more (docs/kernels.md, "Fourth pass" and "Fifth pass")
    winograd_grad_weight = not _blas.avx512_blas() or (algorithm is Algorithm.WINOGRAD4
                                                       and math.prod(out[-2:]) >= 1024)
    # one product over a block of samples (conv_blocks) pays where one sample's product is small, since
    # BLAS's call and the short loops around it cost per sample: faster up to 74,000 multiply-adds per
    # sample, even at LeNet's conv2's 240,000 (docs/kernels.md, "Small planes: products over sample
    # blocks"). TAPS stacks samples only when forced (conv_layout.run_taps).
    sample_block = option("conv_sample_block")
    per_sample = c_out // geometry.groups * c_in_g * kh * kw * math.prod(out[-2:])
    if sample_block == 0 and per_sample > _BLOCK_MAX_WORK:
        sample_block = 1
    # a stride that divides the kernel (4x4 at stride 2) stacks each shift's taps into one product with
    # s_h*s_w times the terms, for all three passes (docs/kernels.md, "Seventh pass"); forced "taps" keeps per tap
    shifts = chosen == "auto" and algorithm is Algorithm.TAPS and _shifts_fit(kernel, geometry)
    return Plan(algorithm, threads, wide, small_planes, wide_tile, option("conv_tile_bytes"), taps_grad_input,
                winograd_grad_weight, sample_block, shifts)
