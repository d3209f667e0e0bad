"""A layer's Parameter values, checked where forward reads them.

A layer builds its Parameters with the shapes its arithmetic needs, but a user may later
place a Parameter of another layer there (weight sharing) or replace a value by hand
(``conv.weight.value = w``). The kernels trust the shapes they get, so a weight with more
input channels than ``x`` has would read past ``x`` and return garbage, and a Dense or a
norm would fail deep inside NumPy. ``layer_parameter`` returns the value at once when it
fits (one type, dtype and shape comparison) and otherwise says which layer, which
Parameter, and what it expected.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import fail, fail_type

__all__ = ["layer_parameter"]


def layer_parameter(layer: Any, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``layer.<name>.value``, of ``shape`` (the one the layer was built with) and ``dtype``.

    A float value of the other precision is cast (a copy); a wrong shape, a non-float value
    or something that is not a Parameter is refused with a message naming the layer.
    """
    value = getattr(getattr(layer, name), "value", None)
    if type(value) is np.ndarray and value.dtype == dtype and value.shape == shape:
        return value
    return _refuse_or_cast(layer, name, shape, dtype)


def _refuse_or_cast(layer: Any, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    where = f"{layer.label()} forward"
    param = getattr(layer, name)
    if not hasattr(param, "value") or not hasattr(param, "frozen"):
        raise fail_type(where, f"{name} a minieye.Parameter", f"{name} is {type(param).__name__}",
                        f"to set its values keep the Parameter: {name}.value[...] = new_values")
    value = param.value
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        got = f"{name}.value.dtype == {value.dtype}" if isinstance(value, np.ndarray) \
            else f"{name}.value is {type(value).__name__}"
        raise fail_type(where, f"{name}.value a float array", got,
                        f"assign into it to keep its dtype: {name}.value[...] = new_values")
    if value.shape != shape:
        raise fail(where, f"{name}.value of shape {shape}, the shape the layer was built with",
                   f"{name}.value.shape == {value.shape}",
                   "a Parameter shared between layers, or a value replaced by hand, must keep that shape")
    return value.astype(dtype)
