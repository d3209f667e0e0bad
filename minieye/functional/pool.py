"""Validated pooling, unpooling and upsampling (forward functions and their backwards),
for 1, 2 and 3 spatial dims (NCL, NCHW, NCDHW).

    y, switches = F.max_pool2d(x, 2)                  # switches: flat index in each H*W plane
    x_up = F.max_unpool2d(y, switches, x.shape[2:])    # values back at their maxima, zeros elsewhere
    y = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    y, switches = F.max_pool3d(v, 2)                   # switches: flat index in each D*H*W volume
    y = F.avg_pool1d(signal, 4)                        # (N, C, L) -> (N, C, L // 4)
    y = F.upsample(x, 2, mode="bilinear")              # align_corners=False, as PyTorch's default
    g = F.global_avg_pool2d(x)                         # (N, C), or (N, C, 1, 1) with keepdims=True

Conventions follow PyTorch (``torch.nn.functional``): ``stride`` defaults to the kernel
size, max-pool pads with -inf, padding at most half the kernel, floor-mode output
sizes (no ``ceil_mode``; pad the input yourself if you need the extra row), and
``kernel_size``, ``stride``, ``padding`` are an int or one int per spatial dim.
Differences: ``max_unpool*d`` *adds* values whose switches coincide (possible only
with overlapping windows), which makes it the exact adjoint of the gather in
``max_unpool*d_backward`` (PyTorch keeps an arbitrary one of them); ``avg_pool3d``
accepts an input smaller than the kernel where the padding makes up for it, as
``avg_pool1d``/``avg_pool2d`` do in both libraries (PyTorch's ``avg_pool3d`` refuses it).

The backward of max-pool is ``max_unpool*d(dy, switches, x.shape[2:])``; the backward
of max-unpool is ``max_unpool*d_backward(dz, switches)``, a gather. Both check every
switch (a pass over them). ``max_pool_switches`` returns them as a ``Switches`` object
instead, checked once when made, whose ``unpool`` and ``gather`` check only shapes: the
pooling layers use it, and so may any caller that unpools the same switches many times.
The 1-, 2- and 3-D functions are one N-d implementation each (``_max_pool`` ...),
specialised by ``_for_dims``; the kernels in ``minieye.kernels.pool`` are shared by all
three and trust what they are given: validation happens here, once. Every function takes
a keyword ``where`` that names the caller in error messages (layers pass their label).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import numpy as np

from ..checks import (LAYOUTS, as_float_array, check_allocation, check_bool, check_gradient, check_ndim,
                      check_nonneg_int, check_positive_int, fail)
from ..kernels import pool as K
from ..kernels import upsample as U
from .pool_checks import (check_fits, check_switches, check_unpool_size, check_volume, spatial_size, upsample_scale,
                          window)

__all__ = [
    "pool_output_size",
    "Switches", "max_pool_switches",
    "max_pool1d", "max_pool2d", "max_pool3d",
    "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "max_unpool1d_backward", "max_unpool2d_backward", "max_unpool3d_backward",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "avg_pool1d_backward", "avg_pool2d_backward", "avg_pool3d_backward",
    "upsample",
    "upsample_backward",
    "global_avg_pool2d", "global_avg_pool2d_backward",
]


def pool_output_size(size: int, kernel_size: int, stride: int, padding: int = 0) -> int:
    """Pooled length along one axis, ``(size + 2*padding - kernel_size) // stride + 1``, after
    checking that the window fits (a kernel larger than the padded input is refused)."""
    where = "pool_output_size"
    size = check_positive_int(size, where, "size")
    kernel_size = check_positive_int(kernel_size, where, "kernel_size")
    stride = check_positive_int(stride, where, "stride")
    padding = check_nonneg_int(padding, where, "padding")
    if size + 2 * padding < kernel_size:
        raise fail(where, f"kernel_size ({kernel_size}) no larger than the padded size "
                   f"{size + 2 * padding}", f"size={size}, kernel_size={kernel_size}, padding={padding}")
    return K.pool_output_size(size, kernel_size, stride, padding)


Ints = int | Sequence[int]

# Words that the N-d docstrings below are formatted with, per number of spatial dims.
_DOC_WORDS = {
    1: dict(nd=1, layout="N, C, L", spatial="L", pooled="l_out", plane="signal of length L",
            index="position"),
    2: dict(nd=2, layout="N, C, H, W", spatial="H, W", pooled="h_out, w_out", plane="H*W plane",
            index="row * W + col"),
    3: dict(nd=3, layout="N, C, D, H, W", spatial="D, H, W", pooled="d_out, h_out, w_out",
            plane="D*H*W volume", index="(depth * H + row) * W + col"),
}


def _for_dims(generic: Callable, nd: int) -> Callable:
    """The public ``{name}{nd}d`` function: ``generic`` with ``nd`` fixed, its docstring
    worded for ``nd`` spatial dims and its signature without ``nd`` (for help() and IDEs)."""
    name = generic.__name__.lstrip("_").replace("_nd", f"{nd}d")

    def specialised(*args: Any, **kwargs: Any) -> Any:
        return generic(nd, *args, **kwargs)

    signature = inspect.signature(generic)
    specialised.__name__ = specialised.__qualname__ = name
    specialised.__doc__ = (generic.__doc__ or "").format(**_DOC_WORDS[nd])
    specialised.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])
    specialised.__module__ = __name__
    return specialised


def _where(where: str | None, name: str, nd: int) -> str:
    return where or name.replace("_nd", f"{nd}d")


# -- max-pool and unpool (N-d) ----------------------------------------------------------------
class Switches:
    """Where a max-pool found each window's maximum, checked once.

    ``index``: int64 (N, C, *pooled), each the flat position of a maximum in its input
    plane (volume) of spatial size ``input_size``. Made by ``max_pool_switches``, or from
    an array by ``Switches(index, input_size)``, which checks every entry and keeps a copy,
    so that ``unpool`` and ``gather`` need to check only the shapes of what they get.
    """

    __slots__ = ("index", "input_size")

    def __init__(self, index: Any, input_size: Any, where: str = "Switches"):
        s = np.asarray(index)
        nd = s.ndim - 2
        if nd not in LAYOUTS:
            raise fail(where, "switches with 3, 4 or 5 dimensions (N, C, *pooled)", f"switches.shape == {s.shape}")
        spatial = spatial_size(input_size, s, where, "input_size", nd=nd)
        self.index = np.array(check_switches(s, s.shape, spatial, where), copy=True)
        self.input_size = spatial

    @classmethod
    def _trusted(cls, index: np.ndarray, input_size: tuple[int, ...]) -> "Switches":
        """Switches the kernel has just made (nothing to check)."""
        made = object.__new__(cls)
        made.index, made.input_size = index, tuple(input_size)
        return made

    def unpool(self, values: Any, where: str = "Switches.unpool") -> np.ndarray:
        """Each value placed at its switch in zeros of the pool's input shape; coinciding switches add.

        Shapes: values index.shape (N, C, *pooled) -> (N, C, *input_size).
        """
        values = as_float_array(values, where)
        if values.shape != self.index.shape:
            raise fail(where, f"x of its pool's output shape {self.index.shape}", f"x.shape == {values.shape}",
                       "Layers between the pool and the unpool must give back the pooled shape")
        return K.scatter_switches(values, self.index, self.input_size)

    def gather(self, grad: Any, where: str = "Switches.gather") -> np.ndarray:
        """``grad`` read at the switches: the adjoint of ``unpool``.

        Shapes: grad (N, C, *input_size) -> index.shape.
        """
        shape = (*self.index.shape[:2], *self.input_size)
        grad = as_float_array(grad, where, "dy")  # its own precision; check_gradient then checks the shape
        grad = check_gradient(grad, shape, grad.dtype, where)
        return K.gather_switches(grad, self.index)


def max_pool_switches(x: Any, kernel_size: Ints, stride: Ints | None = None, padding: Ints = 0, *,
                      nd: int = 2, where: str | None = None) -> tuple[np.ndarray, Switches]:
    """Max-pool over the last ``nd`` dims, with its switches as a checked ``Switches``.

    Shapes: x (N, C, *spatial) -> y (N, C, *pooled) and Switches of index y.shape.
    """
    where = _where(where, "max_pool_nd", nd)
    x = check_volume(x, where, nd=nd)
    win = window(where, kernel_size, stride, padding, nd)
    check_fits(where, x.shape, win)
    y, index = K.max_pool_forward(x, *win)
    return y, Switches._trusted(index, x.shape[2:])


def _max_pool_nd(nd: int, x: Any, kernel_size: Ints, stride: Ints | None = None,
                 padding: Ints = 0, *, where: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Max-pool with switches (PyTorch's ``max_pool{nd}d(..., return_indices=True)``).

    Shapes: x ({layout}) -> y (N, C, {pooled}) and int64 switches of the same
    shape, each the flat index ``{index}`` of the window's maximum in its input {plane}.
    Ties go to the first maximum in row-major order; NaN propagates.
    """
    y, switches = max_pool_switches(x, kernel_size, stride, padding, nd=nd, where=where)
    return y, switches.index


