"""Non-local total variation: the graph of similar pixels and the prior's value and gradient.

    graph = F.nonlocal_graph(guide, h=0.1)          # once, from a first estimate
    total, grad = F.nonlocal_tv(u, graph, eps=1e-2)  # sum over edges and its gradient

The maths is in ``minieye.losses.nonlocal_tv`` (whose NonLocalTV is ``total / u.size``).
A ``NonLocalGraph`` is checked when it is made (indices in range and in their own plane,
weights finite and non-negative; arrays read-only), whether by ``nonlocal_graph``, by
``as_graph`` from a saved config dict, or directly: the kernels trust every graph they get,
so ``nonlocal_tv`` checks only ``u`` and ``eps``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..checks import as_float_array, check_nonneg_int, check_real, fail
from ..kernels.nonlocal_tv import nonlocal_graph_rows, nonlocal_tv_value_grad

__all__ = ["NonLocalGraph", "nonlocal_graph", "nonlocal_tv", "as_graph"]


@dataclass(frozen=True, eq=False)
class NonLocalGraph:
    """The edges of a non-local TV prior: ``index[i, k]`` is the k-th neighbour of pixel i
    (flat index into the whole flattened array), ``weight[i, k]`` its weight.

    Shapes: shape (..., H, W); index (n, K + 2) int32 (int64 past 2**31 pixels);
    weight (n, K + 2) float32 or float64 (the guide's dtype); n = prod(shape).
    Checked on construction (see the module docstring); the arrays are read-only, and
    arrays that are read-only, C-ordered, of the kernel's dtype and own their memory
    (those of ``nonlocal_graph``) are kept as they are, others copied, so a caller's
    writable array cannot change after the check.
    """

    shape: tuple[int, ...]
    index: np.ndarray
    weight: np.ndarray
    _weights: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        shape, index, weight = _checked_arrays(self.shape, self.index, self.weight, "NonLocalGraph")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "weight", weight)
        self._weights[weight.dtype] = weight

    @property
    def neighbors(self) -> int:
        """Slots per pixel (K + 2 for a graph from ``nonlocal_graph``)."""
        return int(self.index.shape[1])

    def weight_as(self, dtype: np.dtype) -> np.ndarray:
        """The weights in ``dtype`` (kept: float32 evaluations then run in float32 throughout)."""
        found = self._weights.get(dtype)
        if found is None:
            found = self._weights[dtype] = self.weight.astype(dtype)
            found.setflags(write=False)  # read-only like the graph's: one kernel signature per dtype
        return found


def _index_dtype(n: int) -> np.dtype:
    return np.dtype(np.int32) if n < 2**31 else np.dtype(np.int64)


def _offsets(search: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The offsets the graph kernel tries, nearest first (then row-major), and which are candidates.

    Nearest first: on natural images close pixels tend to be similar, so the kernel's
    K-best list fills with good candidates early and later ones rarely enter it. With
    search == 0 only the forward neighbours (0, 1) and (1, 0) are tried, as non-candidates.
    Offsets that leave every (height, width) image (|dy| >= height or |dx| >= width) are
    not listed: the kernel would skip them anyway, so the graph is the same.
    """
    reach = max(search, 1)
    ry, rx = min(reach, height - 1), min(reach, width - 1)
    found = [(dy * dy + dx * dx, dy, dx) for dy in range(-ry, ry + 1) for dx in range(-rx, rx + 1)
             if (dy, dx) != (0, 0) and (max(abs(dy), abs(dx)) <= search or (dy, dx) in ((0, 1), (1, 0)))]
    found.sort()
    offsets = np.array([(dy, dx) for _, dy, dx in found], dtype=np.int64).reshape(-1, 2)
    searchable = np.array([max(abs(dy), abs(dx)) <= search for _, dy, dx in found], dtype=np.bool_)
    return offsets, searchable


def nonlocal_graph(guide: Any, h: float, *, search: int = 5, patch: int = 2, neighbors: int = 10) -> NonLocalGraph:
    """The non-local graph of ``guide`` (see the module docstring for the math).

    ``h``: the filtering parameter, in the guide's units (a patch mean squared difference
    of h^2 costs a factor e in weight); ``search``: radius of the search window (above
    max(H, W) - 1 it is lowered to that: no candidate lies further, same graph);
    ``patch``: radius of the compared patches, at most max(H, W) (a larger one only
    compares mirror images of the image, at a cost that grows with patch^2);
    ``neighbors``: K, the edges kept per pixel besides the two forward neighbours,
    lowered to the most candidates any pixel has, min(2 search + 1, H) * min(2 search + 1, W) - 1
    (the slots above would hold the pixel itself with weight 0 in every row: same loss).
    Shapes: guide (..., H, W) -> graph of shape guide.shape, K + 2 slots per pixel.
    """
    where = "nonlocal_graph"
    h = check_real(h, where, "h", positive=True)
    search = check_nonneg_int(search, where, "search")
    patch = check_nonneg_int(patch, where, "patch")
    k = check_nonneg_int(neighbors, where, "neighbors")
    g = as_float_array(guide, where, "guide")
    if g.ndim < 2 or g.size == 0:
        raise fail(where, "guide a non-empty (..., H, W) array", f"guide.shape == {g.shape}")
    height, width = g.shape[-2:]
    if patch > max(height, width):
        raise fail(where, f"patch at most max(H, W) = {max(height, width)} (the patch radius)",
                   f"patch={patch} for guide.shape == {g.shape}", "use a smaller patch, e.g. the default 2")
    if not np.isfinite(g).all():
        raise fail(where, "a finite guide", f"{int(np.size(g) - np.isfinite(g).sum())} NaN/Inf value(s)")
    search = min(search, max(height, width) - 1)
    k = min(k, min(2 * search + 1, height) * min(2 * search + 1, width) - 1)
    planes = g.reshape(-1, height, width)
    # built in float64 whatever the guide's dtype: one compiled signature (the graph kernel
    # is the slowest of the set to compile, ~4 s per dtype), and the 512x512 build costs the same;
    # padding first, then converting: one float64 array (none more for a float64 guide)
    padded = np.pad(planes, ((0, 0), (patch, patch), (patch, patch)), mode="reflect").astype(np.float64, copy=False)
    n = g.size
    offsets, searchable = _offsets(search, height, width)
    index = np.empty((n, k + 2), dtype=_index_dtype(n))
    weight = np.empty((n, k + 2), dtype=g.dtype)  # float32: filled through a small float64 buffer
    nonlocal_graph_rows(padded, height, width, offsets, searchable, patch, k, 1.0 / float(h) ** 2, index, weight)
    index.setflags(write=False)
    weight.setflags(write=False)
    return NonLocalGraph(tuple(int(s) for s in g.shape), index, weight)


def _graph_array(value: Any, where: str, name: str, expected: str) -> np.ndarray:
    """``value`` as an array, or the error naming it (a ragged list raises ValueError in NumPy)."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError):
        raise fail(where, expected, f"graph {name} that is not a rectangular array (rows of different lengths?)") \
            from None


def _owned(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``a`` itself when it is already read-only, C-ordered, of ``dtype`` and owns its memory
    (as nonlocal_graph's arrays): nobody can then change it without first re-enabling
    writing. Otherwise a read-only copy, so a caller keeping the array cannot change
    the indices after they were checked."""
    if a.dtype == dtype and a.flags.c_contiguous and not a.flags.writeable and a.base is None:
        return a
    a = np.array(a, dtype=dtype, order="C")
    a.setflags(write=False)
    return a


def _checked_arrays(shape: Any, index: Any, weight: Any, where: str) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """A graph's shape and arrays, checked (the kernel trusts every index) and read-only.

    The checks are min/max reductions (per plane for the indices), which allocate nothing."""
    try:
        entries = list(shape)
    except TypeError:
        raise fail(where, "graph shape a list of ints", f"shape={shape!r}") from None
    for axis, size in enumerate(entries):
        if not (isinstance(size, (int, np.integer)) and not isinstance(size, bool)):
            raise fail(where, "graph shape a list of ints", f"shape[{axis}] == {size!r} in shape={shape!r}")
    shape = tuple(int(s) for s in entries)
    if len(shape) < 2 or min(shape) < 1:
        raise fail(where, "graph shape (..., H, W) with every size >= 1", f"shape={shape!r}")
    n = math.prod(shape)
    index = _graph_array(index, where, "index", f"graph index an integer array of shape ({n}, slots)")
    if index.dtype.kind not in "iu" or index.ndim != 2 or index.shape[0] != n:
        raise fail(where, f"graph index an integer array of shape ({n}, slots)",
                   f"index of shape {index.shape} and dtype {index.dtype}")
    weight = _graph_array(weight, where, "weight", f"graph weight a float array of the index's shape {index.shape}")
    if weight.shape != index.shape or weight.dtype.kind != "f":
        raise fail(where, f"graph weight a float array of the index's shape {index.shape}",
                   f"weight of shape {weight.shape} and dtype {weight.dtype}")
    plane = shape[-1] * shape[-2]
    if index.size:
        per_plane = index.reshape(n // plane, -1)  # a view: each plane's rows must point into that plane
        first = np.arange(0, n, plane)
        lows, highs = per_plane.min(axis=1), per_plane.max(axis=1)
        bad = np.flatnonzero((lows < first) | (highs >= first + plane))
        if bad.size:
            p = int(bad[0])
            raise fail(where, f"graph indices in [0, {n}), each within its own (H, W) plane",
                       f"indices from {lows[p]} to {highs[p]} in the rows of plane {p} (pixels {first[p]} .. "
                       f"{first[p] + plane - 1})")
        low, high = weight.min(), weight.max()
        if not (low >= 0 and np.isfinite(high)):  # a NaN makes both false
            raise fail(where, "graph weights finite and >= 0", "negative, NaN or Inf weights")
    index = _owned(index, _index_dtype(n))
    weight = _owned(weight, weight.dtype if weight.dtype in (np.float32, np.float64) else np.dtype(np.float64))
    return shape, index, weight




def as_graph(graph: Any, where: str = "as_graph") -> NonLocalGraph:
    """``graph`` itself, or the NonLocalGraph of a config dict with 'shape', 'index' and 'weight'."""
    if isinstance(graph, NonLocalGraph):
        return graph
    if not isinstance(graph, Mapping):
        raise fail(where, "graph a NonLocalGraph (from nonlocal_graph(guide, h))", f"{type(graph).__name__}")
    missing = {"shape", "index", "weight"} - set(graph)
    if missing:
        raise fail(where, "graph a NonLocalGraph or a dict with 'shape', 'index' and 'weight'",
                   f"a dict without {sorted(missing)}")
    return NonLocalGraph(*_checked_arrays(graph["shape"], graph["index"], graph["weight"], where))


def nonlocal_tv(u: Any, graph: NonLocalGraph, eps: float = 1e-2, *,
                where: str = "nonlocal_tv") -> tuple[float, np.ndarray]:
    """Sum over the graph's edges of ``w (sqrt((u_i - u_j)^2 + eps^2) - eps)`` and its gradient.

    Computes in u's float dtype (the graph's weights are converted once and kept).
    Shapes: u (graph.shape) -> (float, gradient of u's shape and dtype).
    """
    if not isinstance(graph, NonLocalGraph):
        raise fail(where, "graph a NonLocalGraph (from nonlocal_graph or as_graph)", type(graph).__name__)
    eps = check_real(eps, where, "eps", positive=True)
    a = as_float_array(u, where, "x")
    if a.shape != graph.shape:
        raise fail(where, f"x.shape == {graph.shape} (the shape of the guide the graph was built from)",
                   f"x.shape == {a.shape}", "build the graph from a guide of x's shape")
    flat = a.reshape(-1)
    grad = np.empty_like(flat)
    total = nonlocal_tv_value_grad(flat, graph.index, graph.weight_as(a.dtype), a.dtype.type(eps), grad)
    return float(total), grad.reshape(a.shape)
