"""The optimizer's fused vector passes (``minieye.kernels.optim``), for ``minieye.train``.

    from minieye.functional.optim import two_loop, box_clip
    direction = two_loop(g, s, y, rho, order, gamma)     # L-BFGS H g in 2 (m + 1) passes

These are the one family of kernels whose arguments never come from a user: the trainer
makes every array itself (contiguous float64 vectors of one length n; L-BFGS ring rows
float32 or float64) and calls them in its inner loop, once per line-search trial, where
a per-call check would cost as much as a short pass. So this module checks nothing and
only gives ``minieye.train`` its road to the kernels, as the rest of ``functional`` does
for layers and losses. Each function's docstring (in ``kernels/optim.py``) gives its
shapes and the formula it fuses.
"""
from ..kernels.optim import (adam_direction, box_clip, box_line_point, box_line_slope, box_reduce, box_tangent_dot,
                             store_pair, two_loop)

__all__ = ["two_loop", "store_pair", "box_tangent_dot", "box_line_point", "box_line_slope", "box_clip", "box_reduce",
           "adam_direction"]
