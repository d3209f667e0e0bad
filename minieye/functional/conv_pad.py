"""Padding the last two axes (zero, reflect, replicate) and its adjoint.

A real photograph is not periodic and not surrounded by black, so image work pads
by reflection (``abc|cba`` without repeating the edge: ``cb|abc|ba``, as PyTorch's
'reflect') or by repeating the edge ('replicate'). Each mode is a linear map
``P``: every padded pixel copies one source pixel (or is zero). ``pad_adjoint`` is
``P^T``: it sums every padded pixel back onto the pixel it was copied from, which is
the gradient of padding. Amounts follow ``torch.nn.functional.pad``: an int, an
(h, w) pair, or ``(left, right, top, bottom)``. ``layers.Pad`` and ``layers.Crop``
use the same helpers.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_allocation, check_nonneg_int, fail

__all__ = ["pad", "pad_adjoint", "pad_amounts", "apply_pad", "fold_pad"]

_NUMPY_MODE = {"zero": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge"}
Amounts = tuple[int, int, int, int]


def pad_amounts(value: Any, where: str, name: str = "pad") -> Amounts:
    """(left, right, top, bottom) from an int, an (h, w) pair or PyTorch's (left, right, top, bottom)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        items: tuple = (value,) * 4
    else:
        try:
            items = tuple(value)
        except TypeError:
            items = ()
        if len(items) == 2:  # (h, w): top = bottom = h, left = right = w
            items = (items[1], items[1], items[0], items[0])
    if len(items) != 4:
        raise fail(where, f"{name} an int, an (h, w) pair or (left, right, top, bottom)", f"{name}={value!r}")
    return tuple(check_nonneg_int(v, where, name) for v in items)  # type: ignore[return-value]


def _check(shape: tuple[int, ...], amounts: Amounts, mode: str, where: str, name: str = "x") -> None:
    """Refuse an unknown mode, fewer than 2 axes, or a reflection as large as the image."""
    if mode not in _NUMPY_MODE:
        raise fail(where, "mode 'zero', 'reflect' or 'replicate'", f"mode={mode!r}")
    if len(shape) < 2:
        raise fail(where, f"{name} with at least 2 dimensions (..., H, W)", f"{name}.shape == {tuple(shape)}")
    left, right, top, bottom = amounts
    h, w = shape[-2], shape[-1]
    if mode != "zero" and mode != "constant" and (h == 0 or w == 0) and any(amounts):
        raise fail(where, f"{name} with non-empty H and W to pad in mode {mode!r} (it copies image pixels)",
                   f"{name}.shape == {tuple(shape)}", "use mode='zero' for an empty image")
    if mode == "reflect" and (max(top, bottom) >= h or max(left, right) >= w):
        raise fail(where, "reflect padding smaller than the image size on each side",
                   f"pad (left, right, top, bottom) = {amounts} for an image of {h} x {w}",
                   "Use mode='replicate' or pad in several steps")


def apply_pad(x: np.ndarray, amounts: Amounts, mode: str, where: str) -> np.ndarray:
    """``pad`` on a validated float array, errors worded for ``where``."""
    _check(x.shape, amounts, mode, where)
    left, right, top, bottom = amounts
    check_allocation(x.shape[:-2] + (x.shape[-2] + top + bottom, x.shape[-1] + left + right), x.dtype, where,
                     "the padded array")
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(x, widths, mode=_NUMPY_MODE[mode])


def _fold(dy: np.ndarray, n: int, before: int, after: int, mode: str) -> np.ndarray:
    """The adjoint of padding the last axis (n inputs, ``before``/``after`` added): border
    gradients go back onto the input positions they copied (slices, not a scatter or a matrix)."""
    dx = dy[..., before:before + n].copy()
    if mode == "replicate":
        if before:
            dx[..., 0] += dy[..., :before].sum(axis=-1)
        if after:
            dx[..., n - 1] += dy[..., before + n:].sum(axis=-1)
    elif mode == "reflect":
        if before:  # padded position j < before copies input position before - j
            dx[..., 1:before + 1] += dy[..., before - 1::-1]
        if after:  # padded position before + n + k copies input position n - 2 - k
            dx[..., n - 1 - after:n - 1] += dy[..., before + n:][..., ::-1]
    return dx


def fold_pad(dy: np.ndarray, amounts: Amounts, mode: str, where: str) -> np.ndarray:
    """``pad_adjoint`` on a validated float array, errors worded for ``where``. O(size of dy)."""
    left, right, top, bottom = amounts
    if dy.ndim < 2 or dy.shape[-2] - top - bottom < 1 or dy.shape[-1] - left - right < 1:
        raise fail(where, "dy larger than the padding", f"dy.shape == {dy.shape}, pad={amounts}")
    h, w = dy.shape[-2] - top - bottom, dy.shape[-1] - left - right
    _check(dy.shape[:-2] + (h, w), amounts, mode, where, "dy")
    by_cols = _fold(dy, w, left, right, mode)
    folded = _fold(np.swapaxes(by_cols, -1, -2), h, top, bottom, mode)
    return np.ascontiguousarray(np.swapaxes(folded, -1, -2))


def pad(x: Any, pad: Any, mode: str = "zero") -> np.ndarray:
    """Pad the last two axes of x.

    Shapes: (..., H, W) -> (..., H + top + bottom, W + left + right). ``pad`` is an int
    (all sides), an (h, w) pair (symmetric) or ``(left, right, top, bottom)`` as
    ``torch.nn.functional.pad``; ``mode`` is 'zero', 'reflect' or 'replicate'.
    """
    return apply_pad(as_float_array(x, "pad", "x"), pad_amounts(pad, "pad"), mode, "pad")


def pad_adjoint(dy: Any, pad: Any, mode: str = "zero") -> np.ndarray:
    """The adjoint (gradient) of ``pad``: <pad(x), dy> == <x, pad_adjoint(dy)>.

    Shapes: (..., H + top + bottom, W + left + right) -> (..., H, W).
    """
    where = "pad_adjoint"
    return fold_pad(as_float_array(dy, where, "dy"), pad_amounts(pad, where), mode, where)
