"""Convolution, transposed convolution, padding and the explicit convolution matrix.

    y = conv2d(x, w)              y[n,o,a,b] = b[o] + sum_{c,i,j} w[o,c,i,j] x[n,c,a*s-p+i*d, b*s-p+j*d]
    z = conv_transpose2d(y, w)    the adjoint map: <conv2d(x, w), y> == <x, conv_transpose2d(y, w)>

Conventions are PyTorch's: cross-correlation (the kernel is not flipped), NCHW,
weights (c_out, c_in/groups, kh, kw) for conv2d and (c_in, c_out/groups, kh, kw) for
conv_transpose2d, the same output sizes. Every function validates its arguments
(``ShapeError``, a ValueError, with the offending shapes) and then trusts the kernels.

dtypes: float32 and float64 are computed in their own precision; integer input is
converted to float32. When x and w differ in precision both are promoted to float64
(NumPy's rule), so that mixing never silently loses precision. Non-contiguous
arrays are copied, not refused.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_ndim, check_nonneg_int, check_positive_int, fail, pair
from ..kernels import conv as kconv
from ..kernels import conv as _sizes
from ..kernels.conv import Geometry
from .conv_pad import pad, pad_adjoint
from .conv_matrix import conv_matrix

__all__ = [
    "conv2d",
    "conv_transpose2d",
    "conv2d_weight_grad",
    "conv_output_size",
    "conv_transpose_output_size",
    "conv_matrix",
    "pad",
    "pad_adjoint",
]


# -- output sizes (validated; the kernels use the plain formulas in kernels.conv) ---------------
def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis, as PyTorch computes it:
    ``floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``.

    Refuses (ShapeError) a kernel that does not fit the padded input."""
    where = "conv_output_size"
    size = check_positive_int(size, where, "size")
    kernel_size = check_positive_int(kernel_size, where, "kernel_size")
    stride = check_positive_int(stride, where, "stride")
    padding = check_nonneg_int(padding, where, "padding")
    dilation = check_positive_int(dilation, where, "dilation")
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
    size = check_positive_int(size, where, "size")
    kernel_size = check_positive_int(kernel_size, where, "kernel_size")
    stride = check_positive_int(stride, where, "stride")
    padding = check_nonneg_int(padding, where, "padding")
    output_padding = check_nonneg_int(output_padding, where, "output_padding")
    dilation = check_positive_int(dilation, where, "dilation")
    if output_padding >= stride and output_padding >= dilation:
        raise fail(where, "output_padding smaller than stride or dilation",
                   f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
    out = _sizes.conv_transpose_output_size(size, kernel_size, stride, padding, output_padding, dilation)
    if out < 1:
        raise fail(where, "a positive output size", f"{out} from size={size}, padding={padding}", "reduce padding")
    return out


# -- validation shared by the functions and the layers -------------------------------------
def as_operands(x: Any, w: Any, where: str, dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """x and w as contiguous 4-d float arrays of one dtype (see the module docstring)."""
    x = as_float_array(x, where, "x", dtype)
    w = as_float_array(w, where, "w", dtype)
    if x.dtype != w.dtype:
        x, w = x.astype(np.float64), w.astype(np.float64)
    check_ndim(x, 4, where, "x", layout="N, C, H, W")
    check_ndim(w, 4, where, "w", layout="weight")
    return x, w


def resolve_padding(padding: Any, kernel_hw: tuple[int, int], dilation: tuple[int, int],
                    stride: tuple[int, int], where: str) -> tuple[int, int]:
    """``padding`` as an (h, w) pair; ``"same"`` keeps the size (odd kernels, stride 1)."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding != "same":
            raise fail(where, "padding an int, an (h, w) pair, 'same' or 'valid'", f"padding={padding!r}")
        if stride != (1, 1):
            raise fail(where, "stride 1 with padding='same'", f"stride={stride}",
                       "compute the padding yourself for strided convolutions")
        spans = [d * (k - 1) for k, d in zip(kernel_hw, dilation)]
        if any(s % 2 for s in spans):
            raise fail(where, "an odd (dilated) kernel size with padding='same'", f"kernel_size={kernel_hw}",
                       "pad asymmetrically with F.pad(x, (left, right, top, bottom)) and use padding=0")
        return spans[0] // 2, spans[1] // 2
    return pair(padding, where, "padding", minimum=0)


def check_groups(c_in: int, c_out: int, groups: Any, where: str) -> int:
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise fail(where, "groups a positive integer", f"groups={groups!r}")
    groups = int(groups)
    if c_in % groups or c_out % groups:
        raise fail(where, f"in_channels and out_channels divisible by groups ({groups})",
                   f"in_channels={c_in}, out_channels={c_out}")
    return groups


def check_kernel_fits(size_hw: tuple[int, int], kernel_hw: tuple[int, int], geometry: Geometry,
                      where: str) -> tuple[int, int]:
    """The (h_out, w_out) of a convolution, refusing a kernel larger than the padded input."""
    pads = (geometry.pad_h, geometry.pad_w)
    dilations = (geometry.dilation_h, geometry.dilation_w)
    for axis, (size, k, p, d) in enumerate(zip(size_hw, kernel_hw, pads, dilations)):
        if d * (k - 1) + 1 > size + 2 * p:
            name = "height" if axis == 0 else "width"
            raise fail(where, f"the (dilated) kernel {name} {d * (k - 1) + 1} to fit the padded input "
                       f"{name} {size} + 2*{p}", f"input size {tuple(size_hw)}, kernel {tuple(kernel_hw)}",
                       "use more padding or a smaller kernel")
    return (_sizes.conv_output_size(size_hw[0], kernel_hw[0], geometry.stride_h, pads[0], dilations[0]),
            _sizes.conv_output_size(size_hw[1], kernel_hw[1], geometry.stride_w, pads[1], dilations[1]))


def geometry_of(stride: Any, padding: Any, dilation: Any, groups: int, kernel_hw: tuple[int, int],
                where: str) -> Geometry:
    stride = pair(stride, where, "stride", minimum=1)
    dilation = pair(dilation, where, "dilation", minimum=1)
    pad_hw = resolve_padding(padding, kernel_hw, dilation, stride, where)
    return Geometry(stride[0], stride[1], pad_hw[0], pad_hw[1], dilation[0], dilation[1], groups)


def check_output_padding(output_padding: Any, geometry: Geometry, where: str) -> tuple[int, int]:
    out_pad = pair(output_padding, where, "output_padding", minimum=0)
    strides = (geometry.stride_h, geometry.stride_w)
    dilations = (geometry.dilation_h, geometry.dilation_w)
    for op, s, d in zip(out_pad, strides, dilations):
        if op >= s and op >= d:
            raise fail(where, "output_padding smaller than stride or dilation", f"output_padding={out_pad}, "
                       f"stride={strides}, dilation={dilations}",
                       "output_padding only picks among the input sizes that map to the same output size")
    return out_pad


def as_bias(b: Any, c_out: int, dtype: np.dtype, where: str) -> np.ndarray | None:
    if b is None:
        return None
    b = as_float_array(b, where, "b", dtype)
    if b.shape != (c_out,):
        raise fail(where, f"b of shape ({c_out},) (one value per output channel)", f"b.shape == {b.shape}")
    return b


def add_bias(y: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    if b is not None:
        y += b[None, :, None, None]
    return y


# -- public functions ---------------------------------------------------------------------------
def conv2d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> np.ndarray:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    Shapes: x (N, C_in, H, W), w (C_out, C_in/groups, kH, kW), b (C_out,) or None
    -> (N, C_out, H_out, W_out) with H_out = conv_output_size(H, kH, stride, padding, dilation).
    ``padding`` may be an int, an (h, w) pair, ``"valid"`` or ``"same"`` (stride 1, odd kernels).
    """
    where = "conv2d"
    x, w = as_operands(x, w, where)
    c_out, c_in_g, kh, kw = w.shape
    groups = check_groups(x.shape[1], c_out, groups, where)
    if x.shape[1] != c_in_g * groups:
        raise fail(where, f"x.shape[1] == w.shape[1] * groups ({c_in_g} * {groups})",
                   f"x.shape == {x.shape}, w.shape == {w.shape}")
    geometry = geometry_of(stride, padding, dilation, groups, (kh, kw), where)
    check_kernel_fits(x.shape[2:], (kh, kw), geometry, where)
    b = as_bias(b, c_out, x.dtype, where)
    return kconv.conv2d_forward(x, w, geometry, bias=b)


def conv_transpose2d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1) -> np.ndarray:
    """Transposed convolution (the adjoint of conv2d), as ``torch.nn.functional.conv_transpose2d``.

    Shapes: x (N, C_in, H, W), w (C_in, C_out/groups, kH, kW), b (C_out,) or None
    -> (N, C_out, H_out, W_out) with
    H_out = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1.
    """
    where = "conv_transpose2d"
    x, w = as_operands(x, w, where)
    c_in, c_out_g, kh, kw = w.shape
    groups = check_groups(c_in, c_in, groups, where)  # c_out = c_out_g * groups is always divisible
    if x.shape[1] != c_in:
        raise fail(where, f"x.shape[1] == w.shape[0] ({c_in})", f"x.shape == {x.shape}, w.shape == {w.shape}",
                   "a transposed weight is (in_channels, out_channels/groups, kH, kW)")
    if isinstance(padding, str):
        raise fail(where, "padding an int or an (h, w) pair", f"padding={padding!r}")
    geometry = geometry_of(stride, padding, dilation, groups, (kh, kw), where)
    out_hw = transpose_output_hw(x.shape[2:], (kh, kw), geometry, output_padding, where)
    b = as_bias(b, c_out_g * groups, x.dtype, where)
    return add_bias(kconv.conv2d_grad_input(x, w, out_hw, geometry), b)


def transpose_output_hw(size_hw: tuple[int, int], kernel_hw: tuple[int, int], geometry: Geometry,
                        output_padding: Any, where: str) -> tuple[int, int]:
    out_pad = check_output_padding(output_padding, geometry, where)
    out_hw = (_sizes.conv_transpose_output_size(size_hw[0], kernel_hw[0], geometry.stride_h, geometry.pad_h,
                                                out_pad[0], geometry.dilation_h),
              _sizes.conv_transpose_output_size(size_hw[1], kernel_hw[1], geometry.stride_w, geometry.pad_w,
                                                out_pad[1], geometry.dilation_w))
    if min(out_hw) < 1:
        raise fail(where, "a positive output size", f"output size {out_hw} from input size {tuple(size_hw)}",
                   "reduce padding")
    return out_hw


def conv2d_weight_grad(x: Any, weight_shape: tuple[int, int, int, int], dy: Any, stride: Any = 1,
                       padding: Any = 0, dilation: Any = 1, groups: int = 1) -> np.ndarray:
    """Gradient of ``sum(dy * conv2d(x, w))`` with respect to w (``torch.nn.grad.conv2d_weight``).

    Shapes: x (N, C_in, H, W), dy (N, C_out, H_out, W_out) -> weight_shape (C_out, C_in/groups, kH, kW).
    Useful for learning a filter (blind deconvolution) without building a layer.
    """
    where = "conv2d_weight_grad"
    x, dy = as_operands(x, dy, where)
    c_out, c_in_g, kh, kw = (int(v) for v in weight_shape)
    groups = check_groups(x.shape[1], c_out, groups, where)
    if x.shape[1] != c_in_g * groups or dy.shape[1] != c_out:
        raise fail(where, f"x.shape[1] == {c_in_g * groups} and dy.shape[1] == {c_out}",
                   f"x.shape == {x.shape}, dy.shape == {dy.shape}")
    geometry = geometry_of(stride, padding, dilation, groups, (kh, kw), where)
    out_hw = check_kernel_fits(x.shape[2:], (kh, kw), geometry, where)
    if dy.shape[0] != x.shape[0] or tuple(dy.shape[2:]) != out_hw:
        raise fail(where, f"dy of shape {(x.shape[0], c_out) + out_hw}", f"dy.shape == {dy.shape}")
    return kconv.conv2d_grad_weight(x, dy, (kh, kw), geometry)
