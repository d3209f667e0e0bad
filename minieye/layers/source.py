"""Source: a layer without inputs whose output is its own parameter.

``y = value`` and ``d value = dy``. Put one at the start of a network to learn an
input, as MindsEye learned the sharp image in its deconvolution: the trainer adjusts
``value`` like any weight. Frozen, it is a constant.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_gradient, check_positive_int, fail, resolve_dtype
from ..checks import where as where_of
from ..core import Backward, DeltaSet, Layer, Parameter
from ._parameters import layer_parameter

__all__ = ["Source"]


class Source(Layer):
    """Outputs its parameter ``value``; built from a ``shape`` (zeros) or an initial ``value`` array.

    Shapes: no inputs -> y ``shape`` (e.g. (1, C, H, W) for an image to learn).
    ``dtype`` defaults to float32 (or to ``value``'s float dtype when given).
    """

    n_inputs = 0

    def __init__(self, shape: tuple[int, ...] | list[int] | None = None, value: Any = None, dtype: Any = None,
                 name: str | None = None):
        super().__init__(name)
        where = where_of("Source", name)
        if (shape is None) == (value is None):
            raise fail(where, "exactly one of shape and value", f"shape={shape!r}, value={'given' if value is not None else None}")
        if value is not None:
            arr = as_float_array(value, where, "value")
            self.dtype = resolve_dtype(dtype if dtype is not None else arr.dtype, where)
        else:
            dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
            dims = tuple(check_positive_int(d, where, "shape entries") for d in dims)
            self.dtype = resolve_dtype(dtype, where)
            arr = np.zeros(dims, dtype=self.dtype)
        self.value = Parameter(arr, name="value", dtype=self.dtype)
        self._built_shape = self.value.shape

    @property
    def shape(self) -> tuple[int, ...]:
        return self._built_shape

    def config(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype.name, **super().config()}

    def describe(self) -> str:
        return f"Source{self.shape}"

    def forward(self) -> tuple[np.ndarray, Backward]:
        # checked (a common slip: image.value = array, for image.value.value[...] = array), then
        # copied: the trainer updates param.value in place while this output may still be in use
        y = layer_parameter(self, "value", self._built_shape, self.dtype).copy()
        param = self.value

        def backward(dy: Any, deltas: DeltaSet) -> tuple:
            dy = check_gradient(dy, y.shape, param.dtype, f"{self.label()} backward")
            deltas.add(param, dy)
            return ()

        return y, backward