def _max_unpool_nd(nd: int, y: Any, switches: Any, output_size: Any, kernel_size: Ints | None = None,
                   stride: Ints | None = None, padding: Ints = 0, *, where: str | None = None) -> np.ndarray:
    """Place each value of ``y`` at its switch in a zero array of spatial size ``output_size``.

    Unpooling of DeconvNet (Noh et al.); also max-pool's backward. ``output_size`` is
    ({spatial}) (or a full ({layout})); values with equal switches add up. Given the pool's
    ``kernel_size`` (``stride``, ``padding``), it must be a size whose pooling gives y's
    size (PyTorch's rule); without them only the switches are checked against it (a padded
    pool may make y one larger than its input, and arbitrary switches make this the adjoint
    of ``max_unpool{nd}d_backward``).
    Shapes: y, switches (N, C, {pooled}) -> ({layout}).
    """
    where = _where(where, "max_unpool_nd", nd)
    y = as_float_array(y, where, "y")
    check_ndim(y, nd + 2, where, "y", layout=LAYOUTS[nd])
    spatial = spatial_size(output_size, y, where, nd=nd)
    if kernel_size is not None:
        check_unpool_size(y.shape[2:], spatial, where, window(where, kernel_size, stride, padding, nd))
    s = check_switches(switches, y.shape, spatial, where)
    return K.scatter_switches(y, s, spatial)


