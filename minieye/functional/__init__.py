"""Validated, shape-checked functions over the Numba kernels (like torch.nn.functional).

    from minieye import functional as F
    y = F.conv2d(x, w, b=None, stride=1, padding=0, dilation=1)

Arrays are NCHW; validation happens here, once, and kernels trust what they get.
"""
from .conv import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from . import conv, pool

__all__ = [*conv.__all__, *pool.__all__]
