"""The 2-D transposed convolution as one 3x3 stride-1 convolution of its input into phase channels.

Along one axis with stride s, padding p, dilation d and kernel k, the transposed convolution writes

    y[Y] = sum_{c, i} w[c, o, i] * x[c, a]    over the taps i with  Y = a*s - p + i*d.

Write the output position as Y = q*s + r (its phase r in [0, s)). Tap i reaches phase r exactly when
i*d = r + p (mod s), and then reads x at a = q + e with the offset e = (r + p - i*d) / s, the same for
every q. So each phase is a stride-1 correlation of x with its own taps at their offsets. Where every
offset of every phase lies in one window of 3 (e + P in {0, 1, 2} for one padding P >= 0), the s_h*s_w
phases of the 2-D map are ONE 3x3 stride-1 convolution of x, padded by (P_h, P_w), into s_h*s_w*C_out
channels (tap t = e + P of phase channel (o, r_h, r_w) holds w[c, o, i_h, i_w]; the other taps are
zero), followed by an interleaving copy (a pixel shuffle): y[o, q*s_h + r_h, b*s_w + r_w] = z[(o, r_h,
r_w), q, b]. A 4x4 kernel at stride 2, padding 1 has offsets {-1, 0} (r = 0) and {0, 1} (r = 1): 16
taps in a 3x3 window of 4 phases. The convolution runs by the Winograd F(4x4, 3x3) kernels, 36
multiplications per 16 outputs of a phase channel where the adjoint convolution multiplies 64.

Being linear maps with the same terms, the backward follows: dz = the un-shuffled dy (zero where a
phase row or column lies past the output), dx = the phase convolution's input gradient of dz, and the
weight gradient of the phase convolution holds every tap of dw exactly once (each kernel tap belongs to
one phase), gathered back. ``conv2d_backward`` computes both gradients in one pass. The bias belongs to
C_out, not to the phase channels: the shuffle adds it, and its gradient sums the phase channels' per C_out.

``fit`` says where this applies (2-D, groups 1, offsets in a window of 3, a padding whose convolution
covers every output row) and returns a ``Phases`` that the forward and backward share.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..checks import check_out, fail
from ..options import get as option
from ._jit import kernel
from .conv import conv2d_backward, conv2d_forward, grad_bias
from .conv_geometry import Geometry
from .conv_plan import Algorithm, Plan, plan as make_plan

__all__ = ["Phases", "axis_taps", "choose", "fit", "phase_weight", "gather_weight_grad", "forward", "backward"]

# "auto" takes the phases from this many kernel taps per output pixel (kh*kw / (s_h*s_w)): F(4x4, 3x3)
# multiplies 36/16 = 2.25 per output and input channel, the adjoint convolution that many
_AUTO_MIN_TAPS_PER_OUTPUT = 3


def axis_taps(kernel: int, stride: int, padding: int, dilation: int) -> list[tuple[int, int, int]]:
    """(phase r, kernel tap i, offset e) for every tap along one axis: tap i writes the output rows
    q*stride + r from x[q + e]."""
    taps = []
    for i in range(kernel):
        r = (i * dilation - padding) % stride
        taps.append((r, i, (r + padding - i * dilation) // stride))
    return taps


def _axis_padding(taps: list[tuple[int, int, int]], size: int, out: int, stride: int) -> int | None:
    """The 3x3 convolution's padding along one axis: the smallest P >= 0 that puts every offset in
    {-P, 1 - P, 2 - P} and gives the convolution (size + 2P - 2 rows) at least ceil(out / stride) rows;
    None where there is none."""
    offsets = [e for _, _, e in taps]
    rows = -(-out // stride)
    for pad in range(max(0, -min(offsets)), 3 - max(offsets)):
        if size + 2 * pad - 2 >= rows:
            return pad
    return None


@dataclass(frozen=True)
class Phases:
    """How one transposed convolution runs as a phase convolution: per axis the stride and the
    (phase, tap, offset) triples; the 3x3 convolution's geometry, output size and plan."""

    stride: tuple[int, int]
    taps_h: tuple[tuple[int, int, int], ...]
    taps_w: tuple[tuple[int, int, int], ...]
    geometry: Geometry      # stride 1, padding (P_h, P_w)
    conv_hw: tuple[int, int]  # the 3x3 convolution's output size (at least ceil(out / stride) per axis)
    plan: Plan              # the 3x3 convolution's plan
    index: tuple[np.ndarray, np.ndarray, np.ndarray] = field(compare=False)  # _index: each kernel tap's place

    @property
    def phase_count(self) -> int:
        return self.stride[0] * self.stride[1]