def _max_unpool_nd_backward(nd: int, dz: Any, switches: Any, *, where: str | None = None) -> np.ndarray:
    """Gradient of ``max_unpool{nd}d`` with respect to its values: ``dz`` gathered at the switches.

    Shapes: dz ({layout}), switches (N, C, {pooled}) -> (N, C, {pooled}).
    """
    where = _where(where, "max_unpool_nd_backward", nd)
    dz = check_volume(dz, where, "dz", nd=nd)
    s = np.asarray(switches)
    if s.ndim != nd + 2 or s.shape[:2] != dz.shape[:2]:
        raise fail(where, f"switches ({LAYOUTS[nd]}) with (N, C) == {dz.shape[:2]}",
                   f"switches.shape == {s.shape}")
    s = check_switches(s, s.shape, dz.shape[2:], where)
    return K.gather_switches(dz, s)


# -- average pool (N-d) ---------------------------------------------------------------------
def _avg_pool_nd(nd: int, x: Any, kernel_size: Ints, stride: Ints | None = None, padding: Ints = 0,
                 count_include_pad: bool = True, *, where: str | None = None) -> np.ndarray:
    """Average pool; zero padding counts in the divisor when ``count_include_pad``.

    Shapes: ({layout}) -> (N, C, {pooled}).
    """
    where = _where(where, "avg_pool_nd", nd)
    x = check_volume(x, where, nd=nd)
    win = window(where, kernel_size, stride, padding, nd)
    check_fits(where, x.shape, win)
    return K.avg_pool_forward(x, *win, check_bool(count_include_pad, where, "count_include_pad"))


def _avg_pool_nd_backward(nd: int, dy: Any, input_size: Any, kernel_size: Ints, stride: Ints | None = None,
                          padding: Ints = 0, count_include_pad: bool = True, *,
                          where: str | None = None) -> np.ndarray:
    """Input gradient of ``avg_pool{nd}d`` for an input of spatial size ``input_size`` ({spatial}).

    Shapes: dy (N, C, {pooled}) -> ({layout}).
    """
    where = _where(where, "avg_pool_nd_backward", nd)
    dy = as_float_array(dy, where, "dy")
    check_ndim(dy, nd + 2, where, "dy", layout=LAYOUTS[nd])
    spatial = spatial_size(input_size, dy, where, "input_size", nd=nd)
    win = window(where, kernel_size, stride, padding, nd)
    check_fits(where, spatial, win)
    dy = check_gradient(dy, K.output_shape((*dy.shape[:2], *spatial), *win), dy.dtype, where)
    return K.avg_pool_backward(dy, spatial, *win, check_bool(count_include_pad, where, "count_include_pad"))


