"""Total variation of images, first and second order: value and gradient in two fused passes.

The maths is in ``minieye/losses/regularizers.py``; the NumPy reference these kernels are
tested against, and the checks before every call, are in ``minieye/functional/tv.py``. On
a stack of planes x (B, H, W), with forward differences that are zero across the last
column / row (Neumann boundary):

    gh = Dh x,  gv = Dv x                           (x[i, j+1] - x[i, j], x[i+1, j] - x[i, j])
    TV:   m = sqrt(gh^2 + gv^2 + eps^2)             value sum m^q
          forward stores  f = q m^(q-2)
          backward        dx = Dh^T (f gh) + Dv^T (f gv)    (= -div p)
    TV2:  a = Dh gh, c = Dv gh, b = Dv gv,  m = sqrt(a^2 + b^2 + 2 c^2 + eps^2)   value sum m
          forward stores  m
          backward        dx = Dh^T (Dh^T P + Dv^T Q) + Dv^T (Dv^T R),  P = a/m, Q = 2c/m, R = b/m

with ``Dh^T u [j] = u[j-1] (j >= 1) - u[j] (j <= W-2)`` (``Dv^T`` the same along rows).
The fields are zero where their differences are (P's last column, Q's last row, ...),
which is what lets the backward gathers drop most boundary tests.

Why: the NumPy reference makes ~30 passes over the image per evaluation (differences
into zero-filled temporaries, a divergence built by slice updates); a 512x512 L-BFGS
deconvolution spent a third of its time there. Here the forward is one pass (reads x,
writes one array) and the backward one pass (reads x and that array, rebuilds the
differences row by row in scratch rows, writes dx). Only one array is kept between the
two because a fresh array costs more than the arithmetic: a new 1 MB array is page-faulted
in on first write, ~10x the cost of writing existing memory on this machine. Rows are
independent, so both passes split into row blocks on ``_threads.run_blocks``.

Arithmetic is in x's dtype, as in the reference; each row's sum is accumulated in
float64 and the row sums are added by the caller (the same value whatever the
thread count).
"""
from __future__ import annotations

import numpy as np

from ..options import get
from ._jit import kernel
from ._threads import run_blocks

__all__ = ["tv_forward", "tv_backward", "tv2_forward", "tv2_backward"]


@kernel
def _tv_forward_rows(x, eps, q, f, sums, r0, r1):  # pragma: no cover - compiled
    """Rows r0..r1-1 of the flattened (B*H) row index: f = q m^(q-2) (1/m for q = 1) and each row's sum of m^q."""
    _, h, w = x.shape
    e2 = eps * eps
    qq = x.dtype.type(q)
    one = x.dtype.type(1)
    m = np.empty(w, dtype=x.dtype)
    for r in range(r0, r1):
        b = r // h
        i = r % h
        for j in range(w - 1):  # gh^2, then + gv^2 + eps^2 (the reference's order)
            gh = x[b, i, j + 1] - x[b, i, j]
            m[j] = gh * gh
        m[w - 1] = 0
        if i < h - 1:
            for j in range(w):
                gv = x[b, i + 1, j] - x[b, i, j]
                m[j] = np.sqrt(m[j] + gv * gv + e2)
        else:
            for j in range(w):
                m[j] = np.sqrt(m[j] + e2)
        total = 0.0
        if q == 1.0:
            for j in range(w):
                f[b, i, j] = one / m[j]
                total += m[j]
        else:
            for j in range(w):
                mq = m[j] ** qq
                f[b, i, j] = qq * mq / (m[j] * m[j])  # q m^(q-2)
                total += mq
        sums[r] = total


@kernel
def _tv_backward_rows(x, f, scale, dx, r0, r1):  # pragma: no cover - compiled
    """dx = scale * (Dh^T ph + Dv^T pv), ph = f Dh x, pv = f Dv x (recomputed from x), on rows r0..r1-1."""
    _, h, w = x.shape
    ph = np.zeros(w, dtype=x.dtype)  # ph's last entry stays 0
    for r in range(r0, r1):
        b = r // h
        i = r % h
        for j in range(w - 1):
            ph[j] = (x[b, i, j + 1] - x[b, i, j]) * f[b, i, j]
        # Dh^T ph = ph(i, j-1) - ph(i, j)
        dx[b, i, 0] = -ph[0]
        for j in range(1, w):
            dx[b, i, j] = ph[j - 1] - ph[j]
        # Dv^T pv = pv(i-1, j) - pv(i, j), pv zero in the last row
        if i >= 1:
            for j in range(w):
                dx[b, i, j] += (x[b, i, j] - x[b, i - 1, j]) * f[b, i - 1, j]
        if i < h - 1:
            for j in range(w):
                dx[b, i, j] -= (x[b, i + 1, j] - x[b, i, j]) * f[b, i, j]
        for j in range(w):
            dx[b, i, j] *= scale


