"""Validation shared by the pooling functions and layers, for 1, 2 or 3 spatial dims.

Every check takes ``nd``, the number of spatial dims, and words its message as the 2-D
pooling always has: tuples such as ``(5, 5)`` in 2-D, ``(5,)`` in 1-D, ``(3, 5, 5)`` in
3-D. Used by ``minieye.functional.pool`` and ``minieye.layers.pool``.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from ..checks import LAYOUTS, as_float_array, check_ndim, fail, pair, spatial_tuple
from ..kernels.pool import pool_output_size

__all__ = ["Window", "check_volume", "window", "check_fits", "spatial_size", "check_switches", "check_unpool_size", "upsample_scale",
           "UPSAMPLE_MODES"]

UPSAMPLE_MODES = ("nearest", "bilinear")

_AXES = {1: "L", 2: "H and W", 3: "D, H and W"}


class Window(NamedTuple):
    """A validated pooling window: one entry per spatial dim in each field."""

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]


# Windows already checked, keyed by arguments made of plain ints only (so that True or 2.0
# never match 1 or 2): a layer passes the same tuples on every call, and checking them
# again cost about as much as a small pooling kernel.
_CHECKED: dict[tuple, Window] = {}


def _plain(value: Any) -> bool:
    return value is None or type(value) is int or (type(value) is tuple and all(type(v) is int for v in value))


def window(where: str, kernel_size: Any, stride: Any, padding: Any, nd: int = 2) -> Window:
    """The window from int-or-tuple arguments.

    stride None means the kernel size; padding may be at most half the kernel (as in
    PyTorch), so that every window holds at least one real input cell.
    """
    key = (kernel_size, stride, padding, nd)
    plain = all(map(_plain, key))
    if plain and key in _CHECKED:
        return _CHECKED[key]
    win = _window(where, kernel_size, stride, padding, nd)
    if plain and len(_CHECKED) < 4096:
        _CHECKED[key] = win
    return win


def _window(where: str, kernel_size: Any, stride: Any, padding: Any, nd: int) -> Window:
    k = spatial_tuple(kernel_size, nd, where, "kernel_size", minimum=1)
    s = spatial_tuple(k if stride is None else stride, nd, where, "stride", minimum=1)
    p = spatial_tuple(padding, nd, where, "padding", minimum=0)
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise fail(where, f"padding at most half the kernel size (kernel_size={k})", f"padding={p}")
    return Window(k, s, p)


def check_volume(x: Any, where: str, name: str = "x", dtype: Any = None, nd: int = 2) -> np.ndarray:
    """``x`` as a C-contiguous float (N, C, *spatial) array with non-empty spatial dims."""
    x = as_float_array(x, where, name, dtype)
    check_ndim(x, nd + 2, where, name, layout=LAYOUTS[nd])
    if min(x.shape[2:]) < 1:
        raise fail(where, f"{name} with non-empty {_AXES[nd]}", f"{name}.shape == {x.shape}")
    return x


def check_fits(where: str, shape: tuple[int, ...], win: Window) -> None:
    """Refuse a kernel larger than the padded input (``shape`` ends with the spatial dims)."""
    nd = len(win.kernel_size)
    spatial = tuple(shape[-nd:])
    padded = tuple(size + 2 * p for size, p in zip(spatial, win.padding))
    if any(size < k for size, k in zip(padded, win.kernel_size)):
        raise fail(where, f"a kernel {win.kernel_size} no larger than the padded input {padded}",
                   f"input shape {tuple(shape)}, padding={win.padding}",
                   "Use a smaller kernel, more padding, or a larger input")


def spatial_size(size: Any, y: np.ndarray, where: str, name: str = "output_size", nd: int = 2) -> tuple[int, ...]:
    """The spatial size from ``nd`` ints (or one int) or a full (N, C, *spatial) shape whose N, C match ``y``."""
    size = tuple(size) if isinstance(size, (tuple, list, np.ndarray)) else size
    if isinstance(size, tuple) and len(size) == nd + 2:  # x.shape, as PyTorch also accepts
        if tuple(int(s) for s in size[:2]) != y.shape[:2]:
            raise fail(where, f"{name} (N, C) == {y.shape[:2]}", f"{name}={size}")
        size = size[2:]
    return spatial_tuple(size, nd, where, name, minimum=1)


def check_switches(switches: Any, shape: tuple[int, ...], spatial: tuple[int, ...], where: str) -> np.ndarray:
    """Switches as contiguous int64 of the pooled values' ``shape``, each in [0, prod(spatial))."""
    nd = len(spatial)
    s = np.asarray(switches)
    if s.dtype.kind not in "iu":
        raise fail(where, f"integer switches (as returned by max_pool{nd}d)", f"switches.dtype == {s.dtype}")
    if s.shape != tuple(shape):
        raise fail(where, f"switches of the pooled values' shape {tuple(shape)}", f"switches.shape == {s.shape}")
    cells = int(np.prod(spatial))
    if s.size and (int(s.min()) < 0 or int(s.max()) >= cells):
        raise fail(where, f"switches in [0, {cells}) for output_size {spatial}",
                   f"values in [{int(s.min())}, {int(s.max())}]",
                   f"Pass the input size of the max_pool{nd}d that made them")
    return np.ascontiguousarray(s, dtype=np.int64)


def upsample_scale(where: str, scale_factor: Any, mode: Any) -> tuple[int, int]:
    """An upsampling's ``mode`` checked and its ``scale_factor`` as (sh, sw), each an int >= 1."""
    if mode not in UPSAMPLE_MODES:
        raise fail(where, "mode 'nearest' or 'bilinear'", f"mode={mode!r}")
    return pair(scale_factor, where, "scale_factor", minimum=1)


def check_unpool_size(pooled: Sequence[int], output: Sequence[int], where: str, window: Window) -> None:
    """Refuse an unpooling ``output`` size that no max-pool input could have had, given the pool's
    ``window``: its pooling must give ``pooled`` on every axis.
    """
    pooled, output = tuple(int(n) for n in pooled), tuple(int(n) for n in output)
    kernel, stride, padding = window
    made = tuple(pool_output_size(o, k, s, p) if o + 2 * p >= k else 0
                 for o, k, s, p in zip(output, kernel, stride, padding))
    if made != pooled:
        low = tuple((m - 1) * s - 2 * p + k for m, k, s, p in zip(pooled, kernel, stride, padding))
        high = tuple(lo + s - 1 for lo, s in zip(low, stride))
        raise fail(where, f"output_size between {low} and {high} (the input sizes that max-pool with "
                   f"kernel_size={tuple(kernel)}, stride={tuple(stride)}, padding={tuple(padding)} pools to {pooled})",
                   f"output_size={output}")
