"""Deconvolution with the trained denoiser as the prior: half-quadratic splitting (DPIR's recipe).

Splitting ``min_u |M (k (*) u - y)|^2 / (2 sigma^2) + R(u)`` with an auxiliary z and a
penalty that tightens, each iteration i = 1..n alternates

    u = argmin |M (k (*) u - y)|^2 + alpha_i |u - z|^2   (preconditioned conjugate gradients)
    z = denoise(u, s_i)                                  (the network, as the proximal map of R)

with noise levels s_i falling geometrically from START_SIGMA to max(sigma, FLOOR) and
``alpha_i = LAMBDA max(sigma, DATA_FLOOR)^2 / s_i^2`` (Zhang et al., "Plug-and-Play Image
Restoration with Deep Denoiser Prior", 2021). DATA_FLOOR keeps the first u-steps of a
nearly noise-free image from being a plain inverse filter whose amplified noise is far
beyond what the network was trained on.

Boundaries, as in deconvolve: the estimate is larger than the observation (by PAD =
the kernel's size + MIN_PAD on each side, a free ring started as a mirror of the data),
and M keeps only the observed pixels in the data term, so nothing assumes a periodic or
mirrored scene beyond the border. The FFT's periodicity then only wraps the free ring
onto itself. With M = 1 everywhere the u-step is one FFT division; that division is the
preconditioner, and CG_STEPS steps of conjugate gradients solve the masked step. The same
mask hides the held-out pixels of prior='auto' (regweight.py). docs/learned_prior.md has
the measurements behind each choice (tuning-corpus crops only).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ..checks import fail
from ..functional.conv import scratch_scope
from .baselines import transfer_function
from .denoiser import MAX_SIGMA, apply_denoiser, load_denoiser
from .intensity import clip_to_box
from .regweight import fill_hidden

__all__ = ["blend_learned", "data_step", "deconvolve_learned", "deconvolve_learned_image", "hqs", "learned_prediction",
           "seen_spectrum", "Interrupted", "restore_learned", "Schedule", "ITERATIONS", "LAMBDA", "WARM"]

ITERATIONS = 12       # HQS iterations (16 gave the same PSNR on the tuning set, docs/learned_prior.md)
START_SIGMA = 0.1     # the first denoising strength (working units): the network's training maximum
FLOOR = 2e-3          # the last strength is never below this, even for noise-free input
DATA_FLOOR = 2e-3     # sigma in the data weight alpha is never below this (see the module docstring)
LAMBDA = 0.18         # DPIR's trade-off between the data term and the prior (tuned: docs/learned_prior.md)
MIN_PAD = 16          # the free margin beyond the kernel's size
CG_STEPS = 3          # preconditioned conjugate-gradient steps per data step
ENSEMBLE_LAST = 0     # the last iterations whose denoising averages the network over ENSEMBLE_VIEWS views
ENSEMBLE_VIEWS = 8    # quarter turns x flips of the image (a self-ensemble: the prior becomes rotation-invariant)


class Schedule(NamedTuple):
    """An HQS schedule: ``iterations`` strengths falling geometrically from ``start_sigma`` to
    max(``end`` sigma, FLOOR), with alpha = ``lam`` max(sigma, DATA_FLOOR)^2 / strength^2."""

    iterations: int
    start_sigma: float
    lam: float
    end: float = 1.0


# prior='auto''s learned part starts from the hand-made restoration: its own schedule, tuned
# on the tuning set (docs/learned_prior.md): a lower start, another LAMBDA or end lost; 10
# iterations instead of 12 cost 0.02 dB and keep a 512x512 default under 10 s on one thread
WARM = Schedule(10, START_SIGMA, LAMBDA)  # the cold start and trade-off: only the count differs


def _mirror(interior: np.ndarray, pad: int) -> np.ndarray:
    return np.pad(interior, pad, mode="symmetric")


def _denoise_views(net: object, u: np.ndarray, s: float, views: int, buffers: dict) -> np.ndarray:
    """The network's denoising of ``u`` at strength ``s``, averaged over ``views`` quarter turns and flips
    (``buffers``: apply_denoiser's, kept over the iterations)."""
    total = np.zeros_like(u)
    for view in range(views):
        turns, flip = view % 4, view >= 4
        seen = np.rot90(u[:, ::-1] if flip else u, turns)
        back = np.rot90(apply_denoiser(net, np.ascontiguousarray(seen), s, buffers=buffers).astype(np.float64),
                        -turns)
        total += back[:, ::-1] if flip else back
    return total / views


def _inner(a: np.ndarray, b: np.ndarray, width: int) -> float:
    """``sum(irfft2(a) * irfft2(b))`` from the half spectra (Parseval): the columns past the
    first (and before the last, for an even ``width``) stand for two bins each."""
    total = 2.0 * np.vdot(a, b).real - np.vdot(a[:, 0], b[:, 0]).real
    if width % 2 == 0:
        total -= np.vdot(a[:, -1], b[:, -1]).real
    return total / (a.shape[0] * width)


def data_step(spectrum: np.ndarray, seen: np.ndarray, rhs: np.ndarray, mask: np.ndarray, otf: np.ndarray,
              alpha: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` of preconditioned conjugate gradients on ``(K^T M K + alpha) u = rhs`` from u.

    M is the 0/1 ``mask`` of the data pixels; the preconditioner ``(K^T K + alpha)^-1`` is
    exact where M = 1 everywhere (one FFT division), so a few steps suffice. Every vector is
    a half spectrum (``rfft2``), where K and the preconditioner are products: u comes as its
    ``spectrum`` and ``seen``, the spectrum of M K u, both updated along the steps and
    returned for the next call, so that a step costs two FFTs (K d, and the spectrum of
    M K d) and nothing is transformed again between steps or calls.
    Shapes: mask (H, W); spectrum, seen, rhs, otf (H, W // 2 + 1) -> (spectrum, seen).
    """
    shape, width = mask.shape, mask.shape[1]
    inverse = 1.0 / (np.abs(otf) ** 2 + alpha)
    residual = rhs - np.conj(otf) * seen - alpha * spectrum
    direction = inverse * residual
    rz = _inner(residual, direction, width)
    for _ in range(steps):
        blurred = np.fft.irfft2(otf * direction, s=shape)
        masked = mask * blurred
        curvature = np.vdot(blurred, masked) + alpha * _inner(direction, direction, width)
        if not curvature > 0:
            break
        step = rz / curvature
        seen_step = np.fft.rfft2(masked)
        spectrum, seen = spectrum + step * direction, seen + step * seen_step
        residual = residual - step * (np.conj(otf) * seen_step + alpha * direction)
        z = inverse * residual
        rz, previous = _inner(residual, z, width), rz
        direction = z + (rz / previous) * direction
    return spectrum, seen


def seen_spectrum(spectrum: np.ndarray, mask: np.ndarray, otf: np.ndarray) -> np.ndarray:
    """The half spectrum of ``M K u`` from u's. Shapes: spectrum, otf (H, W // 2 + 1), mask (H, W) -> as spectrum."""
    return np.fft.rfft2(mask * np.fft.irfft2(otf * spectrum, s=mask.shape))


@scratch_scope()  # the network's scratch (a few hundred MB at 640x640 tiles) is freed on return
def hqs(y: np.ndarray, kernel: np.ndarray, sigma: float, box: tuple | None = None, iterations: int | None = None,
        hidden: np.ndarray | None = None, start: np.ndarray | None = None,
        schedule: Schedule | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Half-quadratic splitting on one grey plane; returns (the estimate, its blur ``k (*) estimate``).

    The estimate covers the observation plus a ``pad`` ring (free, like deconvolve's larger
    scene), and the data term counts only the observed pixels, minus the ``hidden`` ones
    ((H, W) bool: held-out prediction, regweight.py), so their values never reach the estimate.
    It starts from ``start`` ((H, W), e.g. another prior's restoration; it must not have seen
    hidden pixels) or, by default, the data; mirrored onto the ring either way.
    ``schedule``: None, ITERATIONS strengths from START_SIGMA with LAMBDA (from the data);
    WARM for a good ``start``; ``iterations``, if given, overrides its count.
    Shapes: y (H, W), kernel (kh, kw) normalised PSF -> (H, W), (H, W) float64.
    """
    net = load_denoiser()
    plan = Schedule(ITERATIONS, START_SIGMA, LAMBDA) if schedule is None else schedule
    n = plan.iterations if iterations is None else iterations
    pad = max(kernel.shape) + MIN_PAD
    h, w = y.shape
    inside = (slice(pad, pad + h), slice(pad, pad + w))
    mask = np.zeros((h + 2 * pad, w + 2 * pad))
    mask[inside] = 1.0 if hidden is None else ~np.asarray(hidden, dtype=bool)
    data = np.zeros_like(mask)
    data[inside] = y
    otf = transfer_function(kernel, mask.shape)
    rhs = np.conj(otf) * np.fft.rfft2(mask * data)  # K^T M y, a half spectrum
    if start is None:
        start = y if hidden is None else fill_hidden(y, np.asarray(hidden, dtype=bool))
    z = _mirror(np.asarray(start, dtype=np.float64), pad)
    z_spectrum = np.fft.rfft2(z)
    spectrum, seen = z_spectrum, seen_spectrum(z_spectrum, mask, otf)  # u starts at z
    end, buffers = max(plan.end * sigma, FLOOR), {}
    try:
        for i, s in enumerate(np.geomspace(max(plan.start_sigma, end), end, n)):
            alpha = plan.lam * max(sigma, DATA_FLOOR) ** 2 / s ** 2
            if i:
                z_spectrum = np.fft.rfft2(z)
            spectrum, seen = data_step(spectrum, seen, rhs + alpha * z_spectrum, mask, otf, alpha, CG_STEPS)
            u = np.fft.irfft2(spectrum, s=mask.shape)
            z = clip_to_box(_denoise_views(net, u, min(float(s), MAX_SIGMA), ENSEMBLE_VIEWS if i >= n - ENSEMBLE_LAST
                                           else 1, buffers), box)
    except KeyboardInterrupt:
        raise Interrupted(z[inside].copy()) from None  # z: the last finished iteration's estimate (or the start)
    return z[inside], np.fft.irfft2(otf * np.fft.rfft2(z), s=mask.shape)[inside]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C inside the HQS loop; ``partial`` is the estimate it had reached (y's shape)."""

    def __init__(self, partial: np.ndarray):
        super().__init__()
        self.partial = partial


def deconvolve_learned(y: np.ndarray, kernel: np.ndarray, sigma: float, box: tuple | None = None,
                       iterations: int | None = None, start: np.ndarray | None = None,
                       schedule: Schedule | None = None) -> np.ndarray:
    """Restore one grey plane ``y`` (working units, about [0, 1]) blurred by ``kernel`` with noise ``sigma``,
    from ``start`` (another restoration of it; ``schedule``: hqs's) or the data.

    Shapes: y (H, W), kernel (kh, kw) normalised PSF, start (H, W) or None -> (H, W) float64.
    """
    return hqs(y, kernel, sigma, box, iterations, start=start, schedule=schedule)[0]


def learned_prediction(y: np.ndarray, hidden: np.ndarray, kernel: np.ndarray, sigma: float,
                       box: tuple | None) -> np.ndarray:
    """The learned prior's blurred estimate of planes ``y`` fitted without their ``hidden`` pixels.

    For regweight.choose_weight's held-out score. Shapes: y, hidden (N, 1, H, W) -> (N, 1, H, W) float64.
    """
    return np.stack([hqs(y[i, 0], kernel, sigma, box, hidden=hidden[i, 0])[1] for i in range(len(y))])[:, None]


def deconvolve_learned_image(y: np.ndarray, kernel: np.ndarray, sigma: float, box: tuple | None,
                             iterations: int | None, where: str, start: np.ndarray | None = None,
                             schedule: Schedule | None = None) -> np.ndarray:
    """deconvolve(prior='learned') in working units, from ``start`` (y's shape; ``schedule``: hqs's) or the data.

    Shapes: (H, W) or (H, W, C) -> the same, float64.
    """
    if kernel.ndim != 2:
        raise fail(where, "a 2-D kernel with prior='learned' (the denoiser is 2-D)", f"kernel.shape == {kernel.shape}",
                   "use prior='local' for volumes")
    if y.ndim == 2:
        return deconvolve_learned(y, kernel, sigma, box, iterations, start, schedule)
    planes = []
    for c in range(y.shape[-1]):
        try:
            planes.append(deconvolve_learned(y[..., c], kernel, sigma, box, iterations,
                                             None if start is None else start[..., c], schedule))
        except Interrupted as stop:  # the channels not reached keep the data
            raise Interrupted(np.stack(planes + [stop.partial] + [y[..., d] for d in range(c + 1, y.shape[-1])],
                                       axis=-1)) from None
    return np.stack(planes, axis=-1)


def restore_learned(y: np.ndarray, kernel: np.ndarray, sigma: float, box: tuple | None, iterations: int | None,
                    where: str) -> tuple[np.ndarray, bool]:
    """deconvolve(prior='learned'): (the restoration, False), or after Ctrl-C (the estimate reached, True).

    Like the trainer's stop on Ctrl-C, the work done is returned (with a RuntimeWarning), not lost.
    Shapes: (H, W) or (H, W, C) in working units -> the same, float64.
    """
    try:
        return deconvolve_learned_image(y, kernel, sigma, box, iterations, where), False
    except Interrupted as stop:
        warnings.warn(f"{where}: interrupted during the learned prior's iterations; returning the estimate reached "
                      "(info.interrupted)", RuntimeWarning, stacklevel=4)
        return stop.partial, True


def blend_learned(y: np.ndarray, kernel: np.ndarray, sigma: float, box: tuple | None, where: str,
                  handmade: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray | None]:
    """prior='auto''s blend ``share * learned + (1 - share) * handmade`` and its learned part.

    The learned part's HQS loop starts from the hand-made restoration (the WARM schedule).
    Ctrl-C while it runs keeps the finished hand-made restoration: (handmade, None) is
    returned, with a RuntimeWarning, rather than losing the work done. Shapes: y, handmade (H, W) or
    (H, W, C) in working units -> the same, float64.
    """
    try:
        learned = deconvolve_learned_image(y, kernel, sigma, box, None, where, start=handmade, schedule=WARM)
    except KeyboardInterrupt:
        warnings.warn(f"{where}: interrupted during the learned prior's part of prior='auto'; "
                      "returning the hand-made restoration (learned_share 0)", RuntimeWarning, stacklevel=3)
        return handmade, None
    return share * learned + (1.0 - share) * handmade, learned
