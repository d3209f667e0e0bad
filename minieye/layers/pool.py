"""Pooling layers: max-pool and its partner max-unpool, average pool (1-, 2- and 3-D),
Upsample and GlobalAvgPool2D.

The math lives in ``minieye.functional.pool`` and ``minieye.kernels.pool``; these
layers add configuration checks, the backward closures and the pool/unpool pairing.
Each family is one class parametrised by ``nd``, the number of spatial dims
(``_MaxPool``, ``_MaxUnpool``, ``_AvgPool``); ``MaxPool1D``/``MaxPool2D``/``MaxPool3D``
and the others only fix ``nd`` and say their shapes.

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
pass's switches. The 1-D and 3-D pairs (``MaxUnpool1D(MaxPool1D(...))``,
``MaxUnpool3D(MaxPool3D(...))``) work the same way.

Which run an unpool pairs with: the **latest run of its pool in the pass**, provided
every earlier run of that pool has already been read by some unpool. So one
``Sequential(pool, MaxUnpool2D(pool))`` block may sit at several graph nodes (each run's
unpool follows its pool: pool, unpool, pool, unpool), several unpools may read one run
(two decoders of one encoder), and the pool itself may run any number of times when no
unpool reads it. Distinct pools nest like parentheses (encoder p1, p2; decoder u2, u1)
because each pool keeps its own list of runs.

Errors instead of guesses:

- the unpool runs with no record from its pool in the same pass (called alone, or
  placed before its pool): ShapeError naming both layers;
- the same pool object ran twice (or more) with no unpool reading the earlier run, and
  then an unpool asks for its switches (pool(a), pool(b), unpool): ShapeError. Either
  run could be meant: nested levels would want the inner one (last in, first out),
  sibling branches the first; the pass cannot tell them apart, so minieye refuses
  rather than guess. Give each level its own pool/unpool pair (pools have no
  parameters, so nothing is lost).

For explicit switches outside a network use ``F.max_unpool2d(y, switches, output_size)``
(or ``max_unpool1d``/``max_unpool3d``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..checks import LAYOUTS, as_float_array, check_bool, check_gradient, check_ndim, compact, fail, pair, where
from ..core import Backward, DeltaSet, Layer, current_scope
from ..functional.pool import UPSAMPLE_MODES, check_image
from ..functional.pool_checks import Window, check_fits, check_volume, window
from ..kernels import pool as K
from ..kernels import upsample as U

__all__ = ["MaxPool1D", "MaxPool2D", "MaxPool3D", "MaxUnpool1D", "MaxUnpool2D", "MaxUnpool3D",
           "AvgPool1D", "AvgPool2D", "AvgPool3D", "Upsample", "GlobalAvgPool2D"]

Ints = int | Sequence[int]


def _text(value: tuple[int, ...]) -> str:
    return str(value[0]) if len(set(value)) == 1 else "x".join(map(str, value))


class _Pooling(Layer):
    """Shared constructor, config and description of the windowed pools over ``nd`` spatial dims."""

    nd = 2

    def __init__(self, kernel_size: Ints, stride: Ints | None = None, padding: Ints = 0,
                 name: str | None = None):
        super().__init__(name)
        self.kernel_size, self.stride, self.padding = window(where(type(self).__name__, name), kernel_size, stride,
                                                             padding, self.nd)

    @property
    def geometry(self) -> Window:
        return Window(self.kernel_size, self.stride, self.padding)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "kernel_size": compact(self.kernel_size),
                "stride": compact(self.stride), "padding": compact(self.padding)}

    def describe(self) -> str:
        text = f"{type(self).__name__}(k={_text(self.kernel_size)}, s={_text(self.stride)}"
        return text + (f", p={_text(self.padding)})" if any(self.padding) else ")")

    def _input(self, x: Any) -> np.ndarray:
        where = f"{self.label()} forward"
        x = check_volume(x, where, nd=self.nd)
        check_fits(where, x.shape, self.geometry)
        return x


class _Switches:
    """What a max-pool run leaves in the pass's scope for its unpool; ``read`` turns True
    once an unpool has used it (see the module docstring for the pairing rule)."""

    __slots__ = ("switches", "input_size", "read")

    def __init__(self, switches: np.ndarray, input_size: tuple[int, ...]):
        self.switches, self.input_size, self.read = switches, input_size, False


def _scope_key(pool: "_MaxPool") -> tuple[str, "_MaxPool"]:
    return ("MaxPool.switches", pool)  # layers hash by identity


class _MaxPool(_Pooling):
    """Max-pool over ``nd`` spatial dims that records its switches for a paired unpool."""

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        x = self._input(x)
        spatial = x.shape[2:]
        y, switches = K.max_pool_forward(x, *self.geometry)
        scope = current_scope()
        if scope is not None:
            scope.setdefault(_scope_key(self), []).append(_Switches(switches, spatial))

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            dy = check_gradient(dy, y.shape, y.dtype, f"{self.label()} backward")
            return K.scatter_switches(dy, switches, spatial)

        return y, backward


class MaxPool1D(_MaxPool):
    """Max-pool of (N, C, L) signals that records its switches (index in L) for a paired MaxUnpool1D.

    Conventions as MaxPool2D. Shapes: (N, C, L) -> (N, C, (L + 2*pad - k) // stride + 1).
    """

    nd = 1


class MaxPool2D(_MaxPool):
    """Max-pool that records its switches for a paired MaxUnpool2D.

    PyTorch's conventions: stride defaults to kernel_size, padding counts as -inf and
    is at most half the kernel, floor-mode output size, ties go to the first maximum.

    Shapes: (N, C, H, W) -> (N, C, (H + 2*pad_h - kh) // stride_h + 1, (W + 2*pad_w - kw) // stride_w + 1).
    """

    nd = 2


class MaxPool3D(_MaxPool):
    """Max-pool of (N, C, D, H, W) volumes that records its switches (flat index in D*H*W) for a
    paired MaxUnpool3D. Conventions as MaxPool2D.

    Shapes: (N, C, D, H, W) -> (N, C, d_out, h_out, w_out), each ``(size + 2*pad - k) // stride + 1``.
    """

    nd = 3


class _MaxUnpool(Layer):
    """Unpooling with switches over ``pool_class.nd`` spatial dims (see MaxUnpool2D)."""

    pool_class: type[_MaxPool] = _MaxPool

    def __init__(self, pool: _MaxPool, name: str | None = None):
        super().__init__(name)
        if not isinstance(pool, self.pool_class):
            nd = self.pool_class.nd
            raise fail(where(type(self).__name__, name),
                       f"pool: the {self.pool_class.__name__} layer whose switches to use", f"pool={pool!r}",
                       f"For explicit switches call minieye.functional.max_unpool{nd}d(y, switches, output_size)")
        self.pool = pool

    def config(self) -> dict[str, Any]:
        """``{"pool": <the pool object>}``: a layer reference, which a saver records as the
        pool's position in the enclosing network."""
        return {**super().config(), "pool": self.pool}

    def describe(self) -> str:
        return f"{type(self).__name__}(of {self.pool.label()})"

    def _record(self, where: str) -> _Switches:
        scope = current_scope()
        records = scope.get(_scope_key(self.pool)) if scope is not None else None
        nd = self.pool_class.nd
        if not records:
            raise fail(where, f"switches recorded by its {self.pool.label()} earlier in the same forward pass",
                       "none", "Run the pool and this unpool in one network call (Sequential or Graph), "
                       f"the pool first; for explicit switches use minieye.functional.max_unpool{nd}d")
        unread = sum(not r.read for r in records[:-1])
        if unread:  # an earlier run nobody unpooled yet: it or the latest could be meant
            raise fail(where, f"one run of its {self.pool.label()} waiting for an unpool in this forward pass "
                       "(each earlier run read by an unpool before the pool runs again)",
                       f"{len(records)} runs, {unread + (not records[-1].read)} not read by any unpool, "
                       "so its switches are ambiguous",
                       f"Give each place its own {self.pool_class.__name__}/{type(self).__name__} pair "
                       "(pools have no parameters)")
        record = records[-1]
        record.read = True
        return record

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        where = f"{self.label()} forward"
        x = as_float_array(x, where)
        nd = self.pool_class.nd
        check_ndim(x, nd + 2, where, layout=LAYOUTS[nd])
        record = self._record(where)
        switches, spatial = record.switches, record.input_size
        if x.shape != switches.shape:
            raise fail(where, f"x of its pool's output shape {switches.shape}", f"x.shape == {x.shape}",
                       "Layers between the pool and the unpool must give back the pooled shape")
        out = K.scatter_switches(x, switches, spatial)

        def backward(dz: Any, deltas: DeltaSet) -> np.ndarray:
            dz = check_gradient(dz, out.shape, out.dtype, f"{self.label()} backward")
            return K.gather_switches(dz, switches)

        return out, backward


class MaxUnpool1D(_MaxUnpool):
    """Unpooling of (N, C, L) signals with the switches of its paired MaxPool1D (see MaxUnpool2D).

    Shapes: the pool's output shape (N, C, l_out) -> the pool's input shape (N, C, L).
    """

    pool_class = MaxPool1D


class MaxUnpool2D(_MaxUnpool):
    """Unpooling with switches (Noh et al., DeconvNet): each value goes back to where its
    paired MaxPool2D found the maximum; every other cell is zero.

    ``MaxUnpool2D(pool)`` takes the MaxPool2D object whose switches it uses; both must run
    in the same network call, the pool first. Values whose switches coincide (overlapping
    windows) add up. Backward gathers the output gradient at the switches.

    Shapes: the pool's output shape (N, C, h', w') -> the pool's input shape (N, C, H, W).
    """

    pool_class = MaxPool2D


class MaxUnpool3D(_MaxUnpool):
    """Unpooling of (N, C, D, H, W) volumes with the switches of its paired MaxPool3D (see MaxUnpool2D).

    Shapes: the pool's output shape (N, C, d', h', w') -> the pool's input shape (N, C, D, H, W).
    """

    pool_class = MaxPool3D


class _AvgPool(_Pooling):
    """Average pool over ``nd`` spatial dims; with ``count_include_pad`` (default, as PyTorch)
    zero padding counts in the divisor, otherwise each window divides by its in-bounds cells."""

    def __init__(self, kernel_size: Ints, stride: Ints | None = None, padding: Ints = 0,
                 count_include_pad: bool = True, name: str | None = None):
        super().__init__(kernel_size, stride, padding, name)
        self.count_include_pad = check_bool(count_include_pad, where(type(self).__name__, name),
                                            "count_include_pad")

    def config(self) -> dict[str, Any]:
        return {**super().config(), "count_include_pad": self.count_include_pad}

    def describe(self) -> str:
        text = super().describe()
        return text if self.count_include_pad or not any(self.padding) else text[:-1] + ", exclude pad)"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        x = self._input(x)
        spatial = x.shape[2:]
        args = (*self.geometry, self.count_include_pad)
        y = K.avg_pool_forward(x, *args)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            dy = check_gradient(dy, y.shape, y.dtype, f"{self.label()} backward")
            return K.avg_pool_backward(dy, spatial, *args)

        return y, backward


class AvgPool1D(_AvgPool):
    """Average pool of (N, C, L) signals (see AvgPool2D). Shapes: (N, C, L) -> (N, C, l_out)."""

    nd = 1


class AvgPool2D(_AvgPool):
    """Average pool; with ``count_include_pad`` (default, as PyTorch) zero padding counts in
    the divisor, otherwise each window divides by its in-bounds cells.

    Shapes: as MaxPool2D.
    """

    nd = 2


class AvgPool3D(_AvgPool):
    """Average pool of (N, C, D, H, W) volumes (see AvgPool2D).

    Shapes: (N, C, D, H, W) -> (N, C, d_out, h_out, w_out), as MaxPool3D.
    """

    nd = 3


class Upsample(Layer):
    """Upsampling by integer factors: ``mode="nearest"`` repeats pixels (the naive unpooling),
    ``mode="bilinear"`` interpolates with align_corners=False (PyTorch's default).

    Shapes: (N, C, H, W) -> (N, C, H*sh, W*sw).
    """

    def __init__(self, scale_factor: Ints = 2, mode: str = "nearest", name: str | None = None):
        super().__init__(name)
        label = where("Upsample", name)
        if mode not in UPSAMPLE_MODES:
            raise fail(label, "mode 'nearest' or 'bilinear'", f"mode={mode!r}")
        self.scale_factor = pair(scale_factor, label, "scale_factor", minimum=1)
        self.mode = mode

    def config(self) -> dict[str, Any]:
        return {**super().config(), "scale_factor": compact(self.scale_factor), "mode": self.mode}

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
