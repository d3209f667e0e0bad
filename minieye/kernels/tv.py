"""Total variation of images, first and second order: value and gradient in two fused passes.

The maths (and the NumPy reference these kernels are tested against) is in
``minieye/losses/regularizers.py``. On a stack of planes x (B, H, W), with forward
differences that are zero across the last column / row (Neumann boundary):

    gh = Dh x,  gv = Dv x                           (x[i, j+1] - x[i, j], x[i+1, j] - x[i, j])
    TV:   m = sqrt(gh^2 + gv^2 + eps^2)             value sum m^q
          forward stores  ph = q m^(q-2) gh,  pv = q m^(q-2) gv
          backward        dx = Dh^T ph + Dv^T pv    (= -div p)
    TV2:  a = Dh gh, c = Dv gh, b = Dv gv,  m = sqrt(a^2 + b^2 + 2 c^2 + eps^2)   value sum m
          forward stores  P = a / m,  Q = 2 c / m,  R = b / m
          backward        dx = Dh^T (Dh^T P + Dv^T Q) + Dv^T (Dv^T R)

with ``Dh^T u [j] = u[j-1] (j >= 1) - u[j] (j <= W-2)`` (``Dv^T`` the same along rows).
The stored fields are zero where their differences are (ph's last column, Q's last row,
...), which is what lets the backward gathers drop most boundary tests.

Why: the NumPy reference makes ~30 passes over the image per evaluation (differences
into zero-filled temporaries, a divergence built by slice updates); a 512x512 L-BFGS
deconvolution spent a third of its time there. Here the forward is one pass (reads x,
writes the fields) and the backward one pass (reads the fields, writes dx); rows are
independent, so both split into row blocks on ``_threads.run_parts``.

Arithmetic is in x's dtype, as in the reference; each row's sum is accumulated in
float64 and the row sums are added by the caller (the same value whatever the
thread count).
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from ._threads import run_parts, thread_count

__all__ = ["tv_forward", "tv_backward", "tv2_forward", "tv2_backward"]

# Below this many pixels a call runs on one thread (a hand-off costs tens of microseconds).
PARALLEL_MIN_PIXELS = 1 << 16


@kernel
def _tv_forward_rows(x, eps, q, ph, pv, sums, r0, r1):  # pragma: no cover - compiled
    """Rows r0..r1-1 of the flattened (B*H) row index: fields ph, pv and each row's sum of m^q."""
    _, h, w = x.shape
    e2 = eps * eps
    qq = x.dtype.type(q)
    one = x.dtype.type(1)
    for r in range(r0, r1):
        b = r // h
        i = r % h
        total = 0.0
        for j in range(w):
            gh = x[b, i, j + 1] - x[b, i, j] if j < w - 1 else x.dtype.type(0)
            gv = x[b, i + 1, j] - x[b, i, j] if i < h - 1 else x.dtype.type(0)
            m = np.sqrt(gh * gh + gv * gv + e2)
            if q == 1.0:
                f = one / m
                total += m
            else:
                mq = m ** qq
                f = qq * mq / (m * m)  # q m^(q-2)
                total += mq
            ph[b, i, j] = gh * f
            pv[b, i, j] = gv * f
        sums[r] = total


@kernel
def _tv_backward_rows(ph, pv, scale, dx, r0, r1):  # pragma: no cover - compiled
    """dx = scale * (Dh^T ph + Dv^T pv) on rows r0..r1-1 (ph's last column and pv's last row are 0)."""
    _, h, w = ph.shape
    for r in range(r0, r1):
        b = r // h
        i = r % h
        dx[b, i, 0] = -ph[b, i, 0] - pv[b, i, 0]
        for j in range(1, w):
            dx[b, i, j] = ph[b, i, j - 1] - ph[b, i, j] - pv[b, i, j]
        if i >= 1:
            for j in range(w):
                dx[b, i, j] += pv[b, i - 1, j]
        for j in range(w):
            dx[b, i, j] *= scale


@kernel
def _tv2_forward_rows(x, eps, p, qf, rf, sums, r0, r1):  # pragma: no cover - compiled
    """Rows r0..r1-1: fields P = a/m, Q = 2c/m, R = b/m and each row's sum of m."""
    _, h, w = x.shape
    e2 = eps * eps
    zero = x.dtype.type(0)
    two = x.dtype.type(2)
    for r in range(r0, r1):
        b = r // h
        i = r % h
        total = 0.0
        for j in range(w):
            # gh at (i, j), (i, j+1), (i+1, j); gv at (i, j), (i+1, j): zero past the last column/row
            gh = x[b, i, j + 1] - x[b, i, j] if j < w - 1 else zero
            a = zero
            if j < w - 1:
                gh_right = x[b, i, j + 2] - x[b, i, j + 1] if j < w - 2 else zero
                a = gh_right - gh
            c = zero
            bb = zero
            if i < h - 1:
                gh_down = x[b, i + 1, j + 1] - x[b, i + 1, j] if j < w - 1 else zero
                c = gh_down - gh
                gv = x[b, i + 1, j] - x[b, i, j]
                gv_down = x[b, i + 2, j] - x[b, i + 1, j] if i < h - 2 else zero
                bb = gv_down - gv
            m = np.sqrt(a * a + bb * bb + two * c * c + e2)
            total += m
            p[b, i, j] = a / m
            qf[b, i, j] = two * c / m
            rf[b, i, j] = bb / m
        sums[r] = total


