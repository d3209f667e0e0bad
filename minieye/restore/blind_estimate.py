"""The blur kernel from a blurred image alone: coarse-to-fine alternation of an L0 image step and a kernel step.

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
   from. lam shrinks over the rounds, letting finer edges in once the kernel is roughly
   right. The FFT assumes a periodic image: y is reflect-padded by the kernel size and
   then given a smooth band joining its opposite sides, and the kernel fit leaves out y's
   outer kernel radius;
2. kernel step (blind_kernel.py): the least-squares fit of y's gradients by k applied to
   the latent image's strongest gradients, selected per orientation bin, with the exact
   normal equations of the windowed fit and a Tikhonov term standing for the latent
   image's doubt (its posterior variance, as in Levin et al. 2011's marginal-likelihood
   kernel update: it grows with the noise), solved on the simplex (k >= 0, sum k = 1),
   then pruned, despeckled and re-centred.

On an image pyramid (factor sqrt(2) per level, the coarsest with a ~3 pixel kernel): a
small blur is easy to find, and a good coarse kernel is the right start for the next
level. Between levels the kernel is upsampled bilinearly. Colour images share one kernel:
it is read from one plane with most of their edges (``blind_verdict.leading_plane``), and
in the finest level's last rounds every channel has its own latent image and their kernel
normal equations add up.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import scipy.fft as sfft

from ..checks import as_float_array, check_ndim, check_positive_int, fail, fail_type, pair
from .blind_kernel import clean, gradient_spectra, normal_equations, solve_simplex, start_kernel
from .blind_verdict import channel_planes, leading_plane
from .noise import estimate_noise

__all__ = ["estimate_kernel"]

LAMBDA_START = 4e-3  # L0 weight of each level's first round (only the strongest edges survive)
LAMBDA_DECAY = 0.8  # ... multiplied by this every round
LAMBDA_END = 5e-4  # ... never below this while the kernel is being estimated
BETA_MAX = 1e5  # the half-quadratic splitting's last coupling weight
KEEP = 0.1  # share of the latent image's gradients the kernel step trusts (balanced over orientations)
DOUBT = 1.0  # weight of the latent image's variance term in the kernel step
ROUNDS = 8  # alternation rounds per pyramid level by default
COLOUR_ROUNDS = 2  # colour: the finest level's last rounds fitted to every channel (the others: the leading plane)


def estimate_kernel(blurred: Any, kernel_size: Any, *, rounds: int = ROUNDS,
                    initial_kernel: Any = None, progress: Any = None, l0_start: float = LAMBDA_START) -> np.ndarray:
    """The blur kernel of ``blurred``, estimated from the image alone.

    ``blurred``: (H, W) or (H, W, C) real image in working units (about [0, 1]);
    ``kernel_size``: (kh, kw) odd (an int for square), an upper bound on the blur's extent;
    ``rounds``: alternation
    rounds per pyramid level; ``initial_kernel``: a (kh, kw) PSF to start from at full
    resolution, skipping the pyramid; ``progress``: a tqdm-like bar (``update``,
    ``set_postfix``) advanced once per round, or None; ``l0_start``: the L0 weight of each
    level's first round (positive; it decays by ``LAMBDA_DECAY`` a round to ``LAMBDA_END``).
    Returns the kernel: (kh, kw) float64, >= 0, summing to 1, centred on its centroid, in
    the true-convolution convention of psf.py.
    """
    where = "estimate_kernel"
    y = as_float_array(blurred, where, "blurred", dtype=np.float64)
    check_ndim(y, (2, 3), where, "blurred", "(H, W) or (H, W, C)")
    if not np.isfinite(y).all():
        raise fail(where, "finite pixel values", "NaN or Inf in blurred")
    kh, kw = pair(kernel_size, where, "kernel_size", minimum=1)
    if kh % 2 == 0 or kw % 2 == 0:
        raise fail(where, "odd kernel sides", f"kernel_size=({kh}, {kw})")
    if kh > y.shape[0] or kw > y.shape[1]:
        raise fail(where, "a kernel no larger than the image", f"kernel_size=({kh}, {kw}), blurred.shape == {y.shape}")
    rounds = check_positive_int(rounds, where, "rounds")
    if isinstance(l0_start, bool) or not isinstance(l0_start, (int, float, np.integer, np.floating)):
        raise fail_type(where, "l0_start a positive real number", f"{type(l0_start).__name__} {l0_start!r}")
    if not 0 < l0_start < np.inf:
        raise fail(where, "l0_start a positive real number", f"l0_start={l0_start!r}")
    levels = pyramid(kh, kw)
    if initial_kernel is not None:
        k, levels = check_initial_kernel(initial_kernel, (kh, kw), where), levels[-1:]
    else:
        k = start_kernel(*levels[0][1:])
    return _coarse_to_fine(channel_planes(y), k, levels, rounds, progress, float(l0_start))


def check_initial_kernel(kernel: Any, shape: tuple[int, int], where: str) -> np.ndarray:
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


def pyramid(kh: int, kw: int) -> list[tuple[float, int, int]]:
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


def resize(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
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
    out = np.clip(resize(k, shape), 0.0, None)
    return out / out.sum() if out.sum() > 0 else np.full(shape, 1.0 / (shape[0] * shape[1]))


class Latent:
    """The L0 image step on one pyramid level: y padded to a periodic domain, FFTs kept."""

    def __init__(self, y: np.ndarray, shape: tuple[int, int]):
        kh, kw = shape
        self.y, self.kshape = y, shape
        self.pad = (kh, kw)
        z = np.pad(y, ((kh, kh), (kw, kw)), mode="symmetric")
        # a band joining the last row (column) to the first: no jump where the FFT wraps around;
        # at least a kernel wide, and wide enough for a fast FFT length
        for axis, n in ((0, kh), (1, kw)):
            n = sfft.next_fast_len(z.shape[axis] + n, True) - z.shape[axis]
            t = np.linspace(0.0, 1.0, n + 2)[1:-1]
            t = t[:, None] if axis == 0 else t[None, :]
            first = z[:1] if axis == 0 else z[:, :1]
            last = z[-1:] if axis == 0 else z[:, -1:]
            z = np.concatenate([z, last * (1 - t) + first * t], axis=axis)
        self.z = z
        self.fz = sfft.rfft2(z)
        self.dd = _difference_spectrum(z.shape)

    def _otf(self, k: np.ndarray) -> np.ndarray:
        big = np.zeros(self.z.shape)
        big[:k.shape[0], :k.shape[1]] = k
        return sfft.rfft2(np.roll(big, (-(k.shape[0] // 2), -(k.shape[1] // 2)), axis=(0, 1)))

    def solve(self, k: np.ndarray, lam: float) -> np.ndarray:
        """The L0-regularised latent image, cropped to y's shape plus the kernel's radius on each side."""
        fk = self._otf(k)
        kty = np.conj(fk) * self.fz
        kk = np.abs(fk) ** 2
        x = self.z
        beta = 2.0 * lam
        gh, gv, div, energy = np.empty(x.shape), np.empty(x.shape), np.empty(x.shape), np.empty(x.shape)
        small = np.empty(x.shape, dtype=bool)
        while beta < BETA_MAX:
            _forward_differences(x, gh, gv)
            np.multiply(gh, gh, out=energy)
            energy += gv * gv
            np.less(energy, lam / beta, out=small)
            np.putmask(gh, small, 0.0)
            np.putmask(gv, small, 0.0)
            _transposed_differences(gh, gv, div)  # D^T g
            # (kty + beta F(div)) / (kk + beta dd): a complex over a real number is each part times the real
            # one's reciprocal, as NumPy's complex division computes it, so in place and bitwise the same
            spectrum = np.multiply(sfft.rfft2(div), beta)
            spectrum += kty
            scale = kk + beta * self.dd
            spectrum *= np.divide(1.0, scale, out=scale)
            x = sfft.irfft2(spectrum, self.z.shape, overwrite_x=True)
            beta *= 2.0
        (ph, pw), (kh, kw) = self.pad, self.kshape
        h, w = self.y.shape
        return x[ph - kh // 2:ph + h + kh // 2, pw - kw // 2:pw + w + kw // 2]


@functools.lru_cache(maxsize=8)
def _difference_spectrum(shape: tuple[int, int]) -> np.ndarray:
    """|F(D_h)|^2 + |F(D_v)|^2 of the circular forward differences on a ``shape`` grid (read-only, shared)."""
    dh = np.zeros(shape)
    dh[0, 0], dh[0, -1] = -1.0, 1.0  # x[j + 1] - x[j] as a circular convolution
    dv = np.zeros(shape)
    dv[0, 0], dv[-1, 0] = -1.0, 1.0
    dd = np.abs(sfft.rfft2(dh)) ** 2 + np.abs(sfft.rfft2(dv)) ** 2
    dd.flags.writeable = False
    return dd


def _forward_differences(x: np.ndarray, gh: np.ndarray, gv: np.ndarray) -> None:
    """Circular forward differences of x into gh (x[i, j + 1] - x[i, j]) and gv (x[i + 1, j] - x[i, j])."""
    np.subtract(x[:, 1:], x[:, :-1], out=gh[:, :-1])
    np.subtract(x[:, :1], x[:, -1:], out=gh[:, -1:])
    np.subtract(x[1:], x[:-1], out=gv[:-1])
    np.subtract(x[:1], x[-1:], out=gv[-1:])


def _transposed_differences(gh: np.ndarray, gv: np.ndarray, out: np.ndarray) -> None:
    """The transpose of ``_forward_differences`` applied to (gh, gv): (gh[j - 1] - gh[j]) + (gv[i - 1] - gv[i])."""
    np.subtract(gh[:, -1:], gh[:, :1], out=out[:, :1])
    np.subtract(gh[:, :-1], gh[:, 1:], out=out[:, 1:])
    vertical = np.empty_like(out)
    np.subtract(gv[-1:], gv[:1], out=vertical[:1])
    np.subtract(gv[:-1], gv[1:], out=vertical[1:])
    out += vertical


def _level_steps(planes: list[np.ndarray], scale: float, size: tuple[int, int]) -> list[tuple]:
    """Each (H, W) plane scaled by ``scale`` (at least the kernel's ``size``), with its image step
    and its doubt weight: ``[(scaled plane, Latent, doubt, its gradient spectra)]``."""
    scaled = [resize(c, (max(int(round(c.shape[0] * scale)), size[0]), max(int(round(c.shape[1] * scale)), size[1])))
              for c in planes]
    # the doubt of a latent gradient deblurred through k is sigma^2 / |k|^2 (Levin et al. 2011):
    # over the selected gradients, a Tikhonov term on k that grows with the level's noise
    margin = max(size) // 2
    return [(c, Latent(c, size), DOUBT * KEEP * c.size * estimate_noise(c) ** 2, gradient_spectra(c, size, margin))
            for c in scaled]


def _coarse_to_fine(channels: list[np.ndarray], k: np.ndarray, levels, rounds: int, bar,
                    l0_start: float = LAMBDA_START) -> np.ndarray:
    """The kernel from (H, W) channels, coarse to fine from ``k`` (at the first level's size).

    Colour: the rounds read the kernel from one plane (``leading_plane``: the channels'
    combination with the most edge energy), except the last ``COLOUR_ROUNDS`` of the finest
    level, which fit it to every channel's edges: a third of the cost of every channel
    everywhere.
    """
    plane = [leading_plane(np.stack(channels, axis=-1))] if len(channels) > 1 else channels
    for level, (s, sh, sw) in enumerate(levels):
        k = _kernel_resize(k, (sh, sw))
        size = (sh, sw)
        last = level == len(levels) - 1
        steps: dict[str, list] = {}  # "plane" and (colour, finest level) "channels", made when first used
        for r in range(rounds):
            lam = max(l0_start * LAMBDA_DECAY ** r, LAMBDA_END)
            which = "channels" if len(channels) > 1 and last and r >= rounds - COLOUR_ROUNDS else "plane"
            if which not in steps:
                steps[which] = _level_steps(channels if which == "channels" else plane, s, size)
            # every channel's edges constrain the one kernel: their normal equations add up
            ata, atb = 0.0, 0.0
            for c, latent, doubt, spectra in steps[which]:
                a, b = normal_equations(latent.solve(k, lam), c, size, KEEP, max(sh, sw) // 2, spectra)
                ata, atb = ata + a, atb + b
                ata.flat[::b.size + 1] += doubt / float(np.sum(k * k))  # on the diagonal: a Tikhonov term
            k = clean(solve_simplex(ata, atb, k))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(scale=f"{s:.2f}", l0_weight=f"{lam:.2g}")
    return k
