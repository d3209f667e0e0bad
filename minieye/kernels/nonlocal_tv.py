"""Kernels of the non-local total variation: building the graph, and its value + gradient.

Graph (``nonlocal_graph_rows``). The guide comes as planes already padded by ``patch``
rows and columns on each side (np.pad mode='reflect', done by the caller), so pixel
(y, x) of a plane sits at ``padded[plane, y + patch, x + patch]``. The caller also
passes the offsets to try, ``offsets[r] = (dy, dx)``, and ``searchable[r]``: whether
offset r is a candidate (in the search window) or only the forward neighbour (0, 1) or
(1, 0) needed when the window is empty. For pixel i and offset o with j = i + o inside
the image,

    d(i, j) = mean over q in [-patch, patch]^2 of (G(i + q) - G(j + q))^2

is a (2 patch + 1)-row column sum, then a sum of 2 patch + 1 of those columns, computed
directly for each row (no running sums: no drift in float32, and a pixel's distance
does not depend on the thread that computed it). Distances are kept as patch sums and
divided by the patch area only for the weights.

The K smallest candidates are kept in an unsorted per-pixel list plus its current
worst: a candidate enters only when strictly below the worst, replacing it. So the
list holds K smallest distances; among equal distances the offsets tried first are
kept (in a flat region, where all are 0, the nearest K), except that which of several
equal worst entries a smaller newcomer replaces is left to slot order (breaking that
tie by offset rank measured 30% slower). This costs less than a sorted insertion list:
the branch that is hard to predict is taken once per entry, and the search for the new
worst is written with selects. The caller orders the offsets nearest first, so that on
natural images the list fills with good candidates early and later ones rarely enter.
``_finish_row`` sorts each list by (distance, offset rank), appends the forward
neighbours (0, 1) and (1, 0) with their own distances, and writes the weights

    w = exp(-(d - min d) / h^2),  scaled so that the real slots' weights sum to their count.

Slots without a neighbour (fewer than K candidates; a forward neighbour outside the
image) hold i itself with weight 0 and take no part in the minimum or the scaling.
Rows (plane, y) are independent, each writing its own outputs: blocks of rows run on
plain threads (``_threads.run_blocks``, as the convolutions do) rather than ``prange``,
whose compilation took ~4 s per dtype against ~1 s serial.

Value and gradient (``nonlocal_tv_value_grad``), over edges (i, j = index[i, k], w):

    value = sum w (sqrt((u_i - u_j)^2 + eps^2) - eps)   (each row in u's dtype, the total in float64)
    grad_i += w (u_i - u_j) / m,  grad_j -= the same

One serial pass: the scatter to j makes rows of a plane race, and a prange over planes
measured slower than this loop for a single plane (about 18 vs 7 ms at 516 x 516, K = 10).
No validation here: kernels trust their arguments.
"""
from __future__ import annotations

import math

import numpy as np

from ..options import get
from ._jit import kernel
from ._threads import run_blocks

__all__ = ["nonlocal_graph_rows", "nonlocal_tv_value_grad"]