def fit(x_shape: tuple[int, ...], w_shape: tuple[int, ...], geometry: Geometry, out_hw: tuple[int, ...]
        ) -> Phases | None:
    """The ``Phases`` of ``y = conv_transpose2d(x, w)`` with x (n, c_in, h, w), w (c_in, c_out, kh, kw)
    and output size ``out_hw``, planned with the knobs in force; None where the phase convolution does
    not compute it (not 2-D, groups above 1, offsets beyond a 3x3 window, or output rows past those of
    the "same" 3x3 convolution, as some output_padding asks)."""
    if len(x_shape) != 4 or geometry.nd != 2 or geometry.groups != 1:
        return None
    taps = [axis_taps(k, s, p, d) for k, s, p, d in zip(w_shape[2:], geometry.stride, geometry.padding,
                                                       geometry.dilation)]
    pads = [_axis_padding(t, n, o, s) for t, n, o, s in zip(taps, x_shape[2:], out_hw, geometry.stride)]
    if None in pads:
        return None
    conv_geometry = Geometry((1, 1), tuple(pads), (1, 1), 1)
    conv_hw = tuple(n + 2 * p - 2 for n, p in zip(x_shape[2:], pads))
    channels = geometry.stride[0] * geometry.stride[1] * w_shape[1]
    plan = make_plan(tuple(x_shape), (channels, x_shape[1], 3, 3), conv_geometry)
    index = _index(taps[0], taps[1], geometry.stride, conv_geometry.padding)
    return Phases(tuple(geometry.stride), tuple(taps[0]), tuple(taps[1]), conv_geometry, conv_hw, plan, index)


def choose(x_shape: tuple[int, ...], w_shape: tuple[int, ...], geometry: Geometry, out_hw: tuple[int, ...],
           where: str) -> Phases | None:
    """How a transposed convolution runs under the ``conv_transpose_algorithm`` knob: its ``Phases``, or
    None for the adjoint of its convolution (always in 1-D and 3-D). "auto" takes the phases where they fit,
    the stride is above 1, the kernel has at least ``_AUTO_MIN_TAPS_PER_OUTPUT`` taps per output pixel and
    the 3x3 convolution runs by Winograd F(4x4, 3x3); "phases" wherever they fit (else a ValueError naming
    ``where``)."""
    chosen = option("conv_transpose_algorithm")
    if len(w_shape) != 4 or chosen == "adjoint" or (chosen == "auto" and (
            max(geometry.stride) == 1
            or math.prod(w_shape[2:]) < _AUTO_MIN_TAPS_PER_OUTPUT * math.prod(geometry.stride))):
        return None
    phases = fit(x_shape, w_shape, geometry, out_hw)
    if chosen == "phases":
        if phases is None:
            raise fail(f"{where}: conv_transpose_algorithm='phases'",
                       "a 2-D transposed convolution without groups whose output pixels read within 3 input rows "
                       "and columns, covered by a 3x3 convolution of the input",
                       f"kernel {tuple(w_shape[2:])}, stride {geometry.stride}, padding {geometry.padding}, "
                       f"dilation {geometry.dilation}, groups {geometry.groups}",
                       "use 'auto' or 'adjoint' for this layer")
        return phases
    return phases if phases is not None and phases.plan.algorithm is Algorithm.WINOGRAD4 else None


