"""Toy layers for the io tests (registered under "test_io.*" names).

They exercise what built-in layers may not: a partner reference in config (Replay
names its Recorder, like MaxUnpool2D names its MaxPool2D), tied parameters, array and
infinite config values, a 0-d parameter, a source.
"""
from __future__ import annotations

import math

import numpy as np

import minieye as me
from minieye.checks import as_float_array, resolve_dtype
from minieye.core import current_scope


@me.io.register(name="test_io.Affine")
class Affine(me.Layer):
    """y = x * weight + shift, elementwise on the last axis. Shapes: (..., size) -> (..., size)."""

    def __init__(self, size: int, dtype=None, seed: int = 0, name=None):
        super().__init__(name)
        self.size, self.seed, self.dtype = size, seed, resolve_dtype(dtype, "Affine")
        rng = np.random.default_rng(seed)
        self.weight = me.Parameter(rng.standard_normal(size), name="weight", dtype=self.dtype)
        self.shift = me.Parameter(rng.standard_normal(size), name="shift", dtype=self.dtype)

    def config(self):
        return {"size": self.size, "dtype": self.dtype, "seed": np.int64(self.seed), **super().config()}

    def forward(self, x):
        x = as_float_array(x, self.label(), dtype=self.dtype)
        w, s = self.weight, self.shift

        def backward(dy, deltas):
            deltas.add(w, (dy * x).reshape(-1, self.size).sum(axis=0))
            deltas.add(s, dy.reshape(-1, self.size).sum(axis=0))
            return dy * w.value

        return x * w.value + s.value, backward


@me.io.register(name="test_io.Recorder")
class Recorder(me.Layer):
    """Identity that leaves its input in the forward scope for a partner (like MaxPool2D)."""

    def forward(self, x):
        current_scope()[id(self)] = x

        def backward(dy, deltas):
            return dy

        return x, backward


@me.io.register(name="test_io.Replay")
class Replay(me.Layer):
    """x + what its Recorder saw in this pass (like MaxUnpool2D); a Layer-valued config entry."""

    def __init__(self, source: Recorder, name=None):
        super().__init__(name)
        self.source = source

    def config(self):
        return {"source": self.source, **super().config()}

    def forward(self, x):
        recorded = current_scope()[id(self.source)]

        def backward(dy, deltas):
            return dy

        return x + recorded, backward


@me.io.register(name="test_io.Clip")
class Clip(me.Layer):
    """min(x * mask, upper): an ndarray and a possibly infinite float in config."""

    def __init__(self, mask, upper=math.inf, pairs=((1, 2), {"k": None}), name=None):
        super().__init__(name)
        self.mask, self.upper, self.pairs = np.asarray(mask), upper, pairs

    def config(self):
        return {"mask": self.mask, "upper": self.upper, "pairs": self.pairs, **super().config()}

    def forward(self, x):
        y = x * self.mask
        keep = y < self.upper

        def backward(dy, deltas):
            return dy * self.mask * keep

        return np.where(keep, y, self.upper), backward


@me.io.register(name="test_io.Image")
class Image(me.Layer):
    """A source: its output is its parameter."""

    n_inputs = 0

    def __init__(self, shape, dtype=None, name=None):
        super().__init__(name)
        self.shape, self.dtype = tuple(shape), resolve_dtype(dtype, "Image")
        self.image = me.Parameter(np.zeros(self.shape), name="image", dtype=self.dtype)

    def config(self):
        return {"shape": self.shape, "dtype": str(self.dtype), **super().config()}

    def forward(self):
        image = self.image

        def backward(dy, deltas):
            deltas.add(image, dy)
            return ()

        return image.value.copy(), backward


def randomize(layer: me.Layer, seed: int = 1) -> me.Layer:
    rng = np.random.default_rng(seed)
    for p in layer.parameters():
        p.value[...] = rng.standard_normal(p.shape)
    return layer


def sample(*shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)
