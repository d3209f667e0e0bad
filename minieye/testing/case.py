"""A row of the layer test table: how to draw a layer and inputs for the harness.

Kept free of hypothesis imports so that ``import minieye`` never needs the dev extras.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LayerCase:
    """One row of the table that every exported layer must appear in.

    covers:          the exported class this row exercises (the coverage test looks for it)
    strategy:        a hypothesis strategy drawing ``(layer, inputs)``: a float64 layer and a
                     tuple of float64 input arrays (away from kinks where the layer has them)
    id:              a readable test id (defaults to the class name)
    batch_invariant: True when output[i] depends only on input[i] along axis 0, so the
                     harness checks that a batch of N equals N single evaluations
    options:         keyword overrides passed to the harness (tolerances, directions, ...)
    """

    covers: type
    strategy: Any
    id: str = ""
    batch_invariant: bool = True
    options: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.id or self.covers.__name__
