"""Layer buffers (BatchNorm's running statistics) across a line search.

A layer in training mode updates its buffers on every forward pass. A line search runs
several forward passes per iteration, at trial points it mostly rejects, and a trial whose
loss is not finite would leave NaN in the running statistics although the trainer keeps
the parameters at the last finite point. So the trainer evaluates each trial from the
buffers as they were before the search and keeps only the accepted trial's update: the
running statistics move as if the accepted point alone had been evaluated, and a rejected
or non-finite evaluation leaves no trace.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core import Layer

__all__ = ["LayerBuffers"]


class LayerBuffers:
    """Copies of every buffer of ``layers`` (``Layer.buffers()``), written back in place.

    ``snapshot()`` is None when no layer has buffers, and ``restore(None)`` does nothing, so
    networks without BatchNorm pay nothing.
    """

    def __init__(self, layers: Sequence[Layer]):
        self.layers = [layer for layer in layers if layer.buffers()]

    def _arrays(self) -> list[np.ndarray]:
        # read each time: a checkpoint or io may have loaded new values (in place) meanwhile
        return [array for layer in self.layers for array in layer.buffers().values()]

    def snapshot(self) -> tuple[np.ndarray, ...] | None:
        """Copies of the buffers as they are now; None when there are none."""
        return tuple(array.copy() for array in self._arrays()) if self.layers else None

    def restore(self, snapshot: tuple[np.ndarray, ...] | None) -> None:
        """Write ``snapshot`` (from ``snapshot()``) back into the layers' own arrays."""
        if snapshot is None:
            return
        for array, saved in zip(self._arrays(), snapshot, strict=True):
            np.copyto(array, saved)