@kernel
def _hessian_row(x, b, k, a, c, v):  # pragma: no cover - compiled
    """Row k of plane b: a = Dh Dh x, c = Dv Dh x, v = Dv Dv x (each zero where its difference is)."""
    _, h, w = x.shape
    for j in range(w):
        a[j] = 0
        c[j] = 0
        v[j] = 0
    for j in range(w - 2):
        a[j] = (x[b, k, j + 2] - x[b, k, j + 1]) - (x[b, k, j + 1] - x[b, k, j])
    if w >= 2:
        a[w - 2] = -(x[b, k, w - 1] - x[b, k, w - 2])
    if k < h - 1:
        for j in range(w - 1):
            c[j] = (x[b, k + 1, j + 1] - x[b, k + 1, j]) - (x[b, k, j + 1] - x[b, k, j])
        if k < h - 2:
            for j in range(w):
                v[j] = (x[b, k + 2, j] - x[b, k + 1, j]) - (x[b, k + 1, j] - x[b, k, j])
        else:
            for j in range(w):
                v[j] = -(x[b, k + 1, j] - x[b, k, j])


@kernel
def _tv2_forward_rows(x, eps, m, sums, r0, r1):  # pragma: no cover - compiled
    """Rows r0..r1-1: m = sqrt(a^2 + b^2 + 2 c^2 + eps^2) and each row's sum of m."""
    _, h, w = x.shape
    e2 = eps * eps
    two = x.dtype.type(2)
    a = np.empty(w, dtype=x.dtype)
    c = np.empty(w, dtype=x.dtype)
    v = np.empty(w, dtype=x.dtype)
    for r in range(r0, r1):
        b = r // h
        i = r % h
        _hessian_row(x, b, i, a, c, v)
        total = 0.0
        for j in range(w):
            mj = np.sqrt(a[j] * a[j] + v[j] * v[j] + two * c[j] * c[j] + e2)
            m[b, i, j] = mj
            total += mj
        sums[r] = total


@kernel
def _fields_row(x, m, b, k, p, qf, rf):  # pragma: no cover - compiled
    """Row k of P = a/m, Q = 2c/m, R = b/m (zero rows above the plane's first row)."""
    if k < 0:
        for j in range(p.shape[0]):
            p[j] = 0
            qf[j] = 0
            rf[j] = 0
        return
    _hessian_row(x, b, k, p, qf, rf)
    two = x.dtype.type(2)
    for j in range(p.shape[0]):
        mj = m[b, k, j]
        p[j] = p[j] / mj
        qf[j] = two * qf[j] / mj
        rf[j] = rf[j] / mj


