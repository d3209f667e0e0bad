"""Validated, shape-checked functions over the Numba kernels (like torch.nn.functional).

    from minieye import functional as F
    y = F.conv2d(x, w, b=None, stride=1, padding=0, dilation=1)

Arrays are NCHW; validation happens here, once, and kernels trust what they get. Layers
and losses reach the kernels only through these functions (docs/contributing.md).
"""
from . import conv as _conv, nonlocal_tv as _nonlocal_tv, pool as _pool, tv as _tv
from .conv import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .tv import *  # noqa: F401,F403
from .nonlocal_tv import *  # noqa: F401,F403  (the function nonlocal_tv shadows its module's name here)

__all__ = [*_conv.__all__, *_pool.__all__, *_tv.__all__, *_nonlocal_tv.__all__]