@kernel
def _tv2_backward_rows(p, qf, rf, scale, dx, r0, r1):  # pragma: no cover - compiled
    """dx = scale * (Dh^T G + Dv^T V), G = Dh^T P + Dv^T Q, V = Dv^T R, on rows r0..r1-1.

    G and V are built one row at a time in scratch rows (V of the row above is rebuilt
    at the start of a block, so blocks are independent).
    """
    _, h, w = p.shape
    g = np.empty(w, dtype=p.dtype)
    v_up = np.zeros(w, dtype=p.dtype)
    v = np.empty(w, dtype=p.dtype)
    for r in range(r0, r1):
        b = r // h
        i = r % h
        if r == r0 or i == 0:  # V of row i-1: R(i-2) - R(i-1), zero above the first row
            if i >= 1:
                for j in range(w):
                    v_up[j] = -rf[b, i - 1, j]
                if i >= 2:
                    for j in range(w):
                        v_up[j] += rf[b, i - 2, j]
            else:
                for j in range(w):
                    v_up[j] = 0
        # G(i, j) = P(i, j-1) - P(i, j) + Q(i-1, j) - Q(i, j)   (P's last column, Q's last row are 0)
        g[0] = -p[b, i, 0] - qf[b, i, 0]
        for j in range(1, w):
            g[j] = p[b, i, j - 1] - p[b, i, j] - qf[b, i, j]
        # V(i, j) = R(i-1, j) - R(i, j)
        for j in range(w):
            v[j] = -rf[b, i, j]
        if i >= 1:
            for j in range(w):
                g[j] += qf[b, i - 1, j]
                v[j] += rf[b, i - 1, j]
        # dx(i, j) = G(i, j-1) - G(i, j) [j <= w-2] + V(i-1, j) - V(i, j) [i <= h-2]
        last = i <= h - 2
        for j in range(w):
            s = v_up[j] - v[j] if last else v_up[j]
            if j >= 1:
                s += g[j - 1]
            if j <= w - 2:
                s -= g[j]
            dx[b, i, j] = s * scale
        for j in range(w):
            v_up[j] = v[j]


def _split(rows: int, pixels: int) -> list[tuple[int, int]]:
    parts = thread_count() if pixels >= PARALLEL_MIN_PIXELS else 1
    parts = max(1, min(parts, rows))
    edges = [rows * k // parts for k in range(parts + 1)]
    return [(edges[k], edges[k + 1]) for k in range(parts)]


def _run(body, rows: int, pixels: int) -> None:
    blocks = _split(rows, pixels)
    run_parts(lambda k: body(*blocks[k]), len(blocks))


def tv_forward(x: np.ndarray, eps: float, q: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Sum of m^q over x and the fields (ph, pv) that ``tv_backward`` needs.

    Shapes: x (B, H, W) C-contiguous -> (float, (B, H, W), (B, H, W)), fields in x's dtype.
    """
    rows = x.shape[0] * x.shape[1]
    ph, pv = np.empty_like(x), np.empty_like(x)
    sums = np.empty(rows)
    e = x.dtype.type(eps)
    _run(lambda r0, r1: _tv_forward_rows(x, e, float(q), ph, pv, sums, r0, r1), rows, x.size)
    return float(sums.sum()), ph, pv


def tv_backward(ph: np.ndarray, pv: np.ndarray, scale: float) -> np.ndarray:
    """``scale * (Dh^T ph + Dv^T pv)``. Shapes: ph, pv (B, H, W) -> (B, H, W)."""
    rows = ph.shape[0] * ph.shape[1]
    dx = np.empty_like(ph)
    s = ph.dtype.type(scale)
    _run(lambda r0, r1: _tv_backward_rows(ph, pv, s, dx, r0, r1), rows, ph.size)
    return dx


def tv2_forward(x: np.ndarray, eps: float) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Sum of the second-order m over x and the fields (P, Q, R) that ``tv2_backward`` needs.

    Shapes: x (B, H, W) C-contiguous -> (float, 3 x (B, H, W)), fields in x's dtype.
    """
    rows = x.shape[0] * x.shape[1]
    p, qf, rf = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    sums = np.empty(rows)
    e = x.dtype.type(eps)
    _run(lambda r0, r1: _tv2_forward_rows(x, e, p, qf, rf, sums, r0, r1), rows, x.size)
    return float(sums.sum()), p, qf, rf


def tv2_backward(p: np.ndarray, qf: np.ndarray, rf: np.ndarray, scale: float) -> np.ndarray:
    """``scale * (Dh^T (Dh^T P + Dv^T Q) + Dv^T Dv^T R)``. Shapes: 3 x (B, H, W) -> (B, H, W)."""
    rows = p.shape[0] * p.shape[1]
    dx = np.empty_like(p)
    s = p.dtype.type(scale)
    _run(lambda r0, r1: _tv2_backward_rows(p, qf, rf, s, dx, r0, r1), rows, p.size)
    return dx
