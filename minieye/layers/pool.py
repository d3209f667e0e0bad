"""Pooling layers: MaxPool2D and its partner MaxUnpool2D, AvgPool2D, Upsample, GlobalAvgPool2D.

The math lives in ``minieye.functional.pool`` and ``minieye.kernels.pool``; these
layers add configuration checks, the backward closures and the pool/unpool pairing.

Pairing (DeconvNet's unpooling with switches)::

    pool = layers.MaxPool2D(2)
    unpool = layers.MaxUnpool2D(pool)       # the pool object is the partner, by identity
    net = me.Sequential(conv1, pool, conv2, convT2, unpool, convT1)

During a forward pass, ``pool`` records its switches and its input size in the pass's
scope (``minieye.core.current_scope()``, a dict that lives as long as the outermost
network call), under a key made of the pool object itself. ``unpool`` reads them from
the same scope and captures them in its backward closure. Nothing is stored on the
layers, so a network may evaluate many batches, or two batches may interleave (two
forwards, then their backwards in any order), and each backward still uses its own
pass's switches.

Errors instead of guesses:

- the unpool runs with no record from its pool in the same pass (called alone, or
  placed before its pool): ShapeError naming both layers;
- the pool ran more than once in the pass (one pool object at two places) and an
  unpool asks for its switches: ShapeError, since either record could be meant. The
  pool itself may run any number of times when no unpool reads it. Give each place its
  own MaxPool2D/MaxUnpool2D pair (pools have no parameters, so nothing is lost).

For explicit switches outside a network use ``F.max_unpool2d(y, switches, output_size)``.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from ..checks import as_float_array, check_ndim, fail, pair
from ..core import Backward, DeltaSet, Layer, current_scope
from ..functional.pool import UPSAMPLE_MODES, check_fits, check_gradient, check_image, window
from ..kernels import pool as K
from ..kernels import upsample as U

__all__ = ["MaxPool2D", "MaxUnpool2D", "AvgPool2D", "Upsample", "GlobalAvgPool2D"]

IntPair = int | Sequence[int]


def _compact(value: tuple[int, int]) -> int | list[int]:
    """A pair as JSON: one int when both entries agree."""
    return value[0] if value[0] == value[1] else list(value)


def _text(value: tuple[int, int]) -> str:
    return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"


class _Pooling(Layer):
    """Shared constructor, config and description of the windowed pools."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                 name: str | None = None):
        super().__init__(name)
        kh, kw, sh, sw, ph, pw = window(type(self).__name__ + (f" {name!r}" if name else ""),
                                        kernel_size, stride, padding)
        self.kernel_size, self.stride, self.padding = (kh, kw), (sh, sw), (ph, pw)

    @property
    def geometry(self) -> tuple[int, int, int, int, int, int]:
        return (*self.kernel_size, *self.stride, *self.padding)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "kernel_size": _compact(self.kernel_size),
                "stride": _compact(self.stride), "padding": _compact(self.padding)}

    def describe(self) -> str:
        text = f"{type(self).__name__}(k={_text(self.kernel_size)}, s={_text(self.stride)}"
        return text + (f", p={_text(self.padding)})" if any(self.padding) else ")")

    def _input(self, x: Any) -> np.ndarray:
        where = f"{self.label()} forward"
        x = check_image(x, where)
        check_fits(where, x.shape, self.geometry)
        return x


class _Switches(NamedTuple):
    """What a MaxPool2D run leaves in the pass's scope for its MaxUnpool2D."""

    switches: np.ndarray
    input_size: tuple[int, int]


def _scope_key(pool: "MaxPool2D") -> tuple[str, "MaxPool2D"]:
    return ("MaxPool2D.switches", pool)  # layers hash by identity


class MaxPool2D(_Pooling):
    """Max-pool that records its switches for a paired MaxUnpool2D.

    PyTorch's conventions: stride defaults to kernel_size, padding counts as -inf and
    is at most half the kernel, floor-mode output size, ties go to the first maximum.

    Shapes: (N, C, H, W) -> (N, C, (H + 2*pad_h - kh) // stride_h + 1, (W + 2*pad_w - kw) // stride_w + 1).
    """

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        x = self._input(x)
        h, w = x.shape[2:]
        y, switches = K.max_pool2d_forward(x, *self.geometry)
        scope = current_scope()
        if scope is not None:
            scope.setdefault(_scope_key(self), []).append(_Switches(switches, (h, w)))

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            dy = check_gradient(dy, y.shape, y.dtype, f"{self.label()} backward")
            return K.scatter_switches(dy, switches, h, w)

        return y, backward


