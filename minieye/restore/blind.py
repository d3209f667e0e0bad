"""Blind deconvolution: estimate the image and the blur kernel together, coarse to fine.

The joint MAP problem  min_{u,k} |k (*) u - y|^2 + prior(u)  has a trap (Levin et al.,
2009): with the usual sparse-gradient priors the *blurred* image itself, with a delta
kernel, scores better than the sharp one, so alternating minimisation drifts to "no blur".
What makes alternation work in practice (Cho & Lee 2009, Xu & Jia 2010, Pan et al.'s L0
priors) is that the image step is not asked for a good image, only for the right *edges*:

1. image step: a latent image with few, sharp edges, from the L0 gradient prior

       min_x |k (*) x - y|^2 + lam |grad x|_0

   solved by half-quadratic splitting (x and an auxiliary gradient field g, with a
   coupling weight beta doubled from 2 lam to 1e5: g is grad x hard-thresholded at
   |grad x|^2 >= lam / beta, and x is a closed-form FFT solve). Weak gradients and
   texture vanish, strong edges stay step-like: the "predicted edges" a blur can be read
   from (the L0 step replaces Cho & Lee's bilateral + shock filters). lam shrinks over the
   rounds, letting finer edges in once the kernel is roughly right. The FFT assumes a
   periodic image: y is reflect-padded by the kernel size and then given a smooth band
   joining its opposite sides, and the kernel fit leaves out y's outer kernel radius;
2. kernel step (blind_kernel.py): the least-squares fit of y's gradients by k applied to
   the latent image's strongest gradients, selected per orientation bin, solved on the
   simplex (k >= 0, sum k = 1), then pruned, despeckled and re-centred.

On an image pyramid (factor sqrt(2) per level, the coarsest with a ~3 pixel kernel):
a small blur is easy to find, and a good coarse kernel is the right start for the next
level. Between levels the kernel is upsampled bilinearly. Kernels are estimated in the
user's frame and a smaller one; the one that predicts held-out pixels best is kept if it
predicts them clearly better than no deblurring at all (blind_select.py), and a final
non-blind ``deconvolve`` with it gives the returned image, unless the verdict
(blind_verdict.py) refuses it. Colour images share one kernel, fitted to every channel.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..checks import as_float_array, check_positive_int, fail, pair
from .blind_kernel import clean, normal_equations, solve_simplex, start_kernel
from .deconvolve import as_image, deconvolve_in_memory
from .blind_select import embed, frames, select_kernel
from .blind_verdict import RESIDUAL_MAX, STRUCTURE_MIN, channel_planes, residual_ratio, structure
from .intensity import to_dtype
from .noise import estimate_noise

__all__ = ["blind_deconvolve", "BlindResult"]


@dataclass
class BlindResult:
    """What ``blind_deconvolve(..., full=True)`` returns.

    ``accepted`` is False when the input was returned unchanged (``reason`` says why:
    the data could not support a kernel, or the restoration was not credibly better);
    ``kernel`` is then still the estimate that was judged.
    """

    image: np.ndarray
    kernel: np.ndarray
    accepted: bool
    reason: str
    sigma: float  # the noise sd estimated from the blurred image, in working units
    structure: float  # gradient energy above the noise's, over the noise's (blind_verdict.structure)
    residual: float  # re-blurred residual rms over the noise sd (blind_verdict.residual_ratio); NaN if not restored
    seconds: float
    scores: dict = field(default_factory=dict)  # held-out error / sigma^2: 'no blur' and each frame tried ('13x13')
    evidence: float = float("nan")  # the best kernel's advantage over no blur, in standard errors (blind_select.py)

LAMBDA_START = 4e-3  # L0 weight of each level's first round (only the strongest edges survive)
LAMBDA_DECAY = 0.8  # ... multiplied by this every round
LAMBDA_END = 5e-4  # ... never below this while the kernel is being estimated
BETA_MAX = 1e5  # the half-quadratic splitting's last coupling weight
KEEP = 0.1  # share of the latent image's gradients the kernel step trusts (balanced over orientations)
FINAL_SIGMA_FLOOR = 0.005  # the final non-blind pass regularises at least as for this noise sd
ROUNDS = 8  # alternation rounds per pyramid level when neither rounds nor iterations is given


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


class _Latent:
    """The L0 image step on one pyramid level: y padded to a periodic domain, FFTs kept."""

    def __init__(self, y: np.ndarray, shape: tuple[int, int]):
        kh, kw = shape
        self.y, self.kshape = y, shape
        self.pad = (kh, kw)
        z = np.pad(y, ((kh, kh), (kw, kw)), mode="symmetric")
        # a band joining the last row (column) to the first: no jump where the FFT wraps around
        for axis, n in ((0, kh), (1, kw)):
            t = np.linspace(0.0, 1.0, n + 2)[1:-1]
            t = t[:, None] if axis == 0 else t[None, :]
            first = z[:1] if axis == 0 else z[:, :1]
            last = z[-1:] if axis == 0 else z[:, -1:]
            z = np.concatenate([z, last * (1 - t) + first * t], axis=axis)
        self.z = z
        self.fz = np.fft.rfft2(z)
        dh = np.zeros(z.shape)
        dh[0, 0], dh[0, -1] = -1.0, 1.0  # x[j + 1] - x[j] as a circular convolution
        dv = np.zeros(z.shape)
        dv[0, 0], dv[-1, 0] = -1.0, 1.0
        self.dd = np.abs(np.fft.rfft2(dh)) ** 2 + np.abs(np.fft.rfft2(dv)) ** 2

    def _otf(self, k: np.ndarray) -> np.ndarray:
        big = np.zeros(self.z.shape)
        big[:k.shape[0], :k.shape[1]] = k
        return np.fft.rfft2(np.roll(big, (-(k.shape[0] // 2), -(k.shape[1] // 2)), axis=(0, 1)))

    def solve(self, k: np.ndarray, lam: float) -> np.ndarray:
        """The L0-regularised latent image, cropped to y's shape plus the kernel's radius on each side."""
        fk = self._otf(k)
        kty = np.conj(fk) * self.fz
        kk = np.abs(fk) ** 2
        x = self.z
        beta = 2.0 * lam
        while beta < BETA_MAX:
            gh = np.roll(x, -1, axis=1) - x
            gv = np.roll(x, -1, axis=0) - x
            small = gh * gh + gv * gv < lam / beta
            gh[small] = 0.0
            gv[small] = 0.0
            div = (np.roll(gh, 1, axis=1) - gh) + (np.roll(gv, 1, axis=0) - gv)  # D^T g
            x = np.fft.irfft2((kty + beta * np.fft.rfft2(div)) / (kk + beta * self.dd), self.z.shape)
            beta *= 2.0
        (ph, pw), (kh, kw) = self.pad, self.kshape
        h, w = self.y.shape
        return x[ph - kh // 2:ph + h + kh // 2, pw - kw // 2:pw + w + kw // 2]


def blind_deconvolve(blurred: Any, kernel_size: Any, *, rounds: int | None = None, iterations: int | None = None,
                     initial_kernel: Any = None, progress: bool = False, full: bool = False) -> Any:
    """Estimate (image, kernel) from a blurred image alone.

    ``kernel_size``: the PSF's (kh, kw) (odd; an int for square), an upper bound on the
    blur's extent. ``iterations``: alternation rounds per pyramid level (default ``ROUNDS``, 8;
    ``rounds`` is a synonym, give one or the other); each round is one L0 image step and
    one kernel solve. ``initial_kernel`` ((kh, kw), finite, non-negative, positive sum;
    rescaled to sum 1) skips the pyramid and starts at full resolution.
    Without ``initial_kernel``, kernels are estimated in the (kh, kw) frame and in a
    smaller one (``blind_select.frames``), and the one whose restoration predicts held-out
    pixels best is used (centred in the (kh, kw) frame).
    Returns the image (shape and dtype of ``blurred``) and the kernel ((kh, kw),
    float64, non-negative, sum 1, true-convolution convention like psf.py's); with
    ``full=True`` a ``BlindResult`` record. When the data cannot support a kernel, no
    kernel predicts held-out pixels clearly better than no blur (blind_select.py), or
    the restoration does not explain the data (blind_verdict.py), the image is the input
    unchanged, and the record says so (``accepted=False`` and the ``reason``).
    Shapes: (H, W) -> ((H, W), (kh, kw)); (H, W, C) -> ((H, W, C), (kh, kw)).
    """
    where = "blind_deconvolve"
    started = time.perf_counter()
    y, out_dtype, scale = as_image(blurred, where)
    kh, kw = pair(kernel_size, where, "kernel_size", minimum=1)
    if kh % 2 == 0 or kw % 2 == 0:
        raise fail(where, "odd kernel sides", f"kernel_size=({kh}, {kw})")
    if kh > y.shape[0] or kw > y.shape[1]:
        raise fail(where, "a kernel no larger than the image", f"kernel_size=({kh}, {kw}), blurred.shape == {y.shape}")
    rounds = _rounds(rounds, iterations, where)
    start = None if initial_kernel is None else _initial_kernel(initial_kernel, (kh, kw), where)
    sigma = estimate_noise(y)
    detail = structure(y, sigma)
    delta = embed(np.ones((1, 1)), (kh, kw))
    if detail < STRUCTURE_MIN:
        why = f"no structure to read a kernel from: gradient energy {detail:+.2f} of the noise's above it"
        return _finish(y * scale, out_dtype, delta, False, why, sigma, detail, float("nan"), started, full)
    candidates = [(kh, kw)] if start is not None else frames((kh, kw))
    bar = _bar(rounds * (1 if start is not None else sum(len(_pyramid(*f)) for f in candidates)), progress)
    kernels = [_estimate_kernel(y, frame, sigma, rounds, start, bar) for frame in candidates]
    if bar is not None:
        bar.close()
    # the estimated kernel's error acts like extra noise: regularise (and judge) as for sigma >= 0.005
    floor = max(sigma, FINAL_SIGMA_FLOOR)
    choice = select_kernel(y, kernels, floor)
    k = embed(kernels[choice.best], (kh, kw))
    scores = {"no blur": choice.delta_score, "minimal blur": choice.minimal_score} | {
        f"{f[0]}x{f[1]}": s for f, s in zip(candidates, choice.scores)}
    if choice.chosen is None:
        return _finish(y * scale, out_dtype, k, False, choice.reason, sigma, detail, float("nan"), started, full,
                       scores, choice.evidence)
    restored = deconvolve_in_memory(y, k, noise_sigma=floor)
    misfit = residual_ratio(restored, y, k, sigma)
    if misfit > RESIDUAL_MAX:
        why = f"the kernel does not explain the data: re-blurred residual {misfit:.2f} x the noise sd"
        return _finish(y * scale, out_dtype, k, False, why, sigma, detail, misfit, started, full, scores,
                       choice.evidence)
    return _finish(restored * scale, out_dtype, k, True, "", sigma, detail, misfit, started, full, scores,
                   choice.evidence)


def _estimate_kernel(y: np.ndarray, shape: tuple[int, int], sigma: float, rounds: int, start: np.ndarray | None,
                     bar) -> np.ndarray:
    """The kernel estimator behind blind_deconvolve: a (kh, kw) sum-1 PSF from y (H, W) or (H, W, C).

    Coarse to fine over the pyramid, or at full size only from ``start`` when given.
    (This estimator does not use the noise sd ``sigma``; the one place to swap estimators.)
    """
    levels = _pyramid(*shape)
    if start is not None:
        return _estimate(channel_planes(y), start, levels[-1:], rounds, bar)
    return _estimate(channel_planes(y), start_kernel(*levels[0][1:]), levels, rounds, bar)


def _finish(image, dtype, k, accepted, reason, sigma, detail, misfit, started, full, scores=None,
            evidence=float("nan")):
    """The image in the input's dtype (the input's own values when refused), alone or in a record."""
    out = to_dtype(image, dtype)
    if full:
        return BlindResult(out, k, accepted, reason, sigma, detail, misfit, time.perf_counter() - started,
                           scores or {}, evidence)
    return out, k


def _estimate(channels: list[np.ndarray], k: np.ndarray, levels, rounds: int, bar) -> np.ndarray:
    """The kernel from (H, W) channels, coarse to fine from ``k`` (at the first level's size)."""
    for s, sh, sw in levels:
        k = _kernel_resize(k, (sh, sw))
        scaled = [_resize(c, (max(int(round(c.shape[0] * s)), sh), max(int(round(c.shape[1] * s)), sw)))
                  for c in channels]
        latents = [_Latent(c, (sh, sw)) for c in scaled]
        lam = LAMBDA_START
        for _ in range(rounds):
            # every channel's edges constrain the one kernel: their normal equations add up
            ata, atb = 0.0, 0.0
            for c, latent in zip(scaled, latents):
                a, b = normal_equations(latent.solve(k, lam), c, (sh, sw), KEEP, margin=max(sh, sw) // 2)
                ata, atb = ata + a, atb + b
            k = clean(solve_simplex(ata, atb, k))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(scale=f"{s:.2f}", l0_weight=f"{lam:.2g}")
            lam = max(lam * LAMBDA_DECAY, LAMBDA_END)
    return k


def _rounds(rounds: Any, iterations: Any, where: str) -> int:
    """The rounds per level, from whichever of the two synonyms was given (reported under its own name)."""
    if rounds is not None and iterations is not None:
        raise fail(where, "rounds or iterations (synonyms), not both", f"rounds={rounds!r}, iterations={iterations!r}")
    if rounds is not None:
        return check_positive_int(rounds, where, "rounds")
    return check_positive_int(ROUNDS if iterations is None else iterations, where, "iterations")


def _initial_kernel(kernel: Any, shape: tuple[int, int], where: str) -> np.ndarray:
    """A user's starting kernel as a float64 PSF summing to 1; refused unless finite, >= 0, of positive sum."""
    k = as_float_array(kernel, where, "initial_kernel", dtype=np.float64)
    if k.shape != shape:
        raise fail(where, f"initial_kernel of shape {shape}", f"initial_kernel.shape == {k.shape}")
    if not np.isfinite(k).all():
        raise fail(where, "finite initial_kernel values", "NaN or Inf in initial_kernel")
    if k.min() < 0:
        raise fail(where, "initial_kernel >= 0 everywhere (a PSF)", f"initial_kernel.min() == {k.min():g}")
    total = k.sum()
    if not total > 0:
        raise fail(where, "initial_kernel with a positive sum (a PSF)", f"initial_kernel.sum() == {total:g}")
    return k / total


def _bar(total: int, progress: bool):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc="blind deconvolution")
