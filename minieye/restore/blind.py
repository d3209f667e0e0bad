"""Blind deconvolution: estimate the image and the blur kernel together, coarse to fine.

Minimise over the image u and the PSF k (non-negative, summing to one)

    mean((k (*) u - y)^2) + w_u TV(u)          and, for k,   |grad y - k (*) P|^2 + beta |k|^2

alternately, on an image pyramid (factor sqrt(2) per level, the coarsest with a ~3 pixel
kernel), because a small blur is easy to find and a good coarse kernel is the right start
for the next level (the local minima of the joint problem are mostly at the fine scales):

1. image step: ``deconvolution_problem`` (learned Source image -> frozen conv with k,
   TV weight large enough to give a cartoon image with only strong, sharp edges),
   warm-started from the previous image;
2. kernel step: P = the strongest ``KEEP`` fraction of u's gradients (the rest zeroed: Cho
   & Lee's predicted edges; gradients condition the kernel estimate far better than raw
   intensities, and weak gradients are where the cartoon image is least trustworthy). The
   normal equations of the least-squares fit are built with FFT correlations (a Toeplitz
   approximation: the (kh kw)^2 matrix of P's autocorrelations), then solved on the
   simplex ``k >= 0, sum k = 1`` by accelerated projected gradient, the projection being
   ``train.Simplex``'s. Entries below ``PRUNE`` of the largest are dropped and the kernel
   is re-centred on its centroid (a shifted kernel would shift the final image).

The TV weight halves each round (continuation), from a cartoon towards detail. Between
levels the image and the kernel are upsampled bilinearly. A final non-blind
``deconvolve`` with the estimated kernel gives the returned image. Colour images share
one kernel, estimated on their mean channel.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import check_positive_int, fail, pair
from ..core import Parameter
from .. import losses, train
from .deconvolve import TV_EPS, _as_image, _to_dtype, deconvolution_problem, deconvolve
from .noise import estimate_noise

__all__ = ["blind_deconvolve"]

START_WEIGHT = 2e-3  # TV weight of each level's first round (a strongly cartoonised image)
END_WEIGHT = 2.5e-4  # ... never below this while the kernel is being estimated
PRUNE = 0.05  # kernel entries below this fraction of the largest are set to zero
KEEP = 0.1  # fraction of the strongest image gradients the kernel step trusts
BETA = 1e-2  # kernel Tikhonov weight, relative to the mean diagonal of the normal matrix
FINAL_SIGMA_FLOOR = 0.005  # the final non-blind pass regularises at least as for this noise sd


def _resize(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling of the last two axes to ``shape`` (pixel centres aligned)."""
    out = x
    for axis, n in ((-2, shape[0]), (-1, shape[1])):
        m = out.shape[axis]
        if m == n:
            continue
        pos = (np.arange(n) + 0.5) * m / n - 0.5
        lo = np.clip(np.floor(pos).astype(int), 0, m - 1)
        hi = np.clip(lo + 1, 0, m - 1)
        t = np.clip(pos - lo, 0.0, 1.0)
        shape_t = [1] * out.ndim
        shape_t[axis] = n
        t = t.reshape(shape_t)
        out = np.take(out, lo, axis=axis) * (1 - t) + np.take(out, hi, axis=axis) * t
    return out


