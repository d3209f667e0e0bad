"""Validated pooling, unpooling and upsampling (forward functions and their backwards).

    y, switches = F.max_pool2d(x, 2)                  # switches: flat index in each H*W plane
    x_up = F.max_unpool2d(y, switches, x.shape[2:])    # values back at their maxima, zeros elsewhere
    y = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    y = F.upsample(x, 2, mode="bilinear")              # align_corners=False, as PyTorch's default
    g = F.global_avg_pool2d(x)                         # (N, C), or (N, C, 1, 1) with keepdims=True

Conventions follow PyTorch (``torch.nn.functional``): NCHW, ``stride`` defaults to the
kernel size, max-pool pads with -inf, padding at most half the kernel, floor-mode
output sizes (no ``ceil_mode``; pad the input yourself if you need the extra row).
Differences: ``max_unpool2d`` *adds* values whose switches coincide (possible only
with overlapping windows), which makes it the exact adjoint of the gather in
``max_unpool2d_backward`` (PyTorch keeps an arbitrary one of them).

The backward of max-pool is ``max_unpool2d(dy, switches, x.shape[2:])``; the backward
of max-unpool is ``max_unpool2d_backward(dz, switches)``, a gather. Validation happens
here, once; the kernels in ``minieye.kernels.pool`` trust what they are given.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..checks import as_float_array, check_ndim, fail, pair
from ..kernels import pool as K
from ..kernels import upsample as U

__all__ = [
    "pool_output_size",
    "max_pool2d",
    "max_unpool2d",
    "max_unpool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "upsample",
    "upsample_backward",
    "global_avg_pool2d",
]

pool_output_size = K.pool_output_size

UPSAMPLE_MODES = ("nearest", "bilinear")


# -- shared checks (also used by minieye.layers.pool) -------------------------------------
def check_image(x: Any, where: str, name: str = "x", dtype: Any = None) -> np.ndarray:
    """``x`` as a C-contiguous float NCHW array with non-empty H and W (copied if needed)."""
    x = as_float_array(x, where, name, dtype)
    check_ndim(x, 4, where, name, layout="N, C, H, W")
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise fail(where, f"{name} with non-empty H and W", f"{name}.shape == {x.shape}")
    return x


def window(where: str, kernel_size: Any, stride: Any, padding: Any) -> tuple[int, int, int, int, int, int]:
    """``(kh, kw, stride_h, stride_w, pad_h, pad_w)`` from int-or-pair arguments.

    stride None means the kernel size; padding may be at most half the kernel (as in
    PyTorch), so that every window holds at least one real input cell.
    """
    kh, kw = pair(kernel_size, where, "kernel_size", minimum=1)
    sh, sw = pair((kh, kw) if stride is None else stride, where, "stride", minimum=1)
    ph, pw = pair(padding, where, "padding", minimum=0)
    if ph > kh // 2 or pw > kw // 2:
        raise fail(where, f"padding at most half the kernel size (kernel_size={(kh, kw)})",
                   f"padding={(ph, pw)}")
    return kh, kw, sh, sw, ph, pw


def check_fits(where: str, shape: tuple[int, ...], geometry: tuple[int, ...]) -> None:
    """Refuse a kernel larger than the padded input (``shape`` ends with H, W)."""
    kh, kw, _, _, ph, pw = geometry
    h, w = shape[-2:]
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise fail(where, f"a kernel {(kh, kw)} no larger than the padded input "
                   f"({h + 2 * ph}, {w + 2 * pw})", f"input shape {tuple(shape)}, padding={(ph, pw)}",
                   "Use a smaller kernel, more padding, or a larger input")


def check_gradient(dy: Any, shape: tuple[int, ...], dtype: np.dtype, where: str, name: str = "dy") -> np.ndarray:
    """``dy`` as a contiguous array of ``dtype`` and exactly ``shape``."""
    dy = as_float_array(dy, where, name, dtype)
    if dy.shape != tuple(shape):
        raise fail(where, f"{name} of shape {tuple(shape)}", f"{name}.shape == {dy.shape}")
    return dy


def spatial_size(size: Any, y: np.ndarray, where: str, name: str = "output_size") -> tuple[int, int]:
    """(H, W) from an (H, W) pair or a full (N, C, H, W) shape whose N, C match ``y``."""
    size = tuple(size) if isinstance(size, (tuple, list, np.ndarray)) else size
    if isinstance(size, tuple) and len(size) == 4:  # x.shape, as PyTorch also accepts
        if tuple(int(s) for s in size[:2]) != y.shape[:2]:
            raise fail(where, f"{name} (N, C) == {y.shape[:2]}", f"{name}={size}")
        size = size[2:]
    return pair(size, where, name, minimum=1)


def check_switches(switches: Any, shape: tuple[int, ...], h: int, w: int, where: str) -> np.ndarray:
    """Switches as contiguous int64 of the pooled values' ``shape``, each in [0, h*w)."""
    s = np.asarray(switches)
    if s.dtype.kind not in "iu":
        raise fail(where, "integer switches (as returned by max_pool2d)", f"switches.dtype == {s.dtype}")
    if s.shape != tuple(shape):
        raise fail(where, f"switches of the pooled values' shape {tuple(shape)}", f"switches.shape == {s.shape}")
    if s.size and (int(s.min()) < 0 or int(s.max()) >= h * w):
        raise fail(where, f"switches in [0, {h * w}) for output_size {(h, w)}",
                   f"values in [{int(s.min())}, {int(s.max())}]",
                   "Pass the input size of the max_pool2d that made them")
    return np.ascontiguousarray(s, dtype=np.int64)


