"""The kernel half of blind deconvolution: fit a PSF to predicted sharp edges.

Given a sharp-looking estimate u of the scene (the image step's output, one kernel
radius larger than the blurred image y on every side) the kernel step solves

    min_k  sum_d |D_d y - k (*) P_d|^2 + beta |k|^2      subject to  k >= 0, sum k = 1

where D_d y are y's horizontal and vertical differences and P_d the *selected* differences
of u: only strong, trustworthy edges (Cho & Lee's predicted edges). Gradients condition the
fit far better than intensities (flat regions carry no information about k but dominate an
intensity fit), and weak gradients are where u is least right. The selection is balanced
over orientations: the strongest edges of a photo are often mostly of one direction, and a
kernel fitted to horizontal edges alone is unconstrained along them (a diagonal streak was
found smeared that way); each of four orientation bins gets its own quota.

The normal equations are built exactly with FFT correlations (``windowed_gram``: the
plain autocorrelation's Toeplitz approximation biased the kernel) and solved on the simplex by accelerated
projected gradient (FISTA with ``train.Simplex``'s projection). The result is cleaned:
entries under a fraction of the peak are dropped (a sparsity prior in its simplest form:
true blur kernels are mostly empty), as are isolated specks (8-connected components
carrying little mass), and the kernel is re-centred on its centroid (a shifted kernel
would shift the final image).
"""
from __future__ import annotations

import functools

import numpy as np
import scipy.fft as sfft

from ..core import Parameter
from .. import train

BETA = 0.1  # kernel Tikhonov floor, relative to the mean diagonal of the normal matrix
PRUNE = 0.05  # kernel entries below this fraction of the largest are set to zero
SPECK = 0.1  # connected components with less than this share of the kernel's mass are dropped
BINS = 4  # orientation bins of the edge selection (0, 45, 90, 135 degrees)
# the kernel fit stops when an iteration moves the kernel by less than this (L1, of a sum-1 kernel):
# the result is then within about 1e-6 of 300 iterations', at a third of their cost
SETTLED = 1e-9


def grads(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) -> horizontal and vertical forward differences, each (H - 1, W - 1)."""
    return x[:-1, 1:] - x[:-1, :-1], x[1:, :-1] - x[:-1, :-1]


def select_edges(gh: np.ndarray, gv: np.ndarray, keep: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero all but the strongest gradients, ``keep / BINS`` of the pixels in each orientation bin.

    A bin with fewer non-zero gradients than its quota keeps all of them.
    """
    mag = np.hypot(gh, gv)
    angle = np.mod(np.arctan2(gv, gh), np.pi)  # an edge and its opposite constrain k alike
    bins = np.floor(angle / (np.pi / BINS) + 0.5).astype(int) % BINS
    quota = max(int(keep * mag.size / BINS), 1)
    mask = np.zeros(mag.shape, dtype=bool)
    for b in range(BINS):
        values = np.where((bins == b) & (mag > 0), mag, 0.0).ravel()
        if quota < values.size:
            top = np.argpartition(values, values.size - quota)[values.size - quota:]
        else:
            top = np.arange(values.size)
        top = top[values[top] > 0]
        mask.flat[top] = True
    return gh * mask, gv * mask


def normal_equations(u: np.ndarray, y: np.ndarray, shape: tuple[int, int], keep: float, margin: int = 0,
                     spectra: tuple | None = None):
    """A^T A and A^T b of the kernel fit grad y ~ k (*) P (valid), by FFT correlations.

    u: (H + kh - 1, W + kw - 1) extended image; y: (H, W); ``margin`` pixels of y's border
    are left out (where the image step's boundary guess is least right). ``spectra``:
    ``gradient_spectra(y, shape, margin)``, for a caller fitting many u to one y. Returns
    ((n, n), (n,)) with n = kh * kw, in k's row-major order.
    """
    kh, kw = shape
    if margin and min(y.shape) > 2 * margin + 4:
        u = u[margin:-margin, margin:-margin]
    ph, pv = select_edges(*grads(u), keep)
    fshape, conj_gh, conj_gv = spectra if spectra is not None else gradient_spectra(y, shape, margin)
    cross = np.zeros(fshape)
    for p, g in ((ph, conj_gh), (pv, conj_gv)):
        cross += sfft.irfft2(sfft.rfft2(p, fshape) * g, fshape)  # sum_i P[i + s] G[i]
    # y[i] = sum_ab k[a, b] u[i + kh - 1 - a, ...]: the window of entry (a, b) starts at offset (kh-1-a, kw-1-b)
    a, b = np.divmod(np.arange(kh * kw), kw)
    return windowed_gram((ph, pv), shape), cross[kh - 1 - a, kw - 1 - b]


