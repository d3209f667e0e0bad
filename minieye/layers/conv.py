"""Convolution layers: Conv2D and its adjoint ConvTranspose2D ("deconvolution").

    Conv2D:          y = conv2d(x, W) + b          dx = conv_transpose2d(dy, W)   dW = sum_n dy_n (*) x_n
    ConvTranspose2D: y = conv_transpose2d(x, W) + b   dx = conv2d(dy, W)          dW the same correlation, roles swapped

Both call the same three kernels (``minieye.kernels.conv``), in opposite directions,
and ``db = sum of dy over (n, h, w)``. The weight gradient, the costly part for a
large image, is skipped when the weight is frozen (a fixed blur in restoration), and
the input gradient when the network says it will not be used (``input_grad_needed``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_dim, check_ndim, check_positive_int, fail, pair, resolve_dtype
from ..core import Layer, Parameter, input_grad_needed
from ..functional import conv as fconv
from ..kernels import conv as kconv

__all__ = ["Conv2D", "ConvTranspose2D"]


def _int_or_pair(value: tuple[int, int]) -> Any:
    """Config value: an int when both sides agree (JSON-friendly and readable)."""
    return value[0] if value[0] == value[1] else list(value)


class _ConvBase(Layer):
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any, padding: Any,
                 dilation: Any, groups: int, bias: bool, dtype: Any, rng: np.random.Generator | None,
                 seed: int | None, name: str | None):
        super().__init__(name)
        where = f"{type(self).__name__}{' ' + repr(name) if name else ''}"
        self.in_channels = check_positive_int(in_channels, where, "in_channels")
        self.out_channels = check_positive_int(out_channels, where, "out_channels")
        self.kernel_size = pair(kernel_size, where, "kernel_size", minimum=1)
        self.stride = pair(stride, where, "stride", minimum=1)
        self.dilation = pair(dilation, where, "dilation", minimum=1)
        self.groups = fconv.check_groups(self.in_channels, self.out_channels, groups, where)
        if self.transposed and isinstance(padding, str):
            raise fail(where, "padding an int or an (h, w) pair", f"padding={padding!r}")
        self.padding_spec = padding if isinstance(padding, str) else pair(padding, where, "padding", minimum=0)
        pad_hw = fconv.resolve_padding(padding, self.kernel_size, self.dilation, self.stride, where)
        self.geometry = kconv.Geometry(self.stride[0], self.stride[1], pad_hw[0], pad_hw[1],
                                       self.dilation[0], self.dilation[1], self.groups)
        self.dtype = resolve_dtype(dtype, where)
        rng = rng if rng is not None else np.random.default_rng(seed)
        shape, fan_in = self._weight_shape_and_fan_in()
        # He initialisation: keeps the activation variance through ReLU networks.
        std = np.sqrt(2.0 / max(fan_in, 1.0))
        self.weight = Parameter(rng.standard_normal(shape) * std, name=f"{name or 'conv'}.weight", dtype=self.dtype)
        self.bias = (Parameter(np.zeros(self.out_channels), name=f"{name or 'conv'}.bias", dtype=self.dtype)
                     if bias else None)

    def _weight_shape_and_fan_in(self) -> tuple[tuple[int, ...], float]:
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def config(self) -> dict[str, Any]:
        padding = self.padding_spec if isinstance(self.padding_spec, str) else _int_or_pair(self.padding_spec)
        return {**super().config(), "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": _int_or_pair(self.kernel_size), "stride": _int_or_pair(self.stride),
                "padding": padding, "dilation": _int_or_pair(self.dilation), "groups": self.groups,
                "bias": self.bias is not None, "dtype": self.dtype.name}

    def describe(self) -> str:
        k = "x".join(str(v) for v in self.kernel_size)
        extra = "".join(f", {key}={_int_or_pair(v)}" for key, v in
                        (("stride", self.stride), ("dilation", self.dilation)) if v != (1, 1))
        if self.groups != 1:
            extra += f", groups={self.groups}"
        return f"{type(self).__name__}({self.in_channels}->{self.out_channels}, {k}{extra})"

    def _input(self, x: Any, where: str) -> np.ndarray:
        x = as_float_array(x, where, "x", dtype=self.dtype)
        check_ndim(x, 4, where, "x", layout="N, C, H, W")
        check_dim(x, 1, self.in_channels, where, "x", "in_channels")
        return x

    def _bias_grad(self, dy: np.ndarray, deltas) -> None:
        if self.bias is not None and not self.bias.frozen:
            # einsum sums in SIMD blocks: 4x faster than sum(axis=(0, 2, 3)) and as accurate here
            deltas.add(self.bias, np.einsum("ncl->c", dy.reshape(dy.shape[0], dy.shape[1], -1)))


class Conv2D(_ConvBase):
    """2-D convolution (cross-correlation) with learned weight and bias, as ``torch.nn.Conv2d``.

    Shapes: x (N, in_channels, H, W) -> (N, out_channels, H_out, W_out); weight
    (out_channels, in_channels/groups, kH, kW); bias (out_channels,). ``padding`` may be
    ``"same"`` (odd kernels, stride 1).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, dtype: Any = None,
                 rng: np.random.Generator | None = None, seed: int | None = None, name: str | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dtype,
                         rng, seed, name)

    def _weight_shape_and_fan_in(self):
        c_in_g = self.in_channels // self.groups
        kh, kw = self.kernel_size
        return (self.out_channels, c_in_g, kh, kw), c_in_g * kh * kw

    def forward(self, x: Any):
        where = f"{self.label()} forward"
        x = self._input(x, where)
        fconv.check_kernel_fits(x.shape[2:], self.kernel_size, self.geometry, where)
        w = np.ascontiguousarray(self.weight.value, dtype=self.dtype)  # no copy unless replaced by hand
        geometry = self.geometry
        y = kconv.conv2d_forward(x, w, geometry, bias=self.bias.value if self.bias is not None else None)
        input_hw = x.shape[2:]

        def backward(dy, deltas):
            dy = np.ascontiguousarray(dy, dtype=x.dtype)
            if not self.weight.frozen:
                deltas.add(self.weight, kconv.conv2d_grad_weight(x, dy, self.kernel_size, geometry))
            self._bias_grad(dy, deltas)
            if not input_grad_needed():  # the network will not use dx (x is data)
                return None
            return kconv.conv2d_grad_input(dy, w, input_hw, geometry)

        return y, backward