def _scale(where: str, scale_factor: Any, mode: str) -> tuple[int, int]:
    if mode not in UPSAMPLE_MODES:
        raise fail(where, "mode 'nearest' or 'bilinear'", f"mode={mode!r}")
    return pair(scale_factor, where, "scale_factor", minimum=1)


# -- max-pool and unpool --------------------------------------------------------------------
def max_pool2d(x: Any, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
               padding: int | Sequence[int] = 0) -> tuple[np.ndarray, np.ndarray]:
    """Max-pool with switches (PyTorch's ``max_pool2d(..., return_indices=True)``).

    Shapes: x (N, C, H, W) -> y (N, C, h_out, w_out) and int64 switches of the same shape,
    each the flat index ``row * W + col`` of the window's maximum in its input plane.
    Ties go to the first maximum in row-major order; NaN propagates.
    """
    where = "max_pool2d"
    x = check_image(x, where)
    geometry = window(where, kernel_size, stride, padding)
    check_fits(where, x.shape, geometry)
    return K.max_pool2d_forward(x, *geometry)


def max_unpool2d(y: Any, switches: Any, output_size: Any) -> np.ndarray:
    """Place each value of ``y`` at its switch in a zero array of spatial size ``output_size``.

    Unpooling of DeconvNet (Noh et al.); also max-pool's backward. ``output_size`` is
    (H, W) (or a full (N, C, H, W)); values with equal switches add up.
    Shapes: y, switches (N, C, h', w') -> (N, C, H, W).
    """
    where = "max_unpool2d"
    y = as_float_array(y, where, "y")
    check_ndim(y, 4, where, "y", layout="N, C, H, W")
    h, w = spatial_size(output_size, y, where)
    s = check_switches(switches, y.shape, h, w, where)
    return K.scatter_switches(y, s, h, w)


def max_unpool2d_backward(dz: Any, switches: Any) -> np.ndarray:
    """Gradient of ``max_unpool2d`` with respect to its values: ``dz`` gathered at the switches.

    Shapes: dz (N, C, H, W), switches (N, C, h', w') -> (N, C, h', w').
    """
    where = "max_unpool2d_backward"
    dz = check_image(dz, where, "dz")
    s = np.asarray(switches)
    if s.ndim != 4 or s.shape[:2] != dz.shape[:2]:
        raise fail(where, f"switches (N, C, h', w') with (N, C) == {dz.shape[:2]}",
                   f"switches.shape == {s.shape}")
    s = check_switches(s, s.shape, dz.shape[2], dz.shape[3], where)
    return K.gather_switches(dz, s)


