"""Convolution, transposed convolution (1-, 2- and 3-D), padding and the explicit convolution matrix.

    y = conv2d(x, w)              y[n,o,a,b] = b[o] + sum_{c,i,j} w[o,c,i,j] x[n,c,a*s-p+i*d, b*s-p+j*d]
    z = conv_transpose2d(y, w)    the adjoint map: <conv2d(x, w), y> == <x, conv_transpose2d(y, w)>

conv1d / conv3d (and their transposes) are the same sum over one or three spatial
axes. Conventions are PyTorch's: cross-correlation (the kernel is not flipped), NCL,
NCHW and NCDHW, weights (c_out, c_in/groups, *k) for conv and (c_in, c_out/groups, *k)
for conv_transpose, the same output sizes. One generic implementation (``_conv``,
``_conv_transpose``, over ``kernels.conv_nd``) serves every dimension. Every function validates its arguments
(``ShapeError``, a ValueError, with the offending shapes) and then trusts the kernels.

dtypes: float32 and float64 are computed in their own precision; integer input is
converted to float32. When x and w differ in precision both are promoted to float64
(NumPy's rule), so that mixing never silently loses precision. Non-contiguous
arrays are copied, not refused.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import (LAYOUTS, as_float_array, check_allocation, check_kernel_nonempty, check_ndim, check_nonneg_int,
                      check_positive_int, check_shape_tuple, fail, spatial_tuple, TUPLE_NAMES)
from ..kernels import conv_geometry as _sizes
from ..kernels import conv_nd as knd
from ..kernels import conv_transpose as ktranspose
from ..kernels import conv_transpose_phases as kphases
from ..kernels.conv import release_scratch  # frees the scratch buffers this thread's convolutions keep between calls
from ..kernels.conv_geometry import Geometry
from ..kernels.conv import scratch_scope  # noqa: F401 (the kernels' scratch freed after a run: restore)
from ..kernels.conv_plan import Algorithm, Plan, plan as conv_plan
from .conv_pad import pad, pad_adjoint
from .conv_matrix import conv_matrix

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv2d_weight_grad",
    "conv_output_size",
    "conv_transpose_output_size",
    "conv_matrix",
    "pad",
    "pad_adjoint",
    "Geometry",
    "Algorithm",
    "Plan",
    "conv_plan",
    "release_scratch",
]


# -- output sizes (validated; the kernels use the plain formulas in kernels.conv_geometry) -------
def _axis_arguments(where: str, size: int, kernel_size: int, stride: int, padding: int,
                    dilation: int) -> tuple[int, int, int, int, int]:
    """One axis's geometry as ints, each in its range (padding may be 0, the rest positive)."""
    return (check_positive_int(size, where, "size"), check_positive_int(kernel_size, where, "kernel_size"),
            check_positive_int(stride, where, "stride"), check_nonneg_int(padding, where, "padding"),
            check_positive_int(dilation, where, "dilation"))


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis, as PyTorch computes it:
    ``floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``.

    Refuses (ShapeError) a kernel that does not fit the padded input."""
    where = "conv_output_size"
    size, kernel_size, stride, padding, dilation = _axis_arguments(where, size, kernel_size, stride, padding,
                                                                   dilation)
    span = dilation * (kernel_size - 1) + 1
    if span > size + 2 * padding:
        raise fail(where, f"kernel_size {kernel_size} (spanning {span} with dilation {dilation}) to fit the padded "
                   f"size {size} + 2*{padding}", f"size={size}, kernel_size={kernel_size}",
                   "use more padding or a smaller kernel")
    return _sizes.conv_output_size(size, kernel_size, stride, padding, dilation)


def conv_transpose_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """Output length of a transposed convolution along one axis, as PyTorch computes it:
    ``(size - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1``.

    Refuses (ShapeError) an output_padding not below stride or dilation, and a size below 1."""
    where = "conv_transpose_output_size"
    size, kernel_size, stride, padding, dilation = _axis_arguments(where, size, kernel_size, stride, padding,
                                                                   dilation)
    output_padding = check_nonneg_int(output_padding, where, "output_padding")
    if output_padding >= stride and output_padding >= dilation:
        raise fail(where, "output_padding smaller than stride or dilation",
                   f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
    out = _sizes.conv_transpose_output_size(size, kernel_size, stride, padding, output_padding, dilation)
    if out < 1:
        raise fail(where, "a positive output size", f"{out} from size={size}, padding={padding}", "reduce padding")
    return out


# -- validation shared by the functions and the layers -------------------------------------
_AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


_KERNEL_AXES = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}
WEIGHT = "C_out, C_in/groups"  # a convolution's weight; a transposed one's is (C_in, C_out/groups, *k)


def as_operands(x: Any, w: Any, where: str, dtype: Any = None, nd: int = 2, w_name: str = "w",
                w_layout: str | None = WEIGHT) -> tuple[np.ndarray, np.ndarray]:
    """x and w as contiguous (nd + 2)-d float arrays of one dtype (see the module docstring).

    ``w_name`` and ``w_layout`` (its leading axes, or None for x's layout) say in messages what the
    second operand is: a weight, or ``dy`` for a weight gradient."""
    x = as_float_array(x, where, "x", dtype)
    w = as_float_array(w, where, w_name, dtype)
    if x.dtype != w.dtype:
        x, w = x.astype(np.float64), w.astype(np.float64)
    check_ndim(x, nd + 2, where, "x", layout=LAYOUTS[nd])
    check_ndim(w, nd + 2, where, w_name, layout=LAYOUTS[nd] if w_layout is None else f"{w_layout}, {_KERNEL_AXES[nd]}")
    return x, w


def resolve_padding(padding: Any, kernel: tuple[int, ...], dilation: tuple[int, ...],
                    stride: tuple[int, ...], where: str) -> tuple[int, ...]:
    """``padding`` as one int per spatial dim; ``"same"`` keeps the size (odd kernels, stride 1)."""
    nd = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * nd
        if padding != "same":
            raise fail(where, f"padding an int, {TUPLE_NAMES[nd]}, 'same' or 'valid'", f"padding={padding!r}")
        if any(s != 1 for s in stride):
            raise fail(where, "stride 1 with padding='same'", f"stride={stride}",
                       "compute the padding yourself for strided convolutions")
        spans = [d * (k - 1) for k, d in zip(kernel, dilation)]
        if any(s % 2 for s in spans):
            how = "F.pad(x, (left, right, top, bottom))" if nd == 2 else "np.pad"
            raise fail(where, "an odd (dilated) kernel size with padding='same'", f"kernel_size={kernel}",
                       f"pad asymmetrically with {how} and use padding=0")
        return tuple(s // 2 for s in spans)
    return spatial_tuple(padding, nd, where, "padding", minimum=0)


def check_groups(c_in: int, c_out: int, groups: Any, where: str) -> int:
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise fail(where, "groups a positive integer", f"groups={groups!r}")
    groups = int(groups)
    if c_in % groups or c_out % groups:
        raise fail(where, f"in_channels and out_channels divisible by groups ({groups})",
                   f"in_channels={c_in}, out_channels={c_out}")
    return groups


def check_kernel_fits(size: tuple[int, ...], kernel: tuple[int, ...], geometry: Geometry, where: str) -> tuple[int, ...]:
    """The spatial output size of a convolution, refusing a kernel larger than the padded input."""
    names = _AXIS_NAMES[len(kernel)]
    for name, n, k, p, d in zip(names, size, kernel, geometry.padding, geometry.dilation):
        if d * (k - 1) + 1 > n + 2 * p:
            raise fail(where, f"the (dilated) kernel {name} {d * (k - 1) + 1} to fit the padded input "
                       f"{name} {n} + 2*{p}", f"input size {tuple(size)}, kernel {tuple(kernel)}",
                       "use more padding or a smaller kernel")
    return _sizes.output_size(tuple(size), tuple(kernel), geometry)


def geometry_of(stride: Any, padding: Any, dilation: Any, groups: int, kernel: tuple[int, ...], where: str) -> Geometry:
    nd = len(kernel)
    check_kernel_nonempty(kernel, where)
    stride = spatial_tuple(stride, nd, where, "stride", minimum=1)
    dilation = spatial_tuple(dilation, nd, where, "dilation", minimum=1)
    return Geometry(stride, resolve_padding(padding, kernel, dilation, stride, where), dilation, groups)


def check_output_padding(output_padding: Any, geometry: Geometry, where: str) -> tuple[int, ...]:
    out_pad = spatial_tuple(output_padding, geometry.nd, where, "output_padding", minimum=0)
    for op, s, d in zip(out_pad, geometry.stride, geometry.dilation):
        if op >= s and op >= d:
            raise fail(where, "output_padding smaller than stride or dilation", f"output_padding={out_pad}, "
                       f"stride={geometry.stride}, dilation={geometry.dilation}",
                       "output_padding only picks among the input sizes that map to the same output size")
    return out_pad


def transpose_output_size(size: tuple[int, ...], kernel: tuple[int, ...], geometry: Geometry, output_padding: Any,
                          where: str) -> tuple[int, ...]:
    """The spatial output size of a transposed convolution, refusing a size below 1."""
    out_pad = check_output_padding(output_padding, geometry, where)
    out = tuple(_sizes.conv_transpose_output_size(n, k, s, p, op, d) for n, k, s, p, op, d in
                zip(size, kernel, geometry.stride, geometry.padding, out_pad, geometry.dilation))
    if min(out) < 1:
        raise fail(where, "a positive output size", f"output size {out} from input size {tuple(size)}",
                   "reduce padding")
    return out


def check_sizes(x: np.ndarray, geometry: Geometry, out: tuple[int, ...], c_out: int, where: str) -> None:
    """Refuse, before allocating, a padded input or an output beyond this machine's memory."""
    padded = tuple(n + 2 * p for n, p in zip(x.shape[2:], geometry.padding))
    check_allocation(x.shape[:2] + padded, x.dtype, where, "the padded input")
    check_allocation((x.shape[0], c_out) + tuple(out), x.dtype, where, "the output")


def as_bias(b: Any, c_out: int, dtype: np.dtype, where: str) -> np.ndarray | None:
    if b is None:
        return None
    b = as_float_array(b, where, "b", dtype)
    if b.shape != (c_out,):
        raise fail(where, f"b of shape ({c_out},) (one value per output channel)", f"b.shape == {b.shape}")
    return b


# -- one implementation for every dimension --------------------------------------------------------
def _conv(nd: int, x: Any, w: Any, b: Any, stride: Any, padding: Any, dilation: Any, groups: Any) -> np.ndarray:
    where = f"conv{nd}d"
    x, w = as_operands(x, w, where, nd=nd)
    c_out, c_in_g = w.shape[:2]
    groups = check_groups(x.shape[1], c_out, groups, where)
    if x.shape[1] != c_in_g * groups:
        raise fail(where, f"x.shape[1] == w.shape[1] * groups ({c_in_g} * {groups})",
                   f"x.shape == {x.shape}, w.shape == {w.shape}")
    geometry = geometry_of(stride, padding, dilation, groups, w.shape[2:], where)
    out = check_kernel_fits(x.shape[2:], w.shape[2:], geometry, where)
    check_sizes(x, geometry, out, c_out, where)
    return knd.forward(x, w, geometry, bias=as_bias(b, c_out, x.dtype, where))


def _conv_transpose(nd: int, x: Any, w: Any, b: Any, stride: Any, padding: Any, output_padding: Any,
                    dilation: Any, groups: Any) -> np.ndarray:
    where = f"conv_transpose{nd}d"
    x, w = as_operands(x, w, where, nd=nd, w_layout="C_in, C_out/groups")
    c_in, c_out_g = w.shape[:2]
    groups = check_groups(c_in, c_in, groups, where)  # c_out = c_out_g * groups is always divisible
    if x.shape[1] != c_in:
        raise fail(where, f"x.shape[1] == w.shape[0] ({c_in})", f"x.shape == {x.shape}, w.shape == {w.shape}",
                   "a transposed weight is (in_channels, out_channels/groups, *kernel_size)")
    if isinstance(padding, str):
        raise fail(where, f"padding an int or {TUPLE_NAMES[nd]}", f"padding={padding!r}")
    geometry = geometry_of(stride, padding, dilation, groups, w.shape[2:], where)
    out = transpose_output_size(x.shape[2:], w.shape[2:], geometry, output_padding, where)
    check_sizes(x, geometry, out, c_out_g * groups, where)
    b = as_bias(b, c_out_g * groups, x.dtype, where)
    return transpose_forward(x, w, b, geometry, transpose_plan(x.shape, w.shape, geometry, out, where), out)


# -- the layers' road into the kernels: arrays checked by the layer, one Plan per call ------------
# A layer plans in its forward (``conv_plan(x.shape, w.shape, geometry)``; for a transposed layer,
# the shapes of the convolution it is the adjoint of) and passes that plan to its backward.
conv_forward = knd.forward
conv_grad_input = knd.grad_input
conv_grad_weight = knd.grad_weight
conv_backward = knd.backward
conv_grad_bias = knd.grad_bias
# A transposed layer plans once in its forward (``transpose_plan``: by phases, or as the adjoint of the
# convolution it transposes) and runs both passes by that plan (``kernels.conv_transpose``).
transpose_plan = ktranspose.plan
transpose_forward = ktranspose.forward
transpose_backward = ktranspose.backward
transpose_phases = kphases.choose  # the phases "auto" takes, or None (benchmarks report the plan)


# -- public functions ---------------------------------------------------------------------------
def conv1d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> np.ndarray:
    """1-D cross-correlation, as ``torch.nn.functional.conv1d``.

    Shapes: x (N, C_in, L), w (C_out, C_in/groups, k), b (C_out,) or None -> (N, C_out, L_out)
    with L_out = conv_output_size(L, k, stride, padding, dilation); ``padding`` may be ``"same"``.
    """
    return _conv(1, x, w, b, stride, padding, dilation, groups)


def conv2d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> np.ndarray:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    Shapes: x (N, C_in, H, W), w (C_out, C_in/groups, kH, kW), b (C_out,) or None
    -> (N, C_out, H_out, W_out) with H_out = conv_output_size(H, kH, stride, padding, dilation).
    ``padding`` may be an int, an (h, w) pair, ``"valid"`` or ``"same"`` (stride 1, odd kernels).
    """
    return _conv(2, x, w, b, stride, padding, dilation, groups)


def conv3d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> np.ndarray:
    """3-D cross-correlation, as ``torch.nn.functional.conv3d`` (a sum of 2-D ones over depth taps).

    Shapes: x (N, C_in, D, H, W), w (C_out, C_in/groups, kD, kH, kW), b (C_out,) or None
    -> (N, C_out, D_out, H_out, W_out); ints or (d, h, w) triples; ``padding`` may be ``"same"``.
    """
    return _conv(3, x, w, b, stride, padding, dilation, groups)


def conv_transpose1d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1) -> np.ndarray:
    """Transposed 1-D convolution (the adjoint of conv1d), as ``torch.nn.functional.conv_transpose1d``.

    Shapes: x (N, C_in, L), w (C_in, C_out/groups, k), b (C_out,) or None -> (N, C_out, L_out) with
    L_out = (L - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1.
    """
    return _conv_transpose(1, x, w, b, stride, padding, output_padding, dilation, groups)


def conv_transpose2d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1) -> np.ndarray:
    """Transposed convolution (the adjoint of conv2d), as ``torch.nn.functional.conv_transpose2d``.

    Shapes: x (N, C_in, H, W), w (C_in, C_out/groups, kH, kW), b (C_out,) or None
    -> (N, C_out, H_out, W_out) with
    H_out = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1.
    """
    return _conv_transpose(2, x, w, b, stride, padding, output_padding, dilation, groups)


def conv_transpose3d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1) -> np.ndarray:
    """Transposed 3-D convolution (the adjoint of conv3d), as ``torch.nn.functional.conv_transpose3d``.

    Shapes: x (N, C_in, D, H, W), w (C_in, C_out/groups, kD, kH, kW), b (C_out,) or None
    -> (N, C_out, D_out, H_out, W_out), each side by the conv_transpose_output_size formula.
    """
    return _conv_transpose(3, x, w, b, stride, padding, output_padding, dilation, groups)


def conv2d_weight_grad(x: Any, weight_shape: tuple[int, int, int, int], dy: Any, stride: Any = 1,
                       padding: Any = 0, dilation: Any = 1, groups: int = 1) -> np.ndarray:
    """Gradient of ``sum(dy * conv2d(x, w))`` with respect to w (``torch.nn.grad.conv2d_weight``).

    Shapes: x (N, C_in, H, W), dy (N, C_out, H_out, W_out) -> weight_shape (C_out, C_in/groups, kH, kW).
    Useful for learning a filter (blind deconvolution) without building a layer.
    """
    where = "conv2d_weight_grad"
    x, dy = as_operands(x, dy, where, w_name="dy", w_layout=None)
    c_out, c_in_g, kh, kw = check_shape_tuple(weight_shape, 4, where, "weight_shape")
    groups = check_groups(x.shape[1], c_out, groups, where)
    if x.shape[1] != c_in_g * groups or dy.shape[1] != c_out:
        raise fail(where, f"x.shape[1] == {c_in_g * groups} and dy.shape[1] == {c_out}",
                   f"x.shape == {x.shape}, dy.shape == {dy.shape}")
    geometry = geometry_of(stride, padding, dilation, groups, (kh, kw), where)
    out_hw = check_kernel_fits(x.shape[2:], (kh, kw), geometry, where)
    if dy.shape[0] != x.shape[0] or tuple(dy.shape[2:]) != out_hw:
        raise fail(where, f"dy of shape {(x.shape[0], c_out) + out_hw}", f"dy.shape == {dy.shape}")
    return knd.grad_weight(x, dy, (kh, kw), geometry)
