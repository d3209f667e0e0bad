"""deconvolve's non-local stage (prior 'nonlocal'): its regularizers on the patch graph of the first stage's result.

A local prior sees only a pixel's right and lower neighbours, so at a texture it cannot
tell noise from detail; the first stage's result is a good enough guide to find, for each
pixel, the pixels whose 5x5 patches look like its own (``losses.nonlocal_graph``).
"""
from __future__ import annotations

import numpy as np

from ..core import Layer
from ..losses import NonLocalTV, SecondOrderTV, TotalVariation, nonlocal_graph

__all__ = ["TV_EPS", "default_nonlocal_h", "nonlocal_terms", "NONLOCAL_SHARES", "NONLOCAL_H", "NONLOCAL_NEIGHBORS"]

TV_EPS = 1e-2  # smoothing of the default TV: converges in ~2x fewer iterations than 1e-3, same PSNR
# The non-local stage (prior='nonlocal'), tuned on the benchmark's sigma 0.01 crops
# (docs/restoration.md): weights as fractions of the TV weight w, the graph's h as a
# fraction of the intensity span. Each was flat to +-0.04 dB around these values.
NONLOCAL_SHARES = (1.0, 0.3, 0.1)  # NonLocalTV (per edge: / (K + 2)), TotalVariation, SecondOrderTV
NONLOCAL_H = 0.05
NONLOCAL_NEIGHBORS = 10


def default_nonlocal_h(box: tuple[float | None, float | None] | None, low: float, high: float) -> float:
    """The non-local graph's h: ``NONLOCAL_H`` times the box's span, or the blurred image's range when unbounded."""
    span = box[1] - box[0] if box is not None and None not in box else high - low
    return NONLOCAL_H * (span if span > 0 else 1.0)


def nonlocal_terms(guide: np.ndarray, tv_weight: float, h: float) -> list[tuple[float, Layer]]:
    """The second stage's regularizers: NonLocalTV on ``guide``'s patch graph, plus lighter TV and TV2.

    ``guide`` is the first stage's learned image (N, 1, H', W'); ``h`` the graph's
    filtering parameter in image units. NonLocalTV's weight is per edge, so it is
    divided by the K + 2 edges of a row to keep it comparable with TV's.
    """
    graph = nonlocal_graph(guide, h, neighbors=NONLOCAL_NEIGHBORS)
    share_nl, share_tv, share_tv2 = NONLOCAL_SHARES
    return [(tv_weight * share_nl / (NONLOCAL_NEIGHBORS + 2), NonLocalTV(graph, eps=TV_EPS)),
            (tv_weight * share_tv, TotalVariation(eps=TV_EPS)), (tv_weight * share_tv2, SecondOrderTV(eps=TV_EPS))]