def _index(taps_h, taps_w, stride: tuple[int, int], pads: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """For every kernel tap (i_h, i_w), flattened: its phase (r_h*s_w + r_w) and its 3x3 tap (t_h, t_w)."""
    h = sorted(taps_h, key=lambda t: t[1])
    w = sorted(taps_w, key=lambda t: t[1])
    phase = np.array([[rh * stride[1] + rw for rw, _, _ in w] for rh, _, _ in h]).ravel()
    t_h = np.repeat([e + pads[0] for _, _, e in h], len(w))
    t_w = np.tile([e + pads[1] for _, _, e in w], len(h))
    return phase, t_h, t_w


def phase_weight(w: np.ndarray, phases: Phases) -> np.ndarray:
    """The 3x3 convolution's weight: w (c_in, c_out, kh, kw) -> (c_out * s_h * s_w, c_in, 3, 3), phase
    channel (o, r_h, r_w) = o*s_h*s_w + r_h*s_w + r_w, its tap (e_h + P_h, e_w + P_w) holding w[:, o, i_h,
    i_w]; the other taps zero."""
    c_in, c_out, kh, kw = w.shape
    phase, t_h, t_w = phases.index
    embedded = np.zeros((c_out, phases.phase_count, c_in, 3, 3), dtype=w.dtype)
    # advanced indices apart: the tap axis comes first, (kh*kw, c_out, c_in)
    embedded[:, phase, :, t_h, t_w] = w.reshape(c_in, c_out, kh * kw).transpose(2, 1, 0)
    return embedded.reshape(c_out * phases.phase_count, c_in, 3, 3)


def gather_weight_grad(dw_phase: np.ndarray, phases: Phases, kernel_hw: tuple[int, int]) -> np.ndarray:
    """The adjoint of ``phase_weight``: (c_out * s_h * s_w, c_in, 3, 3) -> (c_in, c_out, kh, kw), each
    kernel tap read from its one phase channel and 3x3 tap."""
    c_in = dw_phase.shape[1]
    c_out = dw_phase.shape[0] // phases.phase_count
    phase, t_h, t_w = phases.index
    picked = dw_phase.reshape(c_out, phases.phase_count, c_in, 3, 3)[:, phase, :, t_h, t_w]  # (kh*kw, c_out, c_in)
    return np.ascontiguousarray(picked.transpose(2, 1, 0)).reshape((c_in, c_out) + tuple(kernel_hw))


# -- the interleaving copies --------------------------------------------------------------------
@kernel
def _shuffle(z, y, bias, p0, p1, sh, sw):
    """y[n, o, q*sh + rh, b*sw + rw] = z[n, (o*sh + rh)*sw + rw, q, b] + bias[o] for planes p = n*c_out + o
    in [p0, p1). Flat unsigned indices (no wraparound checks) let LLVM vectorise the interleaving of a
    row's two sources at stride 2."""
    c_out, h_out, w_out = y.shape[1], y.shape[2], y.shape[3]
    rows, cols = z.shape[2], z.shape[3]
    zf, yf = z.reshape(-1), y.reshape(-1)
    plane = rows * cols
    u1, u2, usw = np.uint64(1), np.uint64(2), np.uint64(sw)
    pairs = sw == 2 and w_out % 2 == 0
    for p in range(p0, p1):
        shift = bias[p % c_out]
        for row in range(h_out):
            q, rh = row // sh, row % sh
            d = np.uint64((p * h_out + row) * w_out)
            first = np.uint64((p * sh + rh) * sw * plane + q * cols)
            if pairs:
                second = first + np.uint64(plane)
                for b in range(np.uint64(w_out // 2)):
                    yf[d + u2 * b] = zf[first + b] + shift
                    yf[d + u2 * b + u1] = zf[second + b] + shift
                continue
            for rw in range(sw):
                src, urw = first + np.uint64(rw * plane), np.uint64(rw)
                for b in range(np.uint64((w_out - rw + sw - 1) // sw)):
                    yf[d + b * usw + urw] = zf[src + b] + shift


@kernel
def _unshuffle(dy, dz, p0, p1, sh, sw):
    """dz[n, (o*sh + rh)*sw + rw, q, b] = dy[n, o, q*sh + rh, b*sw + rw], zero past dy's edges, for
    planes p = n*c_out + o in [p0, p1)."""
    c_out, h_out, w_out = dy.shape[1], dy.shape[2], dy.shape[3]
    rows, cols = dz.shape[2], dz.shape[3]
    for p in range(p0, p1):
        n, o = p // c_out, p % c_out
        for rh in range(sh):
            for rw in range(sw):
                plane = dz[n, (o * sh + rh) * sw + rw]
                count = (w_out - rw + sw - 1) // sw
                for q in range(rows):
                    dst = plane[q]
                    row = q * sh + rh
                    if row < h_out:
                        src = dy[n, o, row]
                        for b in range(count):
                            dst[b] = src[b * sw + rw]
                        for b in range(count, cols):
                            dst[b] = 0
                    else:
                        for b in range(cols):
                            dst[b] = 0


# -- entry points ---------------------------------------------------------------------------------
def forward(x: np.ndarray, w: np.ndarray, phases: Phases, out_hw: tuple[int, int],
            bias: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """``y = conv_transpose2d(x, w) + bias``. Shapes: x (n, c_in, h, w), w (c_in, c_out, kh, kw), bias
    (c_out,) or None -> (n, c_out, *out_hw). ``out``: an array to write y into (checks.check_out)."""
    n, c_out = x.shape[0], w.shape[1]
    shape = (n, c_out) + tuple(out_hw)
    y = np.empty(shape, dtype=x.dtype) if out is None else check_out(out, shape, x.dtype, "conv_transpose phases",
                                                                       x, w, bias)
    z = conv2d_forward(x, phase_weight(w, phases), phases.geometry, phases.plan)
    shift = np.zeros(c_out, dtype=x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    sh, sw = phases.stride
    # a pure copy stays on the caller's thread, as nearest up-sampling does (a hand-off costs more than half)
    _shuffle(z, y, shift, 0, n * c_out, sh, sw)
    return y


def backward(dy: np.ndarray, w: np.ndarray, x: np.ndarray, phases: Phases, *, need_dx: bool = True,
             need_dw: bool = True, need_db: bool = False
             ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The gradients of ``y = conv_transpose2d(x, w) + b``: (dx, dw, db), each None unless asked for.
    Shapes: dy (n, c_out, *out_hw), w (c_in, c_out, kh, kw), x (n, c_in, h, w) -> dx like x, dw like w,
    db (c_out,): the phase channels' bias gradients (``conv2d_backward``'s, from its pass over dz where it
    sums them there) added per output channel."""
    if not (need_dx or need_dw):
        return None, None, (grad_bias(dy) if need_db else None)
    n, c_out = dy.shape[:2]
    dz = np.empty((n, c_out * phases.phase_count) + phases.conv_hw, dtype=dy.dtype)
    sh, sw = phases.stride
    _unshuffle(dy, dz, 0, n * c_out, sh, sw)
    # w only gives the shape when dx is not needed
    w_phase = phase_weight(w, phases) if need_dx else np.empty((dz.shape[1], x.shape[1], 3, 3), dtype=dy.dtype)
    dx, dw_phase, db_phase = conv2d_backward(x, dz, w_phase, phases.geometry, phases.plan, need_dx=need_dx,
                                             need_dw=need_dw, need_db=need_db)
    return (dx, gather_weight_grad(dw_phase, phases, w.shape[2:]) if need_dw else None,
            db_phase.reshape(c_out, phases.phase_count).sum(axis=1) if need_db else None)