def gradient_spectra(y: np.ndarray, shape: tuple[int, int], margin: int = 0) -> tuple:
    """(FFT shape, conj FFT of y's horizontal gradients, ... vertical) as ``normal_equations`` correlates them."""
    if margin and min(y.shape) > 2 * margin + 4:
        y = y[margin:-margin, margin:-margin]
    gh, gv = grads(y)
    fshape = (sfft.next_fast_len(gh.shape[0] + 2 * shape[0] - 1, True),
              sfft.next_fast_len(gh.shape[1] + 2 * shape[1] - 1, True))
    return fshape, np.conj(sfft.rfft2(gh, fshape)), np.conj(sfft.rfft2(gv, fshape))


def windowed_gram(ps: tuple[np.ndarray, ...], shape: tuple[int, int]) -> np.ndarray:
    """The exact normal matrix of the valid fit, summed over ``ps``: A[p, q] = sum_{i in window} P[i + o_p] P[i + o_q].

    Each P is (Hg + kh - 1, Wg + kw - 1); the sum runs over the (Hg, Wg) window of the fit,
    and k entry (a, b) reads P at offset o = (kh-1-a, kw-1-b). The plain FFT
    autocorrelation sums over all of P instead (a Toeplitz approximation): it counts the
    border bands of P that a given offset's window leaves out, and that bias was the
    largest error of the kernel step (a kernel fitted to the true sharp image came out at
    L1 error 0.6 instead of 0.02). The exact matrix is the full autocorrelation minus, for
    each offset, the left-out row bands and column bands plus their corners (counted
    twice): 1-D FFT correlations of the band rows (columns) and a direct product at the
    corners. Returns (kh kw, kh kw).
    """
    kh, kw = shape
    hp, wp = ps[0].shape
    hg, wg = hp - kh + 1, wp - kw + 1
    fshape = (sfft.next_fast_len(hp + kh, True), sfft.next_fast_len(wp + kw, True))  # no wrap-around
    da_n, db_n = 2 * kh - 1, 2 * kw - 1  # shifts d = o_q - o_p, from -(k-1) to k-1 on each axis
    rows = np.r_[0:kh - 1, hg:hp]  # the rows of P some window leaves out
    cols = np.r_[0:kw - 1, wg:wp]
    total = np.zeros(fshape)
    row_tot = np.zeros((rows.size, da_n, db_n))  # row_tot[t, da, db] = sum_jb P[rows[t], jb] P[rows[t] + da, jb + db]
    col_tot = np.zeros((cols.size, da_n, db_n))
    corner = np.zeros((rows.size, cols.size, da_n, db_n))  # P[j] P[j + d] at the band crossings
    lag_a = np.arange(-(kh - 1), kh) % fshape[0]
    lag_b = np.arange(-(kw - 1), kw) % fshape[1]
    for p in ps:
        fp = sfft.rfft2(p, fshape)
        total += sfft.irfft2(fp * np.conj(fp), fshape)
        padded = np.pad(p, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
        # every band row (column) against its 2k - 1 shifted neighbours: one batch of 1-D correlations
        fr = sfft.rfft(padded, fshape[1], axis=1)
        pairs = np.conj(fr[rows + kh - 1])[:, None] * fr[rows[:, None] + np.arange(da_n)]
        row_tot += sfft.irfft(pairs, fshape[1], axis=2, overwrite_x=True)[:, :, lag_b]
        fc = sfft.rfft(padded, fshape[0], axis=0)
        pairs = np.conj(fc[:, cols + kw - 1])[:, :, None] * fc[:, cols[:, None] + np.arange(db_n)]
        col_tot += np.moveaxis(sfft.irfft(pairs, fshape[0], axis=0, overwrite_x=True)[lag_a], 0, 2).transpose(0, 2, 1)
        # the selected edges are sparse: only the crossings where P is non-zero add anything
        t, u = np.nonzero(p[np.ix_(rows, cols)])
        window = np.lib.stride_tricks.sliding_window_view(padded, (da_n, db_n))[rows[t], cols[u]]
        corner[t, u] += p[rows[t], cols[u]][:, None, None] * window
    row_out = _left_out(row_tot, 0, kh)  # (kh, da, db): summed over the rows offset oa leaves out
    col_out = _left_out(col_tot, 0, kw)
    corner_out = _left_out(_left_out(corner, 0, kh), 1, kw)  # (kh, kw, da, db)
    oa, ob, sa, sb, wrapped_a, wrapped_b = _pair_offsets(shape, fshape)
    full = total[wrapped_a, wrapped_b]
    return full - row_out[oa, sa, sb] - col_out[ob, sa, sb] + corner_out[oa, ob, sa, sb]


@functools.lru_cache(maxsize=16)
def _pair_offsets(shape: tuple[int, int], fshape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """``windowed_gram``'s index arrays for a (kh, kw) kernel and an FFT shape (the same for all rounds of a level).

    Every entry pair (p, q): the offsets (oa, ob) of p's window, the shifts d = o_q - o_p as indices
    from 0 (sa, sb), and the shifts wrapped into the FFT's circular lags.
    """
    kh, kw = shape
    a, b = np.divmod(np.arange(kh * kw), kw)
    oa, ob = (kh - 1 - a)[:, None], (kw - 1 - b)[:, None]
    da, db = oa.T - oa, ob.T - ob
    arrays = oa, ob, da + kh - 1, db + kw - 1, da % fshape[0], db % fshape[1]
    for array in arrays:
        array.flags.writeable = False  # shared by every call
    return arrays


def _left_out(x: np.ndarray, axis: int, k: int) -> np.ndarray:
    """Sums over the band entries each window offset leaves out, along ``axis``: 2 (k - 1) -> k.

    The band's first k - 1 entries lie before every window (offset o leaves out those
    before it), its last k - 1 after (offset o leaves out those from o on). Computed as a
    product with the (k, 2 (k - 1)) 0/1 matrix of those sums (BLAS): the band-crossing
    array is large, and prefix sums over it were half the cost of the normal matrix.
    """
    o, t = np.arange(k)[:, None], np.arange(k - 1)[None, :]
    sums = np.concatenate([t < o, t >= o], axis=1).astype(x.dtype)
    return np.moveaxis(np.tensordot(sums, x, axes=(1, axis)), 0, axis)


def solve_simplex(ata: np.ndarray, atb: np.ndarray, start: np.ndarray, iterations: int = 300,
                  beta: float = BETA, settled: float = SETTLED) -> np.ndarray:
    """argmin k^T (A^T A + beta I) k - 2 (A^T b)^T k over the simplex (FISTA, train.Simplex's projection).

    The Tikhonov weight is ``beta`` (default ``BETA``) times A^T A's mean diagonal: a floor under the noise-dependent term the
    caller adds to A^T A (blind_estimate's latent doubt). With 1e-2 alone the exact fit broke
    camera-shake paths and disks into scattered dots. It stops early once an iteration moves
    the kernel by less than ``settled`` (L1); 0 runs every iteration.
    """
    n = atb.size
    q = ata + beta * max(np.trace(ata) / n, 1e-12) * np.eye(n)
    step = 1.0 / _largest_eigenvalue(q)
    simplex = train.Simplex(Parameter(np.zeros(n), name="kernel"))
    k = simplex.project(start.ravel().astype(np.float64))
    z, t = k.copy(), 1.0
    for _ in range(iterations):
        k_next = simplex.project(z - step * (q @ z - atb))
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        moved = np.abs(k_next - k).sum()
        z = k_next + (t - 1.0) / t_next * (k_next - k)
        k, t = k_next, t_next
        if moved < settled:
            break
    return k.reshape(start.shape)


def _largest_eigenvalue(q: np.ndarray, iterations: int = 50) -> float:
    """An upper bound close to the largest eigenvalue of a symmetric PSD matrix (the FISTA step's Lipschitz constant).

    Power iteration from a flat vector (every row sum of an autocorrelation matrix is
    positive, so it is never orthogonal to the top eigenvector), then 10% of margin, never
    above Gershgorin's bound; a full eigendecomposition of the (kh kw)^2 matrix cost
    seconds for 25x25 kernels.
    """
    v = np.full(q.shape[0], 1.0 / np.sqrt(q.shape[0]))
    value = 0.0
    for _ in range(iterations):
        w = q @ v
        value = float(np.linalg.norm(w))
        if not value > 0:
            break
        v = w / value
    return min(1.1 * value, float(np.abs(q).sum(axis=1).max())) if value > 0 else float(np.abs(q).sum(axis=1).max()) or 1.0


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """8-connected components of a small boolean array, each as a boolean mask (flood fill by dilation)."""
    left = mask.copy()
    found = []
    while left.any():
        comp = np.zeros_like(left)
        comp.flat[np.flatnonzero(left)[0]] = True
        while True:
            grown = np.pad(comp, 1)
            grown = np.max([grown[i:i + comp.shape[0], j:j + comp.shape[1]] for i in range(3) for j in range(3)],
                           axis=0) & left
            if (grown == comp).all():
                break
            comp = grown
        found.append(comp)
        left &= ~comp
    return found


def clean(k: np.ndarray) -> np.ndarray:
    """Drop faint entries and small isolated specks, re-centre on the centroid (integer shift), renormalise.

    Always returns a non-negative kernel summing to one: the heaviest component is kept
    even when it too is under the speck threshold (a kernel of many equal specks keeps
    one of them), and a kernel with no positive finite entry becomes a centred delta
    ("no blur found": there is nothing to re-centre or renormalise).
    Shapes: (kh, kw) -> (kh, kw).
    """
    k = np.where(np.isfinite(k), k, 0.0)
    peak = k.max()
    if not peak > 0:
        delta = np.zeros(k.shape)
        delta[k.shape[0] // 2, k.shape[1] // 2] = 1.0
        return delta
    k = np.where(k >= PRUNE * peak, k, 0.0)  # peak > 0: negative entries go too
    total = k.sum()
    comps = _components(k > 0)
    heaviest = max(range(len(comps)), key=lambda i: k[comps[i]].sum())
    for i, comp in enumerate(comps):
        if i != heaviest and k[comp].sum() < SPECK * total:
            k[comp] = 0.0
    rows, cols = np.indices(k.shape)
    total = k.sum()  # > 0: the heaviest component holds the peak's share at least
    dy = int(np.rint((rows * k).sum() / total - k.shape[0] // 2))
    dx = int(np.rint((cols * k).sum() / total - k.shape[1] // 2))
    shifted = np.zeros_like(k)
    h, w = k.shape
    shifted[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)] = k[max(dy, 0):h - max(-dy, 0),
                                                                      max(dx, 0):w - max(-dx, 0)]
    return shifted / shifted.sum() if shifted.sum() > 0 else k / total


def start_kernel(kh: int, kw: int) -> np.ndarray:
    """A unit-sd Gaussian blob: the coarsest level's first guess."""
    r = np.arange(kh) - kh // 2
    c = np.arange(kw) - kw // 2
    k = np.exp(-0.5 * (r[:, None] ** 2 + c[None, :] ** 2))
    return k / k.sum()
