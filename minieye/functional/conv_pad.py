"""Padding the last two axes (zero, reflect, replicate) and its adjoint.

A real photograph is not periodic and not surrounded by black, so image work pads
by reflection (``abc|cba`` without repeating the edge: ``cb|abc|ba``, as PyTorch's
'reflect') or by repeating the edge ('replicate'). Each mode is a linear map
``P``: every padded pixel copies one source pixel (or is zero). ``pad_adjoint`` is
``P^T``: it sums every padded pixel back onto the pixel it was copied from, which is
the gradient of padding.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_ndim, fail

__all__ = ["pad", "pad_adjoint"]

_NUMPY_MODE = {"zero": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge"}


def _amounts(pad: Any, where: str) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) from an int, an (h, w) pair or PyTorch's 4-tuple."""
    if isinstance(pad, (int, np.integer)) and not isinstance(pad, bool):
        values = (pad,) * 4
    else:
        try:
            values = tuple(pad)
        except TypeError:
            values = ()
        if len(values) == 2:
            values = (values[1], values[1], values[0], values[0])
    ok = len(values) == 4 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0
                                  for v in values)
    if not ok:
        raise fail(where, "pad an int >= 0, an (h, w) pair or (left, right, top, bottom)", f"pad={pad!r}")
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def _check(x: np.ndarray, amounts: tuple[int, int, int, int], mode: str, where: str) -> str:
    if mode not in _NUMPY_MODE:
        raise fail(where, "mode 'zero', 'reflect' or 'replicate'", f"mode={mode!r}")
    check_ndim(x, (2, 3, 4), where, "x", layout="(N, C,) H, W")
    left, right, top, bottom = amounts
    h, w = x.shape[-2], x.shape[-1]
    if mode == "reflect" and (max(top, bottom) >= h or max(left, right) >= w):
        raise fail(where, "reflect padding smaller than the image size on each side",
                   f"pad (left, right, top, bottom) = {amounts} for an image of {h} x {w}")
    return _NUMPY_MODE[mode]


def pad(x: Any, pad: Any, mode: str = "zero") -> np.ndarray:
    """Pad the last two axes of x.

    Shapes: (..., H, W) -> (..., H + top + bottom, W + left + right). ``pad`` is an int
    (all sides), an (h, w) pair (symmetric) or ``(left, right, top, bottom)`` as
    ``torch.nn.functional.pad``; ``mode`` is 'zero', 'reflect' or 'replicate'.
    """
    where = "pad"
    x = as_float_array(x, where, "x")
    amounts = _amounts(pad, where)
    np_mode = _check(x, amounts, mode, where)
    left, right, top, bottom = amounts
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(x, widths, mode=np_mode)


def _fold_matrix(size: int, before: int, after: int, np_mode: str, dtype: np.dtype) -> np.ndarray:
    """M (size, size + before + after) with M[src, k] = 1 when padded position k copies src."""
    index = np.arange(size)
    if np_mode == "constant":
        source = np.concatenate([np.full(before, -1), index, np.full(after, -1)])
    else:
        source = np.pad(index, (before, after), mode=np_mode)
    m = np.zeros((size, size + before + after), dtype=dtype)
    keep = source >= 0
    m[source[keep], np.flatnonzero(keep)] = 1
    return m


def pad_adjoint(dy: Any, pad: Any, mode: str = "zero") -> np.ndarray:
    """The adjoint (gradient) of ``pad``: <pad(x), dy> == <x, pad_adjoint(dy)>.

    Shapes: (..., H + top + bottom, W + left + right) -> (..., H, W).
    """
    where = "pad_adjoint"
    dy = as_float_array(dy, where, "dy")
    left, right, top, bottom = _amounts(pad, where)
    h, w = dy.shape[-2] - top - bottom, dy.shape[-1] - left - right
    if h < 1 or w < 1:
        raise fail(where, "dy larger than the padding", f"dy.shape == {dy.shape}, pad={pad!r}")
    np_mode = _check(np.empty((h, w)), (left, right, top, bottom), mode, where)
    m_h = _fold_matrix(h, top, bottom, np_mode, dy.dtype)
    m_w = _fold_matrix(w, left, right, np_mode, dy.dtype)
    return np.ascontiguousarray(m_h @ dy @ m_w.T)
