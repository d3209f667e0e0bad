"""Whether a blind restoration is credible, judged from the blurred data alone.

Blind deconvolution can only be worse than doing nothing: a wrong kernel adds ringing and
ghost edges that were never in the scene. Two of the tests (each from the data only) that decide
whether ``blind_deconvolve`` returns its restoration or the input unchanged:

1. **Structure before estimation.** A kernel is read from edges; if the blurred image's
   gradient energy is hardly above what its noise alone gives (white noise of sd sigma
   has E|grad|^2 = 4 sigma^2 with forward differences), there is nothing to read it
   from: a flat image, pure noise. ``structure(y, sigma)`` is that excess energy relative
   to the noise's; under ``STRUCTURE_MIN`` the input is returned before any estimation.
2. **The data explained after restoration.** If the estimated kernel is right, re-blurring
   the restored image by it reproduces the blurred input up to noise. A kernel of the wrong
   shape cannot: where the true blur passed detail the wrong one removes, no image fits
   the data, and the re-blurred residual rises above the noise. ``residual_ratio`` is the
   residual's rms (away from the border, where the unseen surroundings make any fit
   inexact) over the noise sd; over ``RESIDUAL_MAX`` the input is returned.

A third measure hedges rather than refuses (``ghost_ratio``): deblurring by the right kernel
decorrelates neighbouring gradients; a partial or misplaced kernel leaves residual blur
and echoes of edges at offsets within the kernel's frame. Where the restoration keeps
``GHOSTS_MAX`` or more of the (denoised) input's gradient correlation at those offsets,
``blind_deconvolve`` returns at most half of it, the rest the denoised input; so it does when
the blurred image's ``structure`` is under ``STRUCTURE_HEDGE`` (few edges to read a kernel from).

Between the first two, blind_select.py keeps the estimated kernel only when it predicts
held-out pixels clearly better than no deblurring. The constants were chosen on the
tuning split of benchmarks/bench_blind.py (docs/blind.md).
"""
from __future__ import annotations

import numpy as np

from .psf import blur

STRUCTURE_MIN = 0.1  # gradient energy above the noise's, as a share of the noise's, needed to estimate a kernel
RESIDUAL_MAX = 1.6  # re-blurred residual rms over the noise sd above which the restoration is refused
SIGMA_FLOOR = 1e-3  # the noise sd assumed at least (working units): a noise-free input still has rounding
GHOSTS_MAX = 0.5  # ghost-edge ratio (``ghost_ratio``) from which an accepted restoration is hedged
# structure (above) under which an accepted restoration is hedged too: with few edges above the noise the
# kernel is read from little, and a wrong one is likelier than the held-out test can tell
STRUCTURE_HEDGE = 0.5


def channel_planes(x: np.ndarray) -> list[np.ndarray]:
    """(H, W) -> [x]; (H, W, C) -> its C (H, W) planes (views)."""
    return [x] if x.ndim == 2 else [x[..., c] for c in range(x.shape[2])]


def leading_plane(x: np.ndarray) -> np.ndarray:
    """One (H, W) plane carrying most of a colour image's edges: the channels' combination along the
    leading eigenvector of their gradient covariance (for most photos close to their mean; for a
    red-green edge invisible in the mean, their difference). The weights' absolute values sum to
    one and the plane is offset so that channels in [0, 1] map into [0, 1]; a blur of every
    channel by one kernel blurs the plane by the same kernel. (H, W) -> itself; (H, W, C) -> (H, W).
    """
    if x.ndim == 2:
        return x
    g = np.concatenate([np.diff(x, axis=0).reshape(-1, x.shape[2]), np.diff(x, axis=1).reshape(-1, x.shape[2])])
    w = np.linalg.eigh(g.T @ g)[1][:, -1]
    w = w * np.sign(w.sum()) if w.sum() != 0 else w
    w = w / np.abs(w).sum()
    return x @ w + np.clip(-w, 0.0, None).sum()


def structure(y: np.ndarray, sigma: float) -> float:
    """Mean gradient energy of ``y`` over the noise's (4 sigma^2), minus one. (H, W) or (H, W, C) -> float."""
    energy = np.mean([np.mean(np.diff(c, axis=0) ** 2) + np.mean(np.diff(c, axis=1) ** 2)
                      for c in channel_planes(y)])
    noise = 4.0 * max(sigma, SIGMA_FLOOR) ** 2
    return float(energy / noise - 1.0)


def residual_ratio(restored: np.ndarray, y: np.ndarray, kernel: np.ndarray, sigma: float) -> float:
    """rms(kernel (*) restored - y) over the noise sd, leaving out the kernel's extent at the border."""
    mh, mw = kernel.shape[0], kernel.shape[1]
    errors = []
    for x, c in zip(channel_planes(restored), channel_planes(y)):
        r = blur(x, kernel, mode="reflect") - c
        if r.shape[0] > 2 * mh + 4 and r.shape[1] > 2 * mw + 4:
            r = r[mh:-mh, mw:-mw]
        errors.append(np.mean(r * r))
    return float(np.sqrt(np.mean(errors)) / max(sigma, SIGMA_FLOOR))


def ghost_ratio(restored: np.ndarray, reference: np.ndarray, frame: tuple[int, int]) -> float:
    """How much gradient correlation within the kernel's frame the restoration keeps, relative to ``reference``.

    For each of the forward differences (horizontal, vertical) of the restoration's and the
    reference's leading plane (the border of one frame left out), the normalised
    autocorrelation's mean absolute value at offsets (dy, dx) with |dy| <= kh // 2,
    |dx| <= kw // 2 and dy^2 + dx^2 > 2 (beyond the immediate neighbours); the restoration's
    over the reference's (offsets beyond a gradient image's size are left out; 0 when the
    reference has no such correlation, e.g. flat). ``restored`` and ``reference`` (H, W) or
    (H, W, C); ``frame`` (kh, kw).
    """
    from scipy.signal import fftconvolve  # late: keeps `import minieye` light
    kh, kw = frame
    rh, rw = kh // 2, kw // 2
    dy, dx = np.mgrid[-rh:rh + 1, -rw:rw + 1]
    off = dy * dy + dx * dx > 2
    if not off.any():
        return 0.0

    def correlation(x: np.ndarray) -> float:
        x = leading_plane(x)
        if x.shape[0] > 2 * kh + 8 and x.shape[1] > 2 * kw + 8:
            x = x[kh:-kh, kw:-kw]
        total = 0.0
        for g in (np.diff(x, axis=1), np.diff(x, axis=0)):
            g = g - g.mean()
            a = fftconvolve(g, g[::-1, ::-1], mode="full")
            ch, cw = g.shape[0] - 1, g.shape[1] - 1  # the zero offset; also the largest lags a has
            sh, sw = min(rh, ch), min(rw, cw)  # a frame larger than the image: the lags there are
            seen = off[rh - sh:rh + sh + 1, rw - sw:rw + sw + 1]
            centre = a[ch, cw] if g.size else 0.0
            if centre > 0 and seen.any():
                total += float(np.abs(a[ch - sh:ch + sh + 1, cw - sw:cw + sw + 1][seen]).mean() / centre) / 2
        return total

    base = correlation(reference)
    return correlation(restored) / base if base > 0 else 0.0
