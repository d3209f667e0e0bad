"""1-, 2- and 3-D convolution through the 2-D kernels of ``kernels.conv``, exactly.

One set of entry points (``forward``, ``grad_input``, ``grad_weight``, ``backward``,
``backward_transposed``) takes arrays with ``nd`` spatial dims, a ``Geometry`` (stride,
padding, dilation per dim, and groups) and the call's ``Plan`` (None: planned here). Nothing new is compiled:

- 2-D: the 2-D kernels, unchanged.
- 1-D: an (N, C, L) signal is the (N, C, 1, L) image and the kernel (k,) is (1, k)
  (reshapes of contiguous arrays: views, no copy).
- 3-D: a sum over the depth taps t of 2-D convolutions of depth slices,

      y[:, :, d] = sum_t conv2d(x[:, :, d*s_d - p_d + t*dil_d], w[:, :, t])

  where a slice outside the volume is zero padding and is skipped. For one tap the
  output depths whose slice exists form a range, and their input slices are every
  s_d-th slice of x, so each tap is ONE 2-D call on (depths x N) samples. Both gradients
  split the same way, each being linear in its own operand:

      dx[:, :, d*s_d - p_d + t*dil_d] += conv2d_grad_input(dy[:, :, d], w[:, :, t])
      dw[:, :, t] = sum_d conv2d_grad_weight(x[:, :, d*s_d - p_d + t*dil_d], dy[:, :, d])

  The volumes are worked on depth-major, (D, N, C, H, W), so that a run of slices is one
  contiguous batch (for depth stride 1 a view).

As in 2-D, the transposed convolution's forward is ``grad_input``, its input gradient
``forward`` and its weight gradient ``grad_weight`` with x and dy swapped. No validation
here (``minieye.functional.conv`` does it); arrays are C-contiguous, of one float dtype.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import check_out
from .conv import conv2d_backward, conv2d_backward_transposed, conv2d_forward, conv2d_grad_input, \
    conv2d_grad_weight, grad_bias
from .conv_geometry import Geometry, output_size
from .conv_plan import Plan, plan as make_plan

__all__ = ["forward", "grad_input", "grad_weight", "grad_bias", "backward", "backward_transposed"]


# -- 1-D as a plane of height 1 ------------------------------------------------------------------
def _as_plane(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[:2] + (1,) + a.shape[2:])


def _from_plane(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[:2] + a.shape[3:])


# -- 3-D as depth taps of 2-D calls ---------------------------------------------------------------
def _depth_major(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(2, 0, 1, 3, 4))


def _batch_major(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(1, 2, 0, 3, 4))


def _taps(depth: int, depth_out: int, taps: int, geometry: Geometry):
    """For each tap t with some output depth reading inside the volume:
    (t, d0, d1, z0): output depths d0 <= d < d1 read input slice z0 + (d - d0)*s_d."""
    s, p, dil = geometry.stride[0], geometry.padding[0], geometry.dilation[0]
    for t in range(taps):
        offset = t * dil - p                               # z = d*s + offset
        d0 = max(0, -(offset // s) if offset < 0 else 0)   # first d with z >= 0
        d1 = min(depth_out, (depth - 1 - offset) // s + 1) if depth - 1 - offset >= 0 else 0
        if d1 > d0:
            yield t, d0, d1, d0 * s + offset


def _slices(xt: np.ndarray, z0: int, count: int, s: int) -> np.ndarray:
    """``count`` input slices from z0 in steps of s, as one (count*N, C, H, W) batch."""
    part = xt[z0:z0 + (count - 1) * s + 1:s]
    return np.ascontiguousarray(part).reshape((-1,) + xt.shape[2:])


def _forward3(xt: np.ndarray, w: np.ndarray, geometry: Geometry, plan: Plan) -> np.ndarray:
    """Depth-major forward: xt (D, N, C_in, H, W) -> (D_out, N, C_out, H_out, W_out), no bias."""
    depth, n = xt.shape[:2]
    kernel = w.shape[2:]
    out = output_size((depth,) + xt.shape[3:], kernel, geometry)
    yt = np.zeros((out[0], n, w.shape[0]) + out[1:], dtype=xt.dtype)
    plane = geometry.plane()
    for t, d0, d1, z0 in _taps(depth, out[0], kernel[0], geometry):
        part = conv2d_forward(_slices(xt, z0, d1 - d0, geometry.stride[0]), np.ascontiguousarray(w[:, :, t]),
                              plane, plan)
        yt[d0:d1] += part.reshape((d1 - d0, n) + part.shape[1:])
    return yt


def _grad_input3(dyt: np.ndarray, w: np.ndarray, input_size: tuple[int, ...], geometry: Geometry,
                 plan: Plan) -> np.ndarray:
    """Depth-major input gradient: dyt (D_out, N, C_out, ...) -> (D, N, C_in, *input_size[1:])."""
    depth_out, n = dyt.shape[:2]
    s = geometry.stride[0]
    dxt = np.zeros((input_size[0], n, w.shape[1] * geometry.groups) + tuple(input_size[1:]), dtype=dyt.dtype)
    plane = geometry.plane()
    for t, d0, d1, z0 in _taps(input_size[0], depth_out, w.shape[2], geometry):
        part = conv2d_grad_input(dyt[d0:d1].reshape((-1,) + dyt.shape[2:]), np.ascontiguousarray(w[:, :, t]),
                                 tuple(input_size[1:]), plane, plan)
        dxt[z0:z0 + (d1 - d0 - 1) * s + 1:s] += part.reshape((d1 - d0, n) + part.shape[1:])
    return dxt


def _grad_weight3(xt: np.ndarray, dyt: np.ndarray, kernel: tuple[int, ...], geometry: Geometry,
                  plan: Plan) -> np.ndarray:
    """Weight gradient from depth-major xt and dyt -> (C_out, C_in/g, kD, kH, kW)."""
    c_out, c_in_g = dyt.shape[2], xt.shape[2] // geometry.groups
    dw = np.zeros((c_out, c_in_g) + tuple(kernel), dtype=xt.dtype)
    plane = geometry.plane()
    for t, d0, d1, z0 in _taps(xt.shape[0], dyt.shape[0], kernel[0], geometry):
        dw[:, :, t] = conv2d_grad_weight(_slices(xt, z0, d1 - d0, geometry.stride[0]),
                                         dyt[d0:d1].reshape((-1,) + dyt.shape[2:]), tuple(kernel[1:]), plane,
                                         plan)
    return dw


def _written(y: np.ndarray, out: np.ndarray | None, where: str, *inputs: np.ndarray) -> np.ndarray:
    """``y``, or ``out`` holding it (the 1-D and 3-D paths compute into arrays of their own layout)."""
    if out is None:
        return y
    np.copyto(check_out(out, y.shape, y.dtype, where, *inputs), y)
    return out


# -- entry points -----------------------------------------------------------------------------------
def forward(x: np.ndarray, w: np.ndarray, geometry: Geometry, bias: np.ndarray | None = None,
            plan: Plan | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """``y = conv(x, w) + bias``. Shapes: x (N, C_in, *size), w (C_out, C_in/g, *kernel) -> (N, C_out, *out).
    ``out``: an array of y's shape and dtype that the result is written into (checks.check_out; 1-D and
    3-D: copied there)."""
    nd = x.ndim - 2
    plan = plan or make_plan(x.shape, w.shape, geometry)
    if nd == 2:
        return conv2d_forward(x, w, geometry.plane(), plan, bias=bias, out=out)
    if nd == 1:
        return _written(_from_plane(conv2d_forward(_as_plane(x), _as_plane(w), geometry.plane(), plan, bias=bias)),
                        out, "conv_nd.forward", x, w, bias)
    y = _batch_major(_forward3(_depth_major(x), w, geometry, plan))
    if bias is not None:
        y += bias.reshape(-1, 1, 1, 1)
    return _written(y, out, "conv_nd.forward", x, w, bias)


def grad_input(dy: np.ndarray, w: np.ndarray, input_size: tuple[int, ...], geometry: Geometry,
               plan: Plan | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """``dx = C^T dy`` (the transposed convolution's forward).

    Shapes: dy (N, C_out, *out), w (C_out, C_in/g, *kernel) -> (N, C_in, *input_size). ``out``: an
    array of dx's shape and dtype that the result is written into (as forward's)."""
    nd = dy.ndim - 2
    input_size = tuple(input_size)
    plan = plan or make_plan((dy.shape[0], w.shape[1] * geometry.groups) + input_size, w.shape, geometry)
    if nd == 2:
        return conv2d_grad_input(dy, w, input_size, geometry.plane(), plan, out=out)
    if nd == 1:
        return _written(_from_plane(conv2d_grad_input(_as_plane(dy), _as_plane(w), (1,) + input_size,
                                                      geometry.plane(), plan)), out, "conv_nd.grad_input", dy, w)
    return _written(_batch_major(_grad_input3(_depth_major(dy), w, input_size, geometry, plan)), out,
                    "conv_nd.grad_input", dy, w)


def grad_weight(x: np.ndarray, dy: np.ndarray, kernel: tuple[int, ...], geometry: Geometry,
                plan: Plan | None = None) -> np.ndarray:
    """``dw`` of ``sum(dy * conv(x, w))``. Shapes: x (N, C_in, *size), dy (N, C_out, *out) -> (C_out, C_in/g, *kernel)."""
    nd = x.ndim - 2
    kernel = tuple(kernel)
    plan = plan or make_plan(x.shape, (dy.shape[1], x.shape[1] // geometry.groups) + kernel, geometry)
    if nd == 2:
        return conv2d_grad_weight(x, dy, kernel, geometry.plane(), plan)
    if nd == 1:
        return _from_plane(conv2d_grad_weight(_as_plane(x), _as_plane(dy), (1,) + kernel, geometry.plane(), plan))
    return _grad_weight3(_depth_major(x), _depth_major(dy), kernel, geometry, plan)


def backward(x: np.ndarray, dy: np.ndarray, w: np.ndarray, geometry: Geometry, plan: Plan | None = None,
             *, need_dx: bool = True, need_dw: bool = True, need_db: bool = False
             ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """A convolution layer's gradients, ``(grad_input, grad_weight, grad_bias)``, each None unless asked for
    (grad_bias: dy summed over all but its channel axis). 2-D: ``kernels.conv.conv2d_backward`` (SMALL and
    F(4x4, 3x3) compute them in one pass). Shapes: x (N, C_in, *size), dy (N, C_out, *out),
    w (C_out, C_in/g, *kernel) -> dx like x, dw like w, db (C_out,)."""
    plan = plan or make_plan(x.shape, w.shape, geometry)
    if x.ndim == 4:
        return conv2d_backward(x, dy, w, geometry.plane(), plan, need_dx=need_dx, need_dw=need_dw, need_db=need_db)
    dw = grad_weight(x, dy, w.shape[2:], geometry, plan) if need_dw else None
    dx = grad_input(dy, w, x.shape[2:], geometry, plan) if need_dx else None
    return dx, dw, (grad_bias(dy) if need_db else None)


def backward_transposed(dy: np.ndarray, w: np.ndarray, x: np.ndarray, geometry: Geometry, plan: Plan | None = None,
                        need_dw: bool = True, need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Backward of ``y = conv_transpose(x, w)``: ``(dx, dw) = (conv(dy, w), grad_weight(dy, x))``, each
    None unless asked for. Shapes: dy like y, w (C_in_t, C_out_t/g, *kernel), x (N, C_in_t, *size).
    ``plan``: the plan of the convolution of dy with w (the transposed forward's).

    As in ``kernels.conv.conv2d_backward_transposed`` (which 1-D and 2-D use, sharing one
    unfolding of dy): when output_padding reaches the stride, conv(dy) is larger than x,
    so x is zero-extended for dw and dx is cropped back."""
    nd = x.ndim - 2
    plan = plan or make_plan(dy.shape, w.shape, geometry)
    if nd == 2:
        return conv2d_backward_transposed(dy, w, x, geometry.plane(), plan, need_dw, need_dx)
    if nd == 1:
        dx, dw = conv2d_backward_transposed(_as_plane(dy), _as_plane(w), _as_plane(x), geometry.plane(), plan,
                                            need_dw, need_dx)
        return (None if dx is None else _from_plane(dx)), (None if dw is None else _from_plane(dw))
    kernel = w.shape[2:]
    size = x.shape[2:]
    conv_size = output_size(dy.shape[2:], kernel, geometry)
    dyt = _depth_major(dy)
    dx = dw = None
    if need_dx:
        dxt = _forward3(dyt, w, geometry, plan)[:size[0], :, :, :size[1], :size[2]]
        dx = _batch_major(dxt)
    if need_dw:
        xt = _depth_major(x)
        if conv_size != size:
            extended = np.zeros((conv_size[0],) + xt.shape[1:3] + conv_size[1:], dtype=x.dtype)
            extended[:size[0], :, :, :size[1], :size[2]] = xt
            xt = extended
        dw = _grad_weight3(dyt, xt, kernel, geometry, plan)
    return dx, dw
