"""Pooling layers: max-pool and its partner max-unpool, average pool (1-, 2- and 3-D),
Upsample and GlobalAvgPool2D.

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

Outside a network, give the unpool its switches instead of a pool:
``MaxUnpool2D(switches=s, output_size=(H, W))`` with ``y, s = F.max_pool2d(x, 2)`` is a
layer of its own (saved with its switches), or call ``F.max_unpool2d(y, s, (H, W))``.

Every check and kernel call goes through ``minieye.functional.pool``; these layers add
the configuration, the backward closures and the pool/unpool pairing.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import functional as F
from ..checks import LAYOUTS, check_bool, check_gradient, check_ndim, compact, fail, layer_gradient, where
from ..core import Backward, DeltaSet, Layer, current_scope
from ..functional.pool_checks import Window, upsample_scale, window

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


class _Switches:
    """What a max-pool run leaves in the pass's scope for its unpool; ``read`` turns True
    once an unpool has used it (see the module docstring for the pairing rule)."""

    __slots__ = ("switches", "read")

    def __init__(self, switches: F.Switches):
        self.switches, self.read = switches, False


def _scope_key(pool: "_MaxPool") -> tuple[str, "_MaxPool"]:
    return ("MaxPool.switches", pool)  # layers hash by identity


class _MaxPool(_Pooling):
    """Max-pool over ``nd`` spatial dims that records its switches for a paired unpool."""

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        y, switches = F.max_pool_switches(x, *self.geometry, nd=self.nd, where=f"{self.label()} forward")
        scope = current_scope()
        if scope is not None:
            scope.setdefault(_scope_key(self), []).append(_Switches(switches))

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            # dy checked against the pooled shape here, so unpool cannot fail: its label may be short
            return switches.unpool(layer_gradient(dy, y.shape, y.dtype, self), type(self).__name__)

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

    def __init__(self, pool: _MaxPool | None = None, name: str | None = None, *, switches: Any = None,
                 output_size: Any = None):
        super().__init__(name)
        label, nd = where(type(self).__name__, name), self.pool_class.nd
        self.pool, self.switches = pool, None
        if switches is not None and pool is None:
            if output_size is None:
                raise fail(label, "output_size (the pooled input's spatial size) with switches", "none")
            check_ndim(np.asarray(switches), nd + 2, label, "switches", layout=LAYOUTS[nd])
            self.switches = F.Switches(switches, output_size, label)
        elif not isinstance(pool, self.pool_class) or switches is not None:
            raise fail(label, f"pool: the {self.pool_class.__name__} layer whose switches to use "
                       "(or switches= and output_size= without a pool)", f"pool={pool!r}",
                       f"For explicit switches call minieye.functional.max_unpool{nd}d(y, switches, output_size)")

    def config(self) -> dict[str, Any]:
        """``{"pool": <the pool object>}``, a layer reference which a saver records as the
        pool's position in the enclosing network; or the explicit switches and output size."""
        if self.switches is not None:
            return {**super().config(), "switches": self.switches.index,
                    "output_size": list(self.switches.input_size)}
        return {**super().config(), "pool": self.pool}

    def describe(self) -> str:
        if self.switches is not None:
            return f"{type(self).__name__}(switches {tuple(self.switches.index.shape)} -> {self.switches.input_size})"
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
        nd = self.pool_class.nd
        check_ndim(np.asarray(x), nd + 2, where, layout=LAYOUTS[nd])
        switches = self.switches if self.switches is not None else self._record(where).switches
        out = switches.unpool(x, where)

        def backward(dz: Any, deltas: DeltaSet) -> np.ndarray:
            where = f"{self.label()} backward"
            return switches.gather(check_gradient(dz, out.shape, out.dtype, where), where)

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
        pool, pool_backward = _AVG_POOL[self.nd]
        args = (*self.geometry, self.count_include_pad)
        y = pool(x, *args, where=f"{self.label()} forward")
        spatial = np.shape(x)[2:]

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            where = f"{self.label()} backward"
            return pool_backward(check_gradient(dy, y.shape, y.dtype, where), spatial, *args, where=where)

        return y, backward


_AVG_POOL = {1: (F.avg_pool1d, F.avg_pool1d_backward), 2: (F.avg_pool2d, F.avg_pool2d_backward),
             3: (F.avg_pool3d, F.avg_pool3d_backward)}


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
        self.scale_factor = upsample_scale(where("Upsample", name), scale_factor, mode)
        self.mode = mode

    def config(self) -> dict[str, Any]:
        return {**super().config(), "scale_factor": compact(self.scale_factor), "mode": self.mode}

    def describe(self) -> str:
        return f"Upsample(x{_text(self.scale_factor)}, {self.mode})"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        y = F.upsample(x, self.scale_factor, self.mode, where=f"{self.label()} forward")

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            where = f"{self.label()} backward"
            return F.upsample_backward(check_gradient(dy, y.shape, y.dtype, where), self.scale_factor, self.mode,
                                       where=where)

        return y, backward


class GlobalAvgPool2D(Layer):
    """Mean over each channel's H x W plane.

    Shapes: (N, C, H, W) -> (N, C), or (N, C, 1, 1) with ``keepdims=True``.
    """

    def __init__(self, keepdims: bool = False, name: str | None = None):
        super().__init__(name)
        self.keepdims = check_bool(keepdims, where(type(self).__name__, name), "keepdims")

    def config(self) -> dict[str, Any]:
        return {**super().config(), "keepdims": self.keepdims}

    def describe(self) -> str:
        return "GlobalAvgPool2D(keepdims)" if self.keepdims else "GlobalAvgPool2D"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        y = F.global_avg_pool2d(x, self.keepdims, where=f"{self.label()} forward")
        shape = np.shape(x)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            where = f"{self.label()} backward"
            return F.global_avg_pool2d_backward(check_gradient(dy, y.shape, y.dtype, where), shape, where=where)

        return y, backward
