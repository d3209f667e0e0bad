"""Convolution layers (1-, 2- and 3-D): ConvND and its adjoint ConvTransposeND ("deconvolution").

    Conv:          y = conv(x, W) + b             dx = conv_transpose(dy, W)   dW = sum_n dy_n (*) x_n
    ConvTranspose: y = conv_transpose(x, W) + b   dx = conv(dy, W)             dW the same correlation, roles swapped

Both call the same three kernels (through ``minieye.functional.conv``; ``kernels.conv_nd``
runs 1-D and 3-D through the 2-D ones), in opposite directions, and ``db = sum of dy over (n, *spatial)``.
A 2-D transposed layer whose kernel taps fit a 3x3 window per output phase may instead run as one 3x3
convolution into a channel per phase and a pixel shuffle (``kernels.conv_transpose_phases``; the
``conv_transpose_algorithm`` knob), decided in its forward and kept for its backward.
The weight gradient, the costly part for a large image, is skipped when the weight is
frozen (a fixed blur in restoration), and the input gradient when the network says it
will not be used (``input_grad_needed``). Each family is one class parametrised by
``nd``, the number of spatial dims (``_Conv``, ``_ConvTranspose``); ``Conv1D``,
``Conv2D``, ``Conv3D`` and the transposed ones only fix ``nd`` and say their shapes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import (LAYOUTS, check_bool, check_dim, check_ndim, check_positive_int, compact, fail, generator,
                      layer_gradient, layer_input, resolve_dtype, spatial_tuple)
from ..checks import where as where_of
from ..core import Layer, Parameter, input_grad_needed
from ..functional import conv as fconv
from ..functional.conv import Geometry
from ._parameters import layer_parameter

__all__ = ["Conv1D", "Conv2D", "Conv3D", "ConvTranspose1D", "ConvTranspose2D", "ConvTranspose3D"]


class _ConvBase(Layer):
    """Shared constructor, parameters, config and checks of the convolutions over ``nd`` spatial dims."""

    nd = 2
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any, padding: Any,
                 dilation: Any, groups: int, bias: bool, dtype: Any, rng: np.random.Generator | int | None,
                 seed: int | None, name: str | None):
        super().__init__(name)
        where = where_of(type(self).__name__, name)
        nd = self.nd
        self.in_channels = check_positive_int(in_channels, where, "in_channels")
        self.out_channels = check_positive_int(out_channels, where, "out_channels")
        self.kernel_size = spatial_tuple(kernel_size, nd, where, "kernel_size", minimum=1)
        self.stride = spatial_tuple(stride, nd, where, "stride", minimum=1)
        self.dilation = spatial_tuple(dilation, nd, where, "dilation", minimum=1)
        self.groups = fconv.check_groups(self.in_channels, self.out_channels, groups, where)
        if self.transposed and isinstance(padding, str):
            raise fail(where, "padding an int or an (h, w) pair" if nd == 2 else "padding an int or a tuple",
                       f"padding={padding!r}")
        self.padding_spec = padding if isinstance(padding, str) else spatial_tuple(padding, nd, where, "padding")
        self.geometry = fconv.geometry_of(self.stride, padding, self.dilation, self.groups, self.kernel_size, where)
        self.dtype = resolve_dtype(dtype, where)
        bias = check_bool(bias, where, "bias")
        rng = generator(rng, seed, where)
        shape, fan_in = self._weight_shape_and_fan_in()
        self._weight_shape = shape
        # He initialisation: keeps the activation variance through ReLU networks.
        std = np.sqrt(2.0 / max(fan_in, 1.0))
        self.weight = Parameter(rng.standard_normal(shape) * std, name=f"{name or 'conv'}.weight", dtype=self.dtype)
        self.bias = (Parameter(np.zeros(self.out_channels), name=f"{name or 'conv'}.bias", dtype=self.dtype)
                     if bias else None)

    def _weight_shape_and_fan_in(self) -> tuple[tuple[int, ...], float]:
        cells = int(np.prod(self.kernel_size))
        if self.transposed:
            # Each output cell sums about (in_channels/groups) * prod(kernel) / prod(stride) terms.
            fan_in = (self.in_channels // self.groups) * cells / float(np.prod(self.stride))
            return (self.in_channels, self.out_channels // self.groups) + self.kernel_size, fan_in
        c_in_g = self.in_channels // self.groups
        return (self.out_channels, c_in_g) + self.kernel_size, c_in_g * cells

    def parameters(self) -> list[Parameter]:
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def config(self) -> dict[str, Any]:
        padding = self.padding_spec if isinstance(self.padding_spec, str) else compact(self.padding_spec)
        return {**super().config(), "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": compact(self.kernel_size), "stride": compact(self.stride),
                "padding": padding, "dilation": compact(self.dilation), "groups": self.groups,
                "bias": self.bias is not None, "dtype": self.dtype.name}

    def describe(self) -> str:
        k = "x".join(str(v) for v in self.kernel_size)
        ones = (1,) * self.nd
        extra = "".join(f", {key}={compact(v)}" for key, v in
                        (("stride", self.stride), ("dilation", self.dilation)) if v != ones)
        if self.groups != 1:
            extra += f", groups={self.groups}"
        return f"{type(self).__name__}({self.in_channels}->{self.out_channels}, {k}{extra})"

    def checked_parameters(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The weight (contiguous, for the kernels) and bias values, checked against the built shapes."""
        w = np.ascontiguousarray(layer_parameter(self, "weight", self._weight_shape, self.dtype))
        b = None if self.bias is None else layer_parameter(self, "bias", (self.out_channels,), self.dtype)
        return w, b

    def _input(self, x: Any, where: str) -> np.ndarray:
        x = layer_input(x, self, dtype=self.dtype)
        check_ndim(x, self.nd + 2, where, "x", layout=LAYOUTS[self.nd])
        if x.shape[1] != self.in_channels:
            check_dim(x, 1, self.in_channels, where, "x", "in_channels",
                      "arrays are channels-first: np.moveaxis(x, -1, 1) for channels-last data"
                      if x.shape[-1] == self.in_channels else None)
        return x

    def _bias_learns(self) -> bool:
        return self.bias is not None and not self.bias.frozen