def _grads(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) -> horizontal and vertical forward differences, each (H - 1, W - 1)."""
    return x[:-1, 1:] - x[:-1, :-1], x[1:, :-1] - x[:-1, :-1]


def _strong(gh: np.ndarray, gv: np.ndarray, keep: float) -> tuple[np.ndarray, np.ndarray]:
    mag = np.hypot(gh, gv)
    mask = mag >= np.quantile(mag, 1.0 - keep)
    return gh * mask, gv * mask


def _normal_equations(u: np.ndarray, y: np.ndarray, shape: tuple[int, int], keep: float):
    """A^T A and A^T b of the kernel fit grad y ~ k (*) P (valid), by FFT correlations.

    u: (H + kh - 1, W + kw - 1) extended image; y: (H, W). Returns ((n, n), (n,)) with
    n = kh * kw, in k's row-major order.
    """
    kh, kw = shape
    ph, pv = _strong(*_grads(u), keep)
    gh, gv = _grads(y)
    fshape = (ph.shape[0] + kh, ph.shape[1] + kw)
    auto = np.zeros(fshape)
    cross = np.zeros(fshape)
    for p, g in ((ph, gh), (pv, gv)):
        fp = np.fft.rfft2(p, fshape)
        auto += np.fft.irfft2(fp * np.conj(fp), fshape)  # R[s] = sum_i P[i] P[i + s] (wrapped index)
        cross += np.fft.irfft2(fp * np.conj(np.fft.rfft2(g, fshape)), fshape)  # C[s] = sum_i P[i + s] G[i]
    # y[i] = sum_ab k[a, b] u[i + kh - 1 - a, ...]: the window of entry (a, b) starts at offset (kh-1-a, kw-1-b)
    a, b = np.divmod(np.arange(kh * kw), kw)
    oa, ob = kh - 1 - a, kw - 1 - b
    ata = auto[(oa[None, :] - oa[:, None]) % fshape[0], (ob[None, :] - ob[:, None]) % fshape[1]]
    atb = cross[oa, ob]
    return ata, atb


def _solve_simplex(ata: np.ndarray, atb: np.ndarray, start: np.ndarray, iterations: int = 300) -> np.ndarray:
    """argmin k^T (A^T A + beta I) k - 2 (A^T b)^T k over the simplex (FISTA, train.Simplex's projection)."""
    n = atb.size
    q = ata + BETA * max(np.trace(ata) / n, 1e-12) * np.eye(n)
    step = 1.0 / np.linalg.eigvalsh(q)[-1]
    simplex = train.Simplex(Parameter(np.zeros(n), name="kernel"))
    k = simplex.project(start.ravel().astype(np.float64))
    z, t = k.copy(), 1.0
    for _ in range(iterations):
        k_next = simplex.project(z - step * (q @ z - atb))
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        z = k_next + (t - 1.0) / t_next * (k_next - k)
        k, t = k_next, t_next
    return k.reshape(start.shape)


def _clean(k: np.ndarray) -> np.ndarray:
    """Drop faint entries, re-centre on the centroid (integer shift), renormalise."""
    k = np.where(k >= PRUNE * k.max(), k, 0.0)
    rows, cols = np.indices(k.shape)
    total = k.sum()
    dy = int(np.rint((rows * k).sum() / total - k.shape[0] // 2))
    dx = int(np.rint((cols * k).sum() / total - k.shape[1] // 2))
    shifted = np.zeros_like(k)
    h, w = k.shape
    shifted[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)] = k[max(dy, 0):h - max(-dy, 0),
                                                                      max(dx, 0):w - max(-dx, 0)]
    return shifted / shifted.sum() if shifted.sum() > 0 else k / total


def _kernel_resize(k: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.clip(_resize(k, shape), 0.0, None)
    return out / out.sum() if out.sum() > 0 else np.full(shape, 1.0 / (shape[0] * shape[1]))


def _pyramid(kh: int, kw: int) -> list[tuple[float, int, int]]:
    """(scale, kh_s, kw_s) from coarse to fine: factor sqrt(2), down to a ~3 pixel kernel."""
    levels = []
    scale = 1.0
    while True:
        sh = max(1, 2 * int(round((kh * scale - 1) / 2)) + 1) if kh > 1 else 1
        sw = max(1, 2 * int(round((kw * scale - 1) / 2)) + 1) if kw > 1 else 1
        levels.append((scale, sh, sw))
        if max(sh, sw) <= 3:
            return levels[::-1]
        scale /= np.sqrt(2.0)


def _start_kernel(kh: int, kw: int) -> np.ndarray:
    r = np.arange(kh) - kh // 2
    c = np.arange(kw) - kw // 2
    k = np.exp(-0.5 * (r[:, None] ** 2 + c[None, :] ** 2))
    return k / k.sum()


def blind_deconvolve(blurred: Any, kernel_size: Any, *, rounds: int | None = None, iterations: int = 8,
                     initial_kernel: Any = None, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Estimate (image, kernel) from a blurred image alone.

    ``kernel_size``: the PSF's (kh, kw) (odd; an int for square), an upper bound on the
    blur's extent. ``iterations``: alternation rounds per pyramid level (``rounds`` is a
    synonym); each round runs 25 L-BFGS iterations on the image and one kernel solve.
    ``initial_kernel`` (full size) skips the pyramid and starts at full resolution.
    Returns the image (shape and dtype of ``blurred``) and the kernel ((kh, kw),
    float64, non-negative, sum 1, true-convolution convention like psf.py's).
    """
    where = "blind_deconvolve"
    y, out_dtype, scale = _as_image(blurred, where)
    kh, kw = pair(kernel_size, where, "kernel_size", minimum=1)
    if kh % 2 == 0 or kw % 2 == 0:
        raise fail(where, "odd kernel sides", f"kernel_size=({kh}, {kw})")
    if kh > y.shape[0] or kw > y.shape[1]:
        raise fail(where, "a kernel no larger than the image", f"kernel_size=({kh}, {kw}), blurred.shape == {y.shape}")
    rounds = check_positive_int(rounds if rounds is not None else iterations, where, "iterations")
    levels = _pyramid(kh, kw)
    if initial_kernel is not None:
        k = np.asarray(initial_kernel, dtype=np.float64)
        if k.shape != (kh, kw):
            raise fail(where, f"initial_kernel of shape {(kh, kw)}", f"shape {k.shape}")
        k = np.clip(k, 0, None)
        if not k.sum() > 0:
            raise fail(where, "initial_kernel with a positive sum", f"sum {k.sum():g}")
        k, levels = k / k.sum(), levels[-1:]
    else:
        k = _start_kernel(*levels[0][1:])
    sigma = estimate_noise(y)
    gray = y if y.ndim == 2 else y.mean(axis=2)
    bar = _bar(rounds * len(levels), progress)
    u = None
    for s, sh, sw in levels:
        size = (max(int(round(gray.shape[0] * s)), sh), max(int(round(gray.shape[1] * s)), sw))
        ys = _resize(gray, size)
        k = _kernel_resize(k, (sh, sw))
        ext = (size[0] + sh - 1, size[1] + sw - 1)
        u = np.pad(ys, ((sh // 2,) * 2, (sw // 2,) * 2), mode="symmetric") if u is None else _resize(u, ext)
        weight = START_WEIGHT * 2.0
        for _ in range(rounds):
            weight = max(weight / 2.0, END_WEIGHT)
            problem, image, _g = deconvolution_problem(ys[None, None], k, u[None, None],
                                                       [(weight, losses.TotalVariation(TV_EPS))], (0.0, 1.0),
                                                       np.float64)
            train.Trainer(problem).run(max_iterations=25)
            u = image.value.value[0, 0]
            ata, atb = _normal_equations(u, ys, (sh, sw), KEEP)
            k = _clean(_solve_simplex(ata, atb, k))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(scale=f"{s:.2f}", tv_weight=f"{weight:.2g}")
    if bar is not None:
        bar.close()
    # the estimated kernel's error acts like extra noise: regularise as for sigma >= 0.005
    restored = deconvolve(y, k, noise_sigma=max(sigma, FINAL_SIGMA_FLOOR))
    return _to_dtype(restored * scale, out_dtype), k


def _bar(total: int, progress: bool):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc="blind deconvolution")
