"""Non-local total variation (NLTV): a TV prior on a graph of similar pixels.

A guide image G (a first estimate) picks, for each pixel i, the pixels j whose patches
look like i's patch; the prior then penalises differences of u along those edges only,
so it smooths within a texture or a flat region and leaves edges alone better than
local TV. ``nonlocal_graph(guide, h)`` builds the graph once; ``NonLocalTV(graph)`` is
the loss. For each plane (the leading axes of (..., H, W) are independent planes, never
connected) and each pixel i = (y, x):

    candidates  j = i + o, o in [-search, search]^2 minus (0, 0), j inside the image
    distance    d(i, j) = mean over q in [-patch, patch]^2 of (G(i + q) - G(j + q))^2, positions
                outside the image read from np.pad(G, patch, mode='reflect')
    edges       the K = ``neighbors`` candidates of smallest d (ties: in a deterministic but
                unspecified order; mostly the nearer offset wins), then always the forward neighbours (0, 1) and
                (1, 0) with their own d: they make the graph penalise checkerboards
    weights     w = exp(-(d - min d) / h^2), scaled so that a row's real edges sum to their count

Each row of the graph has K + 2 slots. A slot with no neighbour (fewer than K candidates
in a tiny image; a forward neighbour past the last column or row) holds i itself with
weight 0 and takes no part in the minimum or the scaling: so every real edge has mean
weight 1, near borders too. With n = u.size (all planes) and m = sqrt((u_i - u_j)^2 + eps^2),

    R(u) = (1/n) sum_i sum_k w_ik (m_ik - eps)
    dR/du_i += w_ik (u_i - u_j) / (n m_ik),   dR/du_j -= the same

One pass computes the value and the gradient together (``functional.nonlocal_tv``): the
trainer calls forward then backward for every line-search trial. The graph, its checks
and the kernel calls live in ``minieye.functional.nonlocal_tv``.

Saving: ``config()`` returns the graph as a dict of its shape and its two arrays, which
``minieye.io`` stores in ``arrays.npz`` (docs/io.md); the constructor accepts that dict as
well as a ``NonLocalGraph``; every graph is checked when it is made (see
``functional.nonlocal_tv.NonLocalGraph``), since the kernel trusts it.

Arguments: ``search`` above max(H, W) - 1 and ``neighbors`` above the most candidates a
pixel has are lowered to those (the graph, or the loss, is the same); ``patch`` above
max(H, W) is refused (see ``nonlocal_graph``).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..checks import check_real
from ..core import Backward, DeltaSet
from ..functional.nonlocal_tv import NonLocalGraph, as_graph, nonlocal_graph, nonlocal_tv
from .basic import Loss

__all__ = ["NonLocalGraph", "nonlocal_graph", "NonLocalTV"]


class NonLocalTV(Loss):
    """Non-local total variation on a fixed graph: mean over pixels of the weighted, smoothed
    absolute differences along the graph's edges (see the module docstring).

    ``graph`` from ``nonlocal_graph(guide, h)`` (or its ``config()`` dict); ``eps`` smooths
    the absolute value (as TotalVariation's eps). Computes in x's float dtype.
    Shapes: x (graph.shape) -> ().
    """

    n_inputs = 1

    def __init__(self, graph: NonLocalGraph | Mapping[str, Any], eps: float = 1e-2, name: str | None = None):
        super().__init__(name)
        self.eps = check_real(eps, "NonLocalTV", "eps", positive=True)
        self.graph = as_graph(graph, "NonLocalTV")

    def config(self) -> dict[str, Any]:
        g = self.graph
        return {**super().config(), "graph": {"shape": list(g.shape), "index": g.index, "weight": g.weight},
                "eps": self.eps}

    def describe(self) -> str:
        return f"NonLocalTV(slots={self.graph.neighbors}, eps={self.eps:g})"

    def forward(self, x: Any) -> tuple[np.ndarray, Backward]:
        total, grad = nonlocal_tv(x, self.graph, self.eps, where=f"{self.label()} forward")
        n = grad.size
        value = np.asarray(total / n, dtype=grad.dtype)

        def backward(dy: Any, deltas: DeltaSet) -> np.ndarray:
            return grad * grad.dtype.type(self.scalar_dy(dy) / n)

        return value, backward
