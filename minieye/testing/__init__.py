"""Gradient checks for any layer, including your own (hypothesis strategies live in
``minieye.testing.strategies``, imported on demand: hypothesis is a dev extra).

    from minieye.testing import check_layer
    check_layer(layers.Dense(5, 4, dtype="float64", seed=0), np.random.default_rng(0).normal(size=(3, 5)))

``check_layer`` runs every check below; each is also usable alone:

- ``check_gradients``: central finite differences in float64 along random directions
  against backward, naming the culprit input or parameter on failure;
- ``check_no_mutation``, ``check_backward_twice``, ``check_interleaved``,
  ``check_noncontiguous``, ``check_frozen``, ``check_batch_invariance``,
  ``check_float32``, ``check_config``, ``check_rejects_bad_dy``, ``check_empty_batch``;
- ``check_roundtrip`` (save and load with ``minieye.io``; ``check_layer(..., roundtrip=True)``).

All raise AssertionError with the layer's label, shapes and numbers on failure. Every
forward they run is inside ``minieye.randomness.fixed_noise(0)`` (Dropout draws the same
masks each time), and the twins they build take the layer's mode and buffers, so layers
are checked in the mode they are in (docs/core.md, "Modes").
"""
from .case import LayerCase
from .gradcheck import check_gradients
from .properties import (check_backward_twice, check_batch_invariance, check_config, check_float32,
                         check_frozen, check_interleaved, check_layer, check_no_mutation, check_noncontiguous)
from .robustness import check_empty_batch, check_rejects_bad_dy
from .roundtrip import check_roundtrip

__all__ = ["LayerCase", "check_layer", "check_gradients", "check_no_mutation", "check_backward_twice",
           "check_interleaved", "check_noncontiguous", "check_frozen", "check_batch_invariance", "check_float32",
           "check_config", "check_roundtrip", "check_rejects_bad_dy", "check_empty_batch"]