@kernel
def _tv2_backward_rows(x, m, scale, dx, r0, r1):  # pragma: no cover - compiled
    """dx = scale * (Dh^T G + Dv^T V), G = Dh^T P + Dv^T Q, V = Dv^T R, on rows r0..r1-1.

    P, Q, R are rebuilt from x and m one row at a time; the rows above a block (Q, R of
    row i-1, R of row i-2) are rebuilt at its start, so blocks are independent.
    """
    _, h, w = x.shape
    p = np.empty(w, dtype=x.dtype)
    qf = np.empty(w, dtype=x.dtype)
    rf = np.empty(w, dtype=x.dtype)
    q_up = np.empty(w, dtype=x.dtype)
    r_up = np.empty(w, dtype=x.dtype)
    v_up = np.empty(w, dtype=x.dtype)
    g = np.empty(w, dtype=x.dtype)
    v = np.empty(w, dtype=x.dtype)
    for r in range(r0, r1):
        b = r // h
        i = r % h
        if r == r0 or i == 0:  # Q(i-1), R(i-1) and V(i-1) = R(i-2) - R(i-1)
            _fields_row(x, m, b, i - 2, p, qf, rf)
            for j in range(w):
                v_up[j] = rf[j]
            _fields_row(x, m, b, i - 1, p, q_up, r_up)
            for j in range(w):
                v_up[j] -= r_up[j]
        _fields_row(x, m, b, i, p, qf, rf)
        # G(i, j) = P(i, j-1) - P(i, j) + Q(i-1, j) - Q(i, j)   (P's last column, Q's last row are 0)
        g[0] = q_up[0] - p[0] - qf[0]
        for j in range(1, w):
            g[j] = p[j - 1] - p[j] + q_up[j] - qf[j]
        # V(i, j) = R(i-1, j) - R(i, j)
        for j in range(w):
            v[j] = r_up[j] - rf[j]
        # dx(i, j) = G(i, j-1) - G(i, j) [j <= w-2] + V(i-1, j) - V(i, j) [i <= h-2]
        if i <= h - 2:
            for j in range(w):
                dx[b, i, j] = v_up[j] - v[j]
        else:
            for j in range(w):
                dx[b, i, j] = v_up[j]
        if w >= 2:
            dx[b, i, 0] -= g[0]
            for j in range(1, w - 1):
                dx[b, i, j] += g[j - 1] - g[j]
            dx[b, i, w - 1] += g[w - 2]
        for j in range(w):
            dx[b, i, j] *= scale
            q_up[j] = qf[j]
            r_up[j] = rf[j]
            v_up[j] = v[j]


def _run(body, rows: int, pixels: int) -> None:
    """``body(r0, r1)`` over the rows: one block per thread from the ``tv_parallel_min_pixels`` knob on.

    Below it one thread: a 512x512 pass takes ~0.5 ms, most of it writing its fresh
    output; split in two it measured no faster on 2 idle cores and up to 2x slower when
    the other core was busy (the hand-off waits for a time slice).
    """
    run_blocks(body, rows, None if pixels >= get("tv_parallel_min_pixels") else 1)


def tv_forward(x: np.ndarray, eps: float, q: float) -> tuple[float, np.ndarray]:
    """Sum of m^q over x and the factor f = q m^(q-2) that ``tv_backward`` needs.

    Shapes: x (B, H, W) C-contiguous -> (float, (B, H, W) in x's dtype).
    """
    rows = x.shape[0] * x.shape[1]
    f = np.empty_like(x)
    sums = np.empty(rows)
    e = x.dtype.type(eps)
    _run(lambda r0, r1: _tv_forward_rows(x, e, float(q), f, sums, r0, r1), rows, x.size)
    return float(sums.sum()), f


def tv_backward(x: np.ndarray, f: np.ndarray, scale: float) -> np.ndarray:
    """``scale * (Dh^T (f Dh x) + Dv^T (f Dv x))``. Shapes: x, f (B, H, W) -> (B, H, W)."""
    rows = x.shape[0] * x.shape[1]
    dx = np.empty_like(x)
    s = x.dtype.type(scale)
    _run(lambda r0, r1: _tv_backward_rows(x, f, s, dx, r0, r1), rows, x.size)
    return dx


def tv2_forward(x: np.ndarray, eps: float) -> tuple[float, np.ndarray]:
    """Sum of the second-order m over x, and m itself (what ``tv2_backward`` needs).

    Shapes: x (B, H, W) C-contiguous -> (float, (B, H, W) in x's dtype).
    """
    rows = x.shape[0] * x.shape[1]
    m = np.empty_like(x)
    sums = np.empty(rows)
    e = x.dtype.type(eps)
    _run(lambda r0, r1: _tv2_forward_rows(x, e, m, sums, r0, r1), rows, x.size)
    return float(sums.sum()), m


def tv2_backward(x: np.ndarray, m: np.ndarray, scale: float) -> np.ndarray:
    """``scale * (Dh^T (Dh^T P + Dv^T Q) + Dv^T Dv^T R)``, P, Q, R rebuilt from x and m.

    Shapes: x, m (B, H, W) -> (B, H, W).
    """
    rows = x.shape[0] * x.shape[1]
    dx = np.empty_like(x)
    s = x.dtype.type(scale)
    _run(lambda r0, r1: _tv2_backward_rows(x, m, s, dx, r0, r1), rows, x.size)
    return dx
