"""Random draws inside forward passes.

A stochastic layer (Dropout) normally draws from its own Generator, which advances with each
training forward. Inside ``fixed_noise(seed)`` it draws instead from a generator determined by
the seed and by how many stochastic draws came before it in the same forward pass: every pass
then sees the same masks, whichever layer object (a float32 twin, a loaded copy) makes them.
The gradient-check harness runs in it; a trainer can use it to hold masks still while a line
search evaluates several points of one iteration.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

import numpy as np

from .checks import fail
from .core import current_scope

__all__ = ["fixed_noise", "layer_generators", "noise_generator"]

_NOISE: contextvars.ContextVar[int | None] = contextvars.ContextVar("minieye_fixed_noise", default=None)
_NOISE_COUNT = "core.noise_draws"  # forward-scope key: stochastic draws made so far in this pass


@contextlib.contextmanager
def fixed_noise(seed: int = 0) -> Iterator[None]:
    """Inside the block, every forward pass draws the same random masks (see above)."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise fail("fixed_noise", "seed an int >= 0", f"seed={seed!r}")
    token = _NOISE.set(int(seed))
    try:
        yield
    finally:
        _NOISE.reset(token)


def noise_generator(own: np.random.Generator) -> np.random.Generator:
    """The generator a stochastic layer draws from now: ``own`` (the layer's), unless inside
    ``fixed_noise``, where it is a fresh one keyed by the seed and the draw's place in the pass."""
    seed = _NOISE.get()
    if seed is None:
        return own
    scope = current_scope()
    count = 0
    if scope is not None:
        count = scope.get(_NOISE_COUNT, 0)
        scope[_NOISE_COUNT] = count + 1
    return np.random.default_rng([seed, count])


def layer_generators(layer: Any) -> dict[str, np.random.Generator]:
    """The random generators a layer keeps (Dropout's mask generator), by attribute name, sorted:
    what checkpoints save and what the distributed workers reseed per evaluation."""
    return {name: value for name, value in sorted(vars(layer).items()) if isinstance(value, np.random.Generator)}
