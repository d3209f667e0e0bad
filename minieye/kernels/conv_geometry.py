"""The geometry of a convolution and its size formulas: the one definition every module uses.

A ``Geometry`` holds stride, padding and dilation per spatial dim (1, 2 or 3 of them) and
``groups``. The 2-D kernels read the last two dims through ``plane()`` and the ``*_h`` /
``*_w`` properties; 1-D runs as a plane of height 1 and 3-D as depth taps of planes
(``conv_nd``). Sizes follow PyTorch's formulas and trust their caller (``minieye.functional``
checks that a kernel fits before it asks).
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["Geometry", "conv_output_size", "conv_transpose_output_size", "output_size"]


class Geometry(NamedTuple):
    """Hyper-parameters of one convolution with ``len(stride)`` spatial dims."""

    stride: tuple[int, ...] = (1, 1)
    padding: tuple[int, ...] = (0, 0)
    dilation: tuple[int, ...] = (1, 1)
    groups: int = 1

    @property
    def nd(self) -> int:
        return len(self.stride)

    def plane(self) -> Geometry:
        """The 2-D geometry of the last two spatial dims (1-D: a plane of height 1)."""
        if self.nd == 1:
            return Geometry((1,) + self.stride, (0,) + self.padding, (1,) + self.dilation, self.groups)
        return Geometry(self.stride[-2:], self.padding[-2:], self.dilation[-2:], self.groups)

    stride_h = property(lambda self: self.stride[-2])
    stride_w = property(lambda self: self.stride[-1])
    pad_h = property(lambda self: self.padding[-2])
    pad_w = property(lambda self: self.padding[-1])
    dilation_h = property(lambda self: self.dilation[-2])
    dilation_w = property(lambda self: self.dilation[-1])

    def args(self) -> tuple[int, int, int, int, int, int]:
        """The six integers every 2-D kernel takes after its arrays (the last two dims)."""
        return (self.stride_h, self.stride_w, self.pad_h, self.pad_w, self.dilation_h, self.dilation_w)


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis (PyTorch's formula; may be < 1, callers check).

    ``floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``
    """
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def conv_transpose_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """Output length of a transposed convolution along one axis (PyTorch's formula).

    ``(size - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1``
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1


def output_size(size: tuple[int, ...], kernel: tuple[int, ...], geometry: Geometry) -> tuple[int, ...]:
    """Spatial output size of a convolution, one formula per dim."""
    return tuple(conv_output_size(n, k, s, p, d)
                 for n, k, s, p, d in zip(size, kernel, geometry.stride, geometry.padding, geometry.dilation))