def nonlocal_graph_rows(padded, height, width, offsets, searchable, patch, k, inv_h2, index, weight) -> None:
    """Fill ``index`` (n, k + 2) and ``weight`` (n, k + 2) with n = planes * height * width.

    ``padded`` is float64 (one compiled signature). A float64 ``weight`` is written in
    place; a float32 one is filled a chunk of rows at a time through a small float64
    buffer (about the ``nonlocal_chunk_bytes`` knob, at least ``nonlocal_parallel_min_rows``
    rows), so the build never holds a float64 copy of all the weights. Blocks of rows run
    on ``_threads.run_blocks`` (one block below ``nonlocal_parallel_min_rows`` rows: a
    64-row graph takes well under a millisecond).
    """
    rows = padded.shape[0] * height
    if weight.dtype == np.float64:
        _graph_row_blocks(padded, height, width, offsets, searchable, patch, k, inv_h2, index, weight, 0, rows, 0)
        return
    chunk = max(get("nonlocal_parallel_min_rows"), get("nonlocal_chunk_bytes") // max(1, width * (k + 2) * 8))
    buffer = np.empty((min(chunk, rows) * width, k + 2), dtype=np.float64)
    for r0 in range(0, rows, chunk):
        r1 = min(rows, r0 + chunk)
        part = buffer[:(r1 - r0) * width]
        _graph_row_blocks(padded, height, width, offsets, searchable, patch, k, inv_h2, index, part, r0, r1,
                          r0 * width)
        weight[r0 * width:r1 * width] = part


def _graph_row_blocks(padded, height, width, offsets, searchable, patch, k, inv_h2, index, weight, r0, r1, base):
    """Rows r0..r1-1 split over threads; ``weight`` holds the rows of pixels base, base + 1, ..."""
    rows = r1 - r0
    run_blocks(lambda a, b: _graph_rows(padded, height, width, offsets, searchable, patch, k, inv_h2, index,
                                        weight, base, r0 + a, r0 + b), rows,
               None if rows >= get("nonlocal_parallel_min_rows") else 1)


@kernel
def _graph_rows(padded, height, width, offsets, searchable, patch, k, inv_h2, index, weight, base, r0, r1):
    """Rows r0..r1-1 (over planes * height) of ``nonlocal_graph_rows``; ``weight[i - base]`` is pixel i's row."""
    side = 2 * patch + 1
    kk = max(k, 1)
    # per-pixel work arrays, allocated once per block and reset per row
    best_d = np.empty((width, kk), dtype=padded.dtype)  # patch sums of the kept candidates
    best_o = np.empty((width, kk), dtype=np.int64)      # their offset ranks
    count = np.empty(width, dtype=np.int64)             # candidates kept
    worst = np.empty(width, dtype=padded.dtype)         # the largest kept sum once K are kept
    worst_at = np.empty(width, dtype=np.int64)          # its slot
    local_d = np.empty((width, 2), dtype=padded.dtype)  # sums of the (0, 1) and (1, 0) neighbours
    colsum = np.empty(width + 2 * patch, dtype=padded.dtype)
    box = np.empty(width, dtype=padded.dtype)
    for row in range(r0, r1):
        y = row % height
        g = padded[row // height]
        count[:] = 0
        worst[:] = np.inf
        worst_at[:] = 0
        local_d[:] = 0.0
        for rank in range(offsets.shape[0]):
            dy, dx = offsets[rank, 0], offsets[rank, 1]
            x0, x1 = max(0, -dx), min(width, width - dx)  # pixels whose neighbour is inside
            if y + dy < 0 or y + dy >= height or x1 <= x0:
                continue
            # Column sums for padded columns x0 .. x1 + 2 patch - 1, stored from colsum[0]:
            # slices start at 0 so that loop indices are never negative (Numba then drops
            # its wrap-around check and the loops vectorise).
            span = x1 - x0 + 2 * patch
            cs = colsum[:span]
            cs[:] = 0.0
            for qy in range(side):
                a = g[y + qy, x0:x0 + span]
                b = g[y + dy + qy, x0 + dx:x0 + dx + span]
                for c in range(span):
                    e = a[c] - b[c]
                    cs[c] += e * e
            for t in range(x1 - x0):
                acc = cs[t]
                for qx in range(1, side):
                    acc += cs[t + qx]
                box[t] = acc
            if dy == 0 and dx == 1 or dy == 1 and dx == 0:
                slot = 0 if dy == 0 else 1
                for t in range(x1 - x0):
                    local_d[x0 + t, slot] = box[t]
            if not searchable[rank] or k == 0:
                continue
            for t in range(x1 - x0):
                d = box[t]
                x = x0 + t
                if not d < worst[x]:  # most candidates stop here
                    continue
                pos = count[x]
                if pos < k:
                    count[x] = pos + 1
                else:
                    pos = worst_at[x]
                best_d[x, pos] = d  # (2-d indexing, no row views: each view costs refcounting)
                best_o[x, pos] = rank
                if count[x] == k:
                    top, top_at = best_d[x, 0], 0
                    for slot in range(1, k):  # selects, not branches: nothing to mispredict
                        v = best_d[x, slot]
                        above = v > top
                        top = v if above else top
                        top_at = slot if above else top_at
                    worst[x], worst_at[x] = top, top_at
        _finish_row(row * width, base, y, height, width, offsets, k, inv_h2 / (side * side), best_d, best_o,
                    count, local_d, index, weight)


@kernel
def _finish_row(first, base, y, height, width, offsets, k, inv_h2_area, best_d, best_o, count, local_d, index,
                weight):
    """Write the rows of ``index``/``weight`` for pixels first .. first + width - 1 (``weight[i - base]``).

    ``best_d``/``local_d`` hold patch sums; ``inv_h2_area`` = 1 / (h^2 * patch area) turns
    their differences into the exponent (d - min d) / h^2."""
    dist = np.empty(k + 2, dtype=np.float64)
    real = np.zeros(k + 2, dtype=np.bool_)
    for x in range(width):
        i = first + x
        n_best = count[x]
        for a in range(1, n_best):  # insertion sort by (sum, rank): at most K entries
            d, r = best_d[x, a], best_o[x, a]
            b = a
            while b > 0 and (best_d[x, b - 1] > d or best_d[x, b - 1] == d and best_o[x, b - 1] > r):
                best_d[x, b], best_o[x, b] = best_d[x, b - 1], best_o[x, b - 1]
                b -= 1
            best_d[x, b], best_o[x, b] = d, r
        for slot in range(k):
            real[slot] = slot < n_best
            if real[slot]:
                o = best_o[x, slot]
                index[i, slot] = i + offsets[o, 0] * width + offsets[o, 1]
                dist[slot] = best_d[x, slot]
            else:
                index[i, slot] = i
        real[k] = x + 1 < width
        index[i, k] = i + 1 if real[k] else i
        dist[k] = local_d[x, 0]
        real[k + 1] = y + 1 < height
        index[i, k + 1] = i + width if real[k + 1] else i
        dist[k + 1] = local_d[x, 1]
        low = math.inf
        n_real = 0
        for slot in range(k + 2):
            if real[slot]:
                n_real += 1
                low = min(low, dist[slot])
        total = 0.0
        for slot in range(k + 2):
            dist[slot] = math.exp(-(dist[slot] - low) * inv_h2_area) if real[slot] else 0.0
            total += dist[slot]
        scale = n_real / total if total > 0 else 0.0
        for slot in range(k + 2):
            weight[i - base, slot] = dist[slot] * scale


@kernel
def nonlocal_tv_value_grad(u, index, weight, eps, grad):
    """Return sum_edges w (m - eps) (float64) and write its gradient into ``grad`` (zeroed here).

    ``u``, ``grad`` (n,), ``weight`` (n, k + 2) and the scalar ``eps`` share one float dtype,
    so a float32 evaluation runs in float32."""
    n = u.shape[0]
    edges = index.shape[1]
    zero = eps - eps  # a zero of u's dtype
    eps2 = eps * eps
    grad[:] = zero
    total = 0.0
    for i in range(n):
        ui = u[i]
        row = zero
        gi = zero
        for slot in range(edges):
            j = index[i, slot]
            w = weight[i, slot]
            diff = ui - u[j]
            m = math.sqrt(diff * diff + eps2)
            row += w * (m - eps)
            g = w * diff / m
            gi += g
            grad[j] -= g
        grad[i] += gi
        total += row
    return total
