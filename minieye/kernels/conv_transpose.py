"""The transposed convolution's one road: planned once, run forward and backward by the plan.

A transposed convolution runs either as one 3x3 convolution into a channel per output phase
(``conv_transpose_phases``, where the ``conv_transpose_algorithm`` knob takes it) or as the adjoint of
the convolution it transposes (``conv_nd``'s input gradient, planned with that convolution's shapes).
``plan`` decides once; the layer, ``functional.conv_transpose*d`` and the denoisers' inference run
``forward`` and ``backward`` with its answer, so no caller branches on the two.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import conv_nd as knd
from . import conv_transpose_phases as kphases
from .conv_geometry import Geometry
from .conv_plan import Plan, plan as conv_plan

__all__ = ["TransposePlan", "plan", "forward", "backward"]


class TransposePlan(NamedTuple):
    """By phases (``phases``), else as the adjoint of the convolution that ``adjoint`` plans."""
    phases: kphases.Phases | None
    adjoint: Plan | None


def plan(x_shape: tuple[int, ...], w_shape: tuple[int, ...], geometry: Geometry, out_hw: tuple[int, ...],
         where: str) -> TransposePlan:
    """How ``conv_transpose(x, w)`` with x (n, c_in, *size), w (c_in, c_out/groups, *kernel) and output size
    ``out_hw`` runs under the knobs in force (``where`` names the caller in a refusal of forced phases)."""
    phases = kphases.choose(x_shape, w_shape, geometry, out_hw, where)
    if phases is not None:
        return TransposePlan(phases, None)
    # the plan of the convolution it is the adjoint of (its input is our output)
    shape = (x_shape[0], w_shape[1] * geometry.groups) + tuple(out_hw)
    return TransposePlan(None, conv_plan(shape, tuple(w_shape), geometry))


def forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, geometry: Geometry, road: TransposePlan,
            out_hw: tuple[int, ...], out: np.ndarray | None = None) -> np.ndarray:
    """``y = conv_transpose(x, w) + bias``: (n, c_out, *out_hw), into ``out`` where given."""
    if road.phases is not None:
        return kphases.forward(x, w, road.phases, out_hw, bias, out=out)
    y = knd.grad_input(x, w, out_hw, geometry, road.adjoint, out=out)
    if bias is not None:
        y += bias.reshape((-1,) + (1,) * (y.ndim - 2))
    return y


def backward(dy: np.ndarray, w: np.ndarray, x: np.ndarray, geometry: Geometry, road: TransposePlan, *,
             need_dx: bool, need_dw: bool, need_db: bool
             ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The gradients of ``y = conv_transpose(x, w) + b``: (dx, dw, db), each None unless asked for."""
    if road.phases is not None:
        return kphases.backward(dy, w, x, road.phases, need_dx=need_dx, need_dw=need_dw, need_db=need_db)
    # dx = conv(dy, W) and dW = corr(dy, x) (in 1-D and 2-D sharing one unfolding of dy)
    dx, dw = knd.backward_transposed(dy, w, x, geometry, road.adjoint, need_dw=need_dw, need_dx=need_dx)
    return dx, dw, (knd.grad_bias(dy) if need_db else None)