max_pool1d, max_pool2d, max_pool3d = (_for_dims(_max_pool_nd, nd) for nd in (1, 2, 3))
max_unpool1d, max_unpool2d, max_unpool3d = (_for_dims(_max_unpool_nd, nd) for nd in (1, 2, 3))
max_unpool1d_backward, max_unpool2d_backward, max_unpool3d_backward = (
    _for_dims(_max_unpool_nd_backward, nd) for nd in (1, 2, 3))
avg_pool1d, avg_pool2d, avg_pool3d = (_for_dims(_avg_pool_nd, nd) for nd in (1, 2, 3))
avg_pool1d_backward, avg_pool2d_backward, avg_pool3d_backward = (
    _for_dims(_avg_pool_nd_backward, nd) for nd in (1, 2, 3))


def check_image(x: Any, where: str, name: str = "x", dtype: Any = None) -> np.ndarray:
    """``x`` as a C-contiguous float NCHW array with non-empty H and W (copied if needed)."""
    return check_volume(x, where, name, dtype, nd=2)


# -- upsampling -------------------------------------------------------------------------------
def upsample(x: Any, scale_factor: int | Sequence[int], mode: str = "nearest", *,
             where: str | None = None) -> np.ndarray:
    """Upsample by integer factors: ``"nearest"`` repeats pixels, ``"bilinear"`` interpolates
    (align_corners=False, PyTorch's default).

    Shapes: (N, C, H, W) -> (N, C, H*sh, W*sw).
    """
    where = where or f"upsample({mode!r})"
    sh, sw = upsample_scale(where, scale_factor, mode)
    x = check_image(x, where)
    check_allocation((*x.shape[:2], x.shape[2] * sh, x.shape[3] * sw), x.dtype, where, "the output")
    if mode == "nearest":
        return U.upsample_nearest_forward(x, sh, sw)
    return U.upsample_bilinear_forward(x, sh, sw)


def upsample_backward(dy: Any, scale_factor: int | Sequence[int], mode: str = "nearest", *,
                      where: str | None = None) -> np.ndarray:
    """Input gradient of ``upsample``. Shapes: (N, C, H*sh, W*sw) -> (N, C, H, W)."""
    where = where or f"upsample_backward({mode!r})"
    sh, sw = upsample_scale(where, scale_factor, mode)
    dy = check_image(dy, where, "dy")
    if dy.shape[2] % sh or dy.shape[3] % sw:
        raise fail(where, f"dy's H and W multiples of scale_factor {(sh, sw)}", f"dy.shape == {dy.shape}")
    if mode == "nearest":
        return U.upsample_nearest_backward(dy, sh, sw)
    return U.upsample_bilinear_backward(dy, sh, sw)


# -- global average pool ----------------------------------------------------------------------
def global_avg_pool2d(x: Any, keepdims: bool = False, *, where: str = "global_avg_pool2d") -> np.ndarray:
    """Mean over H and W. Shapes: (N, C, H, W) -> (N, C), or (N, C, 1, 1) with ``keepdims``."""
    x = check_image(x, where)
    return x.mean(axis=(2, 3), keepdims=bool(keepdims))


def global_avg_pool2d_backward(dy: Any, input_shape: Sequence[int], *,
                               where: str = "global_avg_pool2d_backward") -> np.ndarray:
    """Input gradient of ``global_avg_pool2d``: each dy spread evenly over its H x W plane.

    Shapes: dy (N, C) or (N, C, 1, 1), input_shape (N, C, H, W) -> input_shape.
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if len(shape) != 4 or not all(isinstance(v, (int, np.integer)) and v >= (i >= 2) for i, v in enumerate(shape)):
        raise fail(where, "input_shape (N, C, H, W), four ints (H and W >= 1)", f"input_shape={input_shape!r}")
    n, c, h, w = (int(v) for v in shape)
    dy = as_float_array(dy, where, "dy")
    if dy.shape not in ((n, c), (n, c, 1, 1)):
        raise fail(where, f"dy of shape {(n, c)} or {(n, c, 1, 1)}", f"dy.shape == {dy.shape}")
    scaled = dy.reshape(n, c, 1, 1) * dy.dtype.type(1.0 / (h * w))
    return np.broadcast_to(scaled, (n, c, h, w)).copy()