class MaxUnpool2D(Layer):
    """Unpooling with switches (Noh et al., DeconvNet): each value goes back to where its
    paired MaxPool2D found the maximum; every other cell is zero.

    ``MaxUnpool2D(pool)`` takes the MaxPool2D object whose switches it uses; both must run
    in the same network call, the pool first. Values whose switches coincide (overlapping
    windows) add up. Backward gathers the output gradient at the switches.

    Shapes: the pool's output shape (N, C, h', w') -> the pool's input shape (N, C, H, W).
    """

    def __init__(self, pool: MaxPool2D, name: str | None = None):
        super().__init__(name)
        if not isinstance(pool, MaxPool2D):
            raise fail("MaxUnpool2D" + (f" {name!r}" if name else ""),
                       "pool: the MaxPool2D layer whose switches to use", f"pool={pool!r}",
                       "For explicit switches call minieye.functional.max_unpool2d(y, switches, output_size)")
        self.pool = pool

    def config(self) -> dict[str, Any]:
        """``{"pool": <the MaxPool2D object>}``: a layer reference, which a saver records as
        the pool's position in the enclosing network."""
        return {**super().config(), "pool": self.pool}

    def describe(self) -> str:
        return f"MaxUnpool2D(of {self.pool.label()})"

    def _record(self, where: str) -> _Switches:
        scope = current_scope()
        records = scope.get(_scope_key(self.pool)) if scope is not None else None
        if not records:
            raise fail(where, f"switches recorded by its {self.pool.label()} earlier in the same forward pass",
                       "none", "Run the pool and this unpool in one network call (Sequential or Graph), "
                       "the pool first; for explicit switches use minieye.functional.max_unpool2d")
        if len(records) > 1:
            raise fail(where, f"one run of its {self.pool.label()} in this forward pass",
                       f"{len(records)} runs, so its switches are ambiguous",
                       "Give each place its own MaxPool2D/MaxUnpool2D pair (pools have no parameters)")
        return records[0]

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        x = as_float_array(x, where)
        check_ndim(x, 4, where, layout="N, C, H, W")
        switches, (h, w) = self._record(where)
        if x.shape != switches.shape:
            raise fail(where, f"x of its pool's output shape {switches.shape}", f"x.shape == {x.shape}",
                       "Layers between the pool and the unpool must give back the pooled shape")
        out = K.scatter_switches(x, switches, h, w)

        def backward(dz: Any, deltas: DeltaSet) -> np.ndarray:
            dz = check_gradient(dz, out.shape, out.dtype, f"{self.label()} backward")
            return K.gather_switches(dz, switches)

        return out, backward


class AvgPool2D(_Pooling):
    """Average pool; with ``count_include_pad`` (default, as PyTorch) zero padding counts in
    the divisor, otherwise each window divides by its in-bounds cells.

    Shapes: as MaxPool2D.
    """

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                 count_include_pad: bool = True, name: str | None = None):
        super().__init__(kernel_size, stride, padding, name)
        self.count_include_pad = bool(count_include_pad)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "count_include_pad": self.count_include_pad}

    def describe(self) -> str:
        text = super().describe()
        return text if self.count_include_pad or not any(self.padding) else text[:-1] + ", exclude pad)"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        x = self._input(x)
        h, w = x.shape[2:]
        args = (*self.geometry, self.count_include_pad)
        y = K.avg_pool2d_forward(x, *args)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            dy = check_gradient(dy, y.shape, y.dtype, f"{self.label()} backward")
            return K.avg_pool2d_backward(dy, h, w, *args)

        return y, backward


class Upsample(Layer):
    """Upsampling by integer factors: ``mode="nearest"`` repeats pixels (the naive unpooling),
    ``mode="bilinear"`` interpolates with align_corners=False (PyTorch's default).

    Shapes: (N, C, H, W) -> (N, C, H*sh, W*sw).
    """

    def __init__(self, scale_factor: IntPair = 2, mode: str = "nearest", name: str | None = None):
        super().__init__(name)
        where = "Upsample" + (f" {name!r}" if name else "")
        if mode not in UPSAMPLE_MODES:
            raise fail(where, "mode 'nearest' or 'bilinear'", f"mode={mode!r}")
        self.scale_factor = pair(scale_factor, where, "scale_factor", minimum=1)
        self.mode = mode

    def config(self) -> dict[str, Any]:
        return {**super().config(), "scale_factor": _compact(self.scale_factor), "mode": self.mode}

    def describe(self) -> str:
        return f"Upsample(x{_text(self.scale_factor)}, {self.mode})"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        x = check_image(x, f"{self.label()} forward")
        sh, sw = self.scale_factor
        nearest = self.mode == "nearest"
        y = (U.upsample_nearest_forward if nearest else U.upsample_bilinear_forward)(x, sh, sw)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            dy = check_gradient(dy, y.shape, y.dtype, f"{self.label()} backward")
            return (U.upsample_nearest_backward if nearest else U.upsample_bilinear_backward)(dy, sh, sw)

        return y, backward


class GlobalAvgPool2D(Layer):
    """Mean over each channel's H x W plane.

    Shapes: (N, C, H, W) -> (N, C), or (N, C, 1, 1) with ``keepdims=True``.
    """

    def __init__(self, keepdims: bool = False, name: str | None = None):
        super().__init__(name)
        self.keepdims = bool(keepdims)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "keepdims": self.keepdims}

    def describe(self) -> str:
        return "GlobalAvgPool2D(keepdims)" if self.keepdims else "GlobalAvgPool2D"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        x = check_image(x, f"{self.label()} forward")
        n, c, h, w = x.shape
        y = x.mean(axis=(2, 3), keepdims=self.keepdims)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            dy = check_gradient(dy, y.shape, y.dtype, f"{self.label()} backward")
            scaled = dy.reshape(n, c, 1, 1) * dy.dtype.type(1.0 / (h * w))
            return np.broadcast_to(scaled, x.shape).copy()

        return y, backward