class _Conv(_ConvBase):
    """Convolution (cross-correlation) over ``nd`` spatial dims with learned weight and bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, dtype: Any = None,
                 rng: np.random.Generator | int | None = None, seed: int | None = None, name: str | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dtype,
                         rng, seed, name)

    def forward(self, x: Any):
        where = f"{self.label()} forward"
        x = self._input(x, where)
        geometry = self.geometry
        fconv.check_sizes(x, geometry, fconv.check_kernel_fits(x.shape[2:], self.kernel_size, geometry, where),
                          self.out_channels, where)
        w, b = self.checked_parameters()
        plan = fconv.conv_plan(x.shape, w.shape, geometry)  # one plan for the forward and both gradients
        y = fconv.conv_forward(x, w, geometry, b, plan)

        def backward(dy, deltas):
            dy = layer_gradient(dy, y.shape, x.dtype, self)
            # dx only where the network uses it (not when x is data)
            dx, dw, db = fconv.conv_backward(x, dy, w, geometry, plan, need_dw=not self.weight.frozen,
                                             need_dx=input_grad_needed(), need_db=self._bias_learns())
            if dw is not None:
                deltas.add(self.weight, dw)
            if db is not None:
                deltas.add(self.bias, db)
            return dx

        return y, backward


class _ConvTranspose(_ConvBase):
    """Transposed convolution (the adjoint of ``_Conv``) over ``nd`` spatial dims."""

    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True, dtype: Any = None,
                 rng: np.random.Generator | int | None = None, seed: int | None = None, name: str | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dtype,
                         rng, seed, name)
        where = where_of(type(self).__name__, name)
        self.output_padding = fconv.check_output_padding(output_padding, self.geometry, where)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "output_padding": compact(self.output_padding)}

    def forward(self, x: Any):
        where = f"{self.label()} forward"
        x = self._input(x, where)
        geometry = self.geometry
        out = fconv.transpose_output_size(x.shape[2:], self.kernel_size, geometry, self.output_padding, where)
        fconv.check_sizes(x, geometry, out, self.out_channels, where)
        w, b = self.checked_parameters()
        # by phases (2-D, where conv_transpose_algorithm takes them) or as its convolution's adjoint
        road = fconv.transpose_plan(x.shape, w.shape, geometry, out, where)
        y = fconv.transpose_forward(x, w, b, geometry, road, out)

        def backward(dy, deltas):
            dy = layer_gradient(dy, y.shape, x.dtype, self)
            need_dw, need_dx = not self.weight.frozen, input_grad_needed()
            dx, dw, db = fconv.transpose_backward(dy, w, x, geometry, road, need_dx=need_dx, need_dw=need_dw,
                                                  need_db=self._bias_learns())
            if db is not None:
                deltas.add(self.bias, db)
            if dw is not None:
                deltas.add(self.weight, dw)
            return dx

        return y, backward


class Conv1D(_Conv):
    """1-D convolution (cross-correlation), as ``torch.nn.Conv1d``.

    Shapes: x (N, in_channels, L) -> (N, out_channels, L_out); weight (out_channels,
    in_channels/groups, k); bias (out_channels,). ``padding`` may be ``"same"`` (odd kernels, stride 1).
    """

    nd = 1


class Conv2D(_Conv):
    """2-D convolution (cross-correlation) with learned weight and bias, as ``torch.nn.Conv2d``.

    Shapes: x (N, in_channels, H, W) -> (N, out_channels, H_out, W_out); weight
    (out_channels, in_channels/groups, kH, kW); bias (out_channels,). ``padding`` may be
    ``"same"`` (odd kernels, stride 1).
    """

    nd = 2


class Conv3D(_Conv):
    """3-D convolution (cross-correlation) of volumes, as ``torch.nn.Conv3d``.

    Shapes: x (N, in_channels, D, H, W) -> (N, out_channels, D_out, H_out, W_out); weight
    (out_channels, in_channels/groups, kD, kH, kW); bias (out_channels,). Geometry as ints or
    (d, h, w) triples; ``padding`` may be ``"same"`` (odd kernels, stride 1).
    """

    nd = 3


class ConvTranspose1D(_ConvTranspose):
    """Transposed 1-D convolution (the adjoint of Conv1D), as ``torch.nn.ConvTranspose1d``.

    Shapes: x (N, in_channels, L) -> (N, out_channels, L_out) with
    L_out = (L - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1; weight
    (in_channels, out_channels/groups, k); bias (out_channels,).
    """

    nd = 1


class ConvTranspose2D(_ConvTranspose):
    """Transposed convolution ("deconvolution": the adjoint of Conv2D), as ``torch.nn.ConvTranspose2d``.

    Shapes: x (N, in_channels, H, W) -> (N, out_channels, H_out, W_out) with
    H_out = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1; weight
    (in_channels, out_channels/groups, kH, kW); bias (out_channels,).
    """

    nd = 2


class ConvTranspose3D(_ConvTranspose):
    """Transposed 3-D convolution (the adjoint of Conv3D), as ``torch.nn.ConvTranspose3d``.

    Shapes: x (N, in_channels, D, H, W) -> (N, out_channels, D_out, H_out, W_out), each side as in 1-D;
    weight (in_channels, out_channels/groups, kD, kH, kW); bias (out_channels,).
    """

    nd = 3