# -- average pool ---------------------------------------------------------------------------
def avg_pool2d(x: Any, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
               padding: int | Sequence[int] = 0, count_include_pad: bool = True) -> np.ndarray:
    """Average pool; zero padding counts in the divisor when ``count_include_pad``.

    Shapes: (N, C, H, W) -> (N, C, h_out, w_out).
    """
    where = "avg_pool2d"
    x = check_image(x, where)
    geometry = window(where, kernel_size, stride, padding)
    check_fits(where, x.shape, geometry)
    return K.avg_pool2d_forward(x, *geometry, bool(count_include_pad))


def avg_pool2d_backward(dy: Any, input_size: Any, kernel_size: int | Sequence[int],
                        stride: int | Sequence[int] | None = None, padding: int | Sequence[int] = 0,
                        count_include_pad: bool = True) -> np.ndarray:
    """Input gradient of ``avg_pool2d`` for an input of spatial size ``input_size`` (H, W).

    Shapes: dy (N, C, h_out, w_out) -> (N, C, H, W).
    """
    where = "avg_pool2d_backward"
    dy = as_float_array(dy, where, "dy")
    check_ndim(dy, 4, where, "dy", layout="N, C, H, W")
    h, w = spatial_size(input_size, dy, where, "input_size")
    geometry = window(where, kernel_size, stride, padding)
    check_fits(where, (h, w), geometry)
    kh, kw, sh, sw, ph, pw = geometry
    expected = (*dy.shape[:2], pool_output_size(h, kh, sh, ph), pool_output_size(w, kw, sw, pw))
    dy = check_gradient(dy, expected, dy.dtype, where)
    return K.avg_pool2d_backward(dy, h, w, *geometry, bool(count_include_pad))


# -- upsampling -------------------------------------------------------------------------------
def upsample(x: Any, scale_factor: int | Sequence[int], mode: str = "nearest") -> np.ndarray:
    """Upsample by integer factors: ``"nearest"`` repeats pixels, ``"bilinear"`` interpolates
    (align_corners=False, PyTorch's default).

    Shapes: (N, C, H, W) -> (N, C, H*sh, W*sw).
    """
    where = f"upsample({mode!r})"
    sh, sw = _scale(where, scale_factor, mode)
    x = check_image(x, where)
    if mode == "nearest":
        return U.upsample_nearest_forward(x, sh, sw)
    return U.upsample_bilinear_forward(x, sh, sw)


def upsample_backward(dy: Any, scale_factor: int | Sequence[int], mode: str = "nearest") -> np.ndarray:
    """Input gradient of ``upsample``. Shapes: (N, C, H*sh, W*sw) -> (N, C, H, W)."""
    where = f"upsample_backward({mode!r})"
    sh, sw = _scale(where, scale_factor, mode)
    dy = check_image(dy, where, "dy")
    if dy.shape[2] % sh or dy.shape[3] % sw:
        raise fail(where, f"dy's H and W multiples of scale_factor {(sh, sw)}", f"dy.shape == {dy.shape}")
    if mode == "nearest":
        return U.upsample_nearest_backward(dy, sh, sw)
    return U.upsample_bilinear_backward(dy, sh, sw)


# -- global average pool ----------------------------------------------------------------------
def global_avg_pool2d(x: Any, keepdims: bool = False) -> np.ndarray:
    """Mean over H and W. Shapes: (N, C, H, W) -> (N, C), or (N, C, 1, 1) with ``keepdims``."""
    x = check_image(x, "global_avg_pool2d")
    return x.mean(axis=(2, 3), keepdims=bool(keepdims))
