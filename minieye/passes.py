"""What one forward or backward pass tells the layers in it, per thread (context variables).

Part of the layer contract (docs/core.md, "What a layer may read besides its arguments"):
``current_scope()`` in forward, a dict living for one forward pass where a layer leaves data
for a partner; ``input_grad_needed()`` in backward, False when the caller will not use the
input gradient. ``minieye.core`` re-exports both, with the context managers that set them.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

__all__ = ["forward_scope", "current_scope", "input_grad", "input_grad_needed"]


# -- per-pass scope --------------------------------------------------------------
# Some layers hand per-call data to a partner layer in the same forward pass (MaxUnpool2D reads
# the switches its MaxPool2D recorded). Stored on the layer, it would break interleaved batches:
# a pass opens a scope, a dict living as long as the outermost network call (a context variable).
_SCOPE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("minieye_forward_scope", default=None)


@contextlib.contextmanager
def forward_scope() -> Iterator[dict]:
    """Open a forward-pass scope unless one is open already (nested networks share it)."""
    current = _SCOPE.get()
    if current is not None:
        yield current
        return
    scope: dict = {}
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def current_scope() -> dict | None:
    """The open forward-pass scope, or None outside any network or layer call."""
    return _SCOPE.get()


# -- whether a backward call's input gradient will be used ---------------------------------
# A network knows when a layer's inputs are data that need no gradient (the first layer of a model
# being trained); layers with a costly input gradient (convolutions, dense) ask ``input_grad_needed()``.
_INPUT_GRAD: contextvars.ContextVar[bool] = contextvars.ContextVar("minieye_input_grad", default=True)


def input_grad_needed() -> bool:
    """Inside a backward call: False when the caller will not use the input gradient(s)."""
    return _INPUT_GRAD.get()


class input_grad:
    """``with input_grad(needed):`` runs a backward call telling the layer whether its input gradient(s)
    will be used (a class: networks enter one per layer, and a generator-based one costs more)."""
    __slots__ = ("needed", "token")

    def __init__(self, needed: bool):
        self.needed = bool(needed)

    def __enter__(self) -> None:
        self.token = _INPUT_GRAD.set(self.needed)

    def __exit__(self, *exc: Any) -> None:
        _INPUT_GRAD.reset(self.token)