class ConvTranspose2D(_ConvBase):
    """Transposed convolution ("deconvolution": the adjoint of Conv2D), as ``torch.nn.ConvTranspose2d``.

    Shapes: x (N, in_channels, H, W) -> (N, out_channels, H_out, W_out) with
    H_out = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1; weight
    (in_channels, out_channels/groups, kH, kW); bias (out_channels,).
    """

    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True, dtype: Any = None,
                 rng: np.random.Generator | None = None, seed: int | None = None, name: str | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dtype,
                         rng, seed, name)
        where = f"{type(self).__name__}{' ' + repr(name) if name else ''}"
        self.output_padding = fconv.check_output_padding(output_padding, self.geometry, where)

    def _weight_shape_and_fan_in(self):
        c_out_g = self.out_channels // self.groups
        kh, kw = self.kernel_size
        # Each output pixel sums about (in_channels/groups) * kH*kW / (stride_h*stride_w) terms.
        fan_in = (self.in_channels // self.groups) * kh * kw / (self.stride[0] * self.stride[1])
        return (self.in_channels, c_out_g, kh, kw), fan_in

    def config(self) -> dict[str, Any]:
        return {**super().config(), "output_padding": _int_or_pair(self.output_padding)}

    def forward(self, x: Any):
        where = f"{self.label()} forward"
        x = self._input(x, where)
        out_hw = fconv.transpose_output_hw(x.shape[2:], self.kernel_size, self.geometry, self.output_padding, where)
        w = np.ascontiguousarray(self.weight.value, dtype=self.dtype)  # no copy unless replaced by hand
        geometry = self.geometry
        y = kconv.conv2d_grad_input(x, w, out_hw, geometry)
        if self.bias is not None:
            y += self.bias.value[None, :, None, None]

        def backward(dy, deltas):
            dy = np.ascontiguousarray(dy, dtype=x.dtype)
            self._bias_grad(dy, deltas)
            # dx = conv2d(dy, W) and dW = corr(dy, x) share one unfolding of dy.
            dx, dw = kconv.conv2d_backward_transposed(dy, w, x, geometry, need_dw=not self.weight.frozen,
                                                      need_dx=input_grad_needed())
            if dw is not None:
                deltas.add(self.weight, dw)
            return dx

        return y, backward
