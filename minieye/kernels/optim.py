"""Fused loops for the optimizer's vector work (reached through ``minieye.functional.optim``).

With a cheap model (a 5x5 blur of a 512x512 image) the optimizer's own vector work
dominates the run time: written in NumPy, the L-BFGS two-loop recursion makes ~40 passes
over the parameter vector, each allocating a temporary, and the projected slope ~10 more.
Here each is a single loop that reads every array once per pass and allocates nothing:

    two_loop         H g by the two-loop recursion (N&W Alg. 7.4), each axpy fused
                     with the next dot product: 2 (m + 1) passes instead of 4 m + 2
    box_tangent_dot  <g, d/dt clip(z + t v)> at t = 0+, without forming the tangent
    store_pair       an L-BFGS pair s = x1 - x0, y = g1 - g0 written into its ring slot,
                     with s.y and y.y of the stored (possibly float32-rounded) values
    box_line_point   clip(x + (clip(x + t d) - x)): a projected line-search trial in one pass
    box_line_slope   box_tangent_dot at z = x + t d, without forming z
    box_clip, box_reduce   Box.project and Box.reduce on the whole vector, into ``out``
    adam_direction   Adam's moment updates (in place) and its direction, in one pass
                     instead of about twelve

A fresh 2 MB temporary costs more than the arithmetic on it here (page faults on
every new allocation: a 512x512 float64 copy into new memory measured ~10x slower
than into an existing array), so these write into one output and read each input once.
Pure functions on contiguous float64 arrays (ring rows may be float32), compiled on
first use (cached on disk).
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel


@kernel
def two_loop(g, s, y, rho, order, gamma):  # pragma: no cover - compiled
    """``H g`` for the L-BFGS estimate made of pairs ``s[order[k]], y[order[k]]`` (oldest first).

    ``rho[i] = 1 / (s[i] . y[i])``; ``gamma`` scales the initial matrix ``H0 = gamma I``.
    Shapes: g (n,), s and y (capacity, n), rho (capacity,), order (m,) -> (n,).
    """
    n = g.shape[0]
    m = order.shape[0]
    q = g.copy()
    alpha = np.zeros(m)
    beta = 0.0
    if m == 0:
        return q
    # first loop, newest to oldest: alpha_k = rho_k s_k.q; q -= alpha_k y_k
    i = order[m - 1]
    acc = 0.0
    for j in range(n):
        acc += s[i, j] * q[j]
    alpha[m - 1] = rho[i] * acc
    for k in range(m - 1, -1, -1):
        i = order[k]
        a = alpha[k]
        acc = 0.0
        if k > 0:
            nxt = order[k - 1]
            for j in range(n):
                q[j] -= a * y[i, j]
                acc += s[nxt, j] * q[j]
            alpha[k - 1] = rho[nxt] * acc
        else:
            first = order[0]
            for j in range(n):  # last update fused with the scaling and the first dot of loop two
                q[j] = gamma * (q[j] - a * y[i, j])
                acc += y[first, j] * q[j]
            beta = rho[first] * acc
    # second loop, oldest to newest: beta_k = rho_k y_k.q; q += (alpha_k - beta_k) s_k
    for k in range(m):
        i = order[k]
        c = alpha[k] - beta
        if k + 1 < m:
            nxt = order[k + 1]
            acc = 0.0
            for j in range(n):
                q[j] += c * s[i, j]
                acc += y[nxt, j] * q[j]
            beta = rho[nxt] * acc
        else:
            for j in range(n):
                q[j] += c * s[i, j]
    return q


@kernel
def box_tangent_dot(z, v, g, lower, upper):  # pragma: no cover - compiled
    """Sum of ``g[j] * v[j]`` over the coordinates that ``clip(z + t v, lower, upper)`` moves for small t > 0.

    Shapes: all (n,) -> float.
    """
    total = 0.0
    for j in range(z.shape[0]):
        zj = z[j]
        vj = v[j]
        if zj < lower[j] or zj > upper[j]:
            continue  # clipped: the coordinate does not move
        if (zj == lower[j] and vj <= 0.0) or (zj == upper[j] and vj >= 0.0):
            continue  # on a bound and pushed against it
        total += g[j] * vj
    return total


@kernel
def store_pair(x1, x0, g1, g0, s_row, y_row):  # pragma: no cover - compiled
    """``s_row = x1 - x0``, ``y_row = g1 - g0`` (cast to the rows' dtype); returns (s.y, y.y) of the stored rows.

    Shapes: x1, x0, g1, g0 (n,) float64; s_row, y_row (n,) float32 or float64 -> (float, float).
    """
    sy = 0.0
    yy = 0.0
    for j in range(x1.shape[0]):
        s_row[j] = x1[j] - x0[j]
        y_row[j] = g1[j] - g0[j]
        sj = np.float64(s_row[j])
        yj = np.float64(y_row[j])
        sy += sj * yj
        yy += yj * yj
    return sy, yy


@kernel
def box_line_point(x, d, t, lower, upper, out):  # pragma: no cover - compiled
    """``out = clip(x + (clip(x + t d) - x))``: the trainer's projected trial point (the outer
    clip catches the ulp that ``x + (P - x)`` may round outside). Shapes: all (n,)."""
    for j in range(x.shape[0]):
        lo = lower[j]
        hi = upper[j]
        z = x[j] + t * d[j]
        if z < lo:
            z = lo
        elif z > hi:
            z = hi
        z = x[j] + (z - x[j])
        if z < lo:
            z = lo
        elif z > hi:
            z = hi
        out[j] = z
    return out


@kernel
def box_line_slope(x, d, t, g, lower, upper):  # pragma: no cover - compiled
    """``box_tangent_dot(x + t d, d, g, lower, upper)`` without forming ``x + t d``. Shapes: all (n,) -> float."""
    total = 0.0
    for j in range(x.shape[0]):
        zj = x[j] + t * d[j]
        vj = d[j]
        if zj < lower[j] or zj > upper[j]:
            continue
        if (zj == lower[j] and vj <= 0.0) or (zj == upper[j] and vj >= 0.0):
            continue
        total += g[j] * vj
    return total


@kernel
def box_clip(z, lower, upper, out):  # pragma: no cover - compiled
    """``out = clip(z, lower, upper)`` (NaN stays NaN, as in np.clip). Shapes: all (n,)."""
    for j in range(z.shape[0]):
        v = z[j]
        if v < lower[j]:
            v = lower[j]
        elif v > upper[j]:
            v = upper[j]
        out[j] = v
    return out


@kernel
def box_reduce(x, g, lower, upper, out):  # pragma: no cover - compiled
    """``out = g`` with 0 where x sits on a bound and -g points out of the box (``active_mask``). Shapes: all (n,)."""
    for j in range(x.shape[0]):
        gj = g[j]
        if (x[j] <= lower[j] and gj > 0) or (x[j] >= upper[j] and gj < 0):
            gj = 0.0
        out[j] = gj
    return out


@kernel
def adam_direction(g, m, v, beta1, beta2, bias1, bias2, eps, out):  # pragma: no cover - compiled
    """Adam's step direction, updating the moments ``m`` and ``v`` in place::

        m = beta1 m + (1 - beta1) g        v = beta2 v + (1 - beta2) g^2
        out = -(m / bias1) / (sqrt(v / bias2) + eps)      (bias_k = 1 - beta_k^count)

    Shapes: g, m, v, out (n,) float64 -> out.
    """
    for j in range(g.shape[0]):
        gj = g[j]
        mj = beta1 * m[j] + (1.0 - beta1) * gj
        vj = beta2 * v[j] + (1.0 - beta2) * (gj * gj)
        m[j] = mj
        v[j] = vj
        out[j] = -(mj / bias1) / (np.sqrt(vj / bias2) + eps)
    return out
