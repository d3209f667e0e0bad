"""Which estimated kernel, if any, the blurred data supports: held-out prediction.

The test ``deconvolve`` already trusts to choose its weight (regweight.py): on the
centred proxy window, a random fifth of the pixels is hidden from the fit; the image is
restored from the rest with a candidate kernel (over regweight's ladder of weights and
both prior families), and the re-blurred estimate predicts the hidden pixels. The noise
on a hidden pixel is independent of the fit, so the error there is sigma^2 plus how
badly the candidate model explains the data: a lower error is evidence for the kernel.

Candidates are the kernels estimated in several frames (``frames``: the user's bound
and a smaller one: the estimator's kernels come out too wide, and a tighter frame
often holds a better one). Their opponent is "no real blur": the better predictor of a
centred delta (no deblurring) and a minimal Gaussian blur (sigma ``MINIMAL_BLUR``).
The delta alone is a handicapped opponent on sharp, textured images: with it a hidden
pixel is predicted by the prior alone (TV inpainting), while any kernel with some
spread predicts it from its observed neighbours, so a near-delta estimate on an
unblurred photo beat the delta by 7 standard errors and lost 11.7 dB; the minimal blur
has that interpolating power and no real deblurring in it. The best kernel is kept
only when it predicts *clearly* better than the opponent: the paired per-pixel
difference of squared errors (opponent minus kernel) must have a mean at least
``EVIDENCE_MIN`` standard errors above zero. Otherwise ``blind_deconvolve`` returns the
input and says so.

What this cannot see: the held-out error depends on the kernel's power spectrum |K|^2
(how neighbouring blurred pixels correlate), not on its phase, so a kernel with the
right extent but the wrong shape along it can pass (docs/blind.md has the measured cases).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blind_verdict import channel_planes, leading_plane
from ..losses import SecondOrderTV, TotalVariation
from .deconvolve import SECOND_ORDER_SHARE, TV_EPS, initial_scene
from .intensity import working_units
from .noise import estimate_noise
from .problem import solve_stage
from .psf import gaussian
from .regweight import choose_weight, hidden_pixels, proxy_window

EVIDENCE_MIN = 2.0  # standard errors by which a kernel must beat "no blur" on the hidden pixels
MINIMAL_BLUR = 0.5  # sigma (px) of the Gaussian that stands for "no real blur" beside the delta
SMALLER_FRAME = 0.65  # the second candidate frame, as a share of the user's bound ...
SMALLEST_FRAME = 5  # ... when that gives at least this many pixels a side (odd)


@dataclass
class Selection:
    """What ``select_kernel`` decided: the best candidate, whether it is kept, and the evidence."""

    best: int  # the index of the candidate kernel that predicts the hidden pixels best
    chosen: int | None  # ``best`` when it clearly beats no blur, else None
    scores: list[float]  # held-out error / sigma^2 of each candidate kernel
    delta_score: float  # ... and of the centred delta (no deblurring)
    minimal_score: float  # ... and of the minimal blur (a Gaussian of sigma ``MINIMAL_BLUR``)
    evidence: float  # the best kernel's paired advantage over the better of those two, in standard errors
    reason: str = ""


def frames(shape: tuple[int, int]) -> list[tuple[int, int]]:
    """The candidate kernel frames for a user's bound ``shape``: itself, then ``SMALLER_FRAME`` of it (odd sides)."""
    smaller = tuple(max(2 * int(round(SMALLER_FRAME * n / 2)) + 1, min(n, SMALLEST_FRAME)) for n in shape)
    return [shape] if smaller == shape or max(shape) < SMALLEST_FRAME + 2 else [shape, smaller]


def embed(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``kernel`` centred in a zero frame of ``shape`` (each side at least the kernel's, same parity)."""
    out = np.zeros(shape)
    top, left = (shape[0] - kernel.shape[0]) // 2, (shape[1] - kernel.shape[1]) // 2
    out[top:top + kernel.shape[0], left:left + kernel.shape[1]] = kernel
    return out


def heldout_errors(y: np.ndarray, kernel: np.ndarray, sigma: float) -> np.ndarray:
    """Squared errors / sigma^2 on the hidden pixels of the best-predicting weight for ``kernel``.

    ``y`` (H, W) or (H, W, C) in [0, 1] units; ``sigma`` its noise sd. The hidden pixels
    and the proxy window are regweight's (fixed seed), the same for every kernel, so two
    kernels' errors can be compared pixel by pixel. Returns a 1-D array.
    """
    from scipy.signal import fftconvolve  # late: keeps `import minieye` light
    intensity, sigma_w, box, _ = working_units(y, np.dtype(np.float64), sigma, "auto", None, None,
                                               "blind_deconvolve")
    planes = np.stack(channel_planes(intensity.to_working(y)))
    rows, cols = proxy_window(planes.shape[1:])
    target = planes[:, rows, cols][:, None]
    hidden = hidden_pixels(target.shape)  # the mask choose_weight hides
    predictions = []

    def solve(observed, start, terms, fidelity, iterations):
        scene, _ = solve_stage(observed, kernel, start, terms, box, np.float32, iterations, None, False, "", fidelity)
        prediction = np.stack([fftconvolve(p[0].astype(np.float64), kernel, mode="valid") for p in scene])[:, None]
        predictions.append(prediction)
        return scene, prediction

    def start(window: np.ndarray) -> np.ndarray:  # window: its hidden pixels already filled (fill_hidden)
        return initial_scene(window[:, 0], kernel, sigma_w, "wiener", box)[:, None]

    choose_weight(planes, start, sigma_w, solve, local_terms)
    errors = [(p - target)[hidden] ** 2 / sigma_w ** 2 for p in predictions]
    return min(errors, key=np.mean)


def local_terms(weight: float) -> list:
    """deconvolve's local prior at TV weight ``weight``: TV + SecondOrderTV (weight / 6)."""
    return [(weight, TotalVariation(eps=TV_EPS)), (weight * SECOND_ORDER_SHARE, SecondOrderTV(eps=TV_EPS))]


def paired_evidence(reference: np.ndarray, candidate: np.ndarray) -> float:
    """How many standard errors the candidate's mean squared error lies below the reference's (paired)."""
    d = reference - candidate
    spread = d.std() / np.sqrt(d.size)
    return float(d.mean() / spread) if spread > 0 else 0.0


def select_kernel(y: np.ndarray, kernels: list[np.ndarray], sigma: float) -> Selection:
    """The candidate kernel that predicts held-out pixels best, if clearly better than no blur.

    ``y`` (H, W) or (H, W, C) in [0, 1] units; ``kernels`` sum-1 PSFs of any odd frames.
    A colour image is judged on one plane (``blind_verdict.leading_plane``: one kernel
    blurs every channel, and each scoring would cost a restoration per channel), with
    ``sigma`` scaled by the plane's measured noise over the channels' (where both are above 0).
    """
    if y.ndim == 3:
        plane = leading_plane(y)
        plane_noise, channels_noise = estimate_noise(plane), estimate_noise(y)
        if plane_noise > 0 and channels_noise > 0:  # noise-free (a measured 0): keep the caller's floor
            sigma *= plane_noise / channels_noise
        y = plane
    delta = heldout_errors(y, np.ones((1, 1)), sigma)
    minimal = heldout_errors(y, gaussian(MINIMAL_BLUR), sigma)
    reference = min(delta, minimal, key=np.mean)
    errors = [heldout_errors(y, k, sigma) for k in kernels]
    scores = [float(e.mean()) for e in errors]
    best = int(np.argmin(scores))
    evidence = paired_evidence(reference, errors[best])
    selection = Selection(best, best, scores, float(delta.mean()), float(minimal.mean()), evidence)
    if evidence < EVIDENCE_MIN:
        selection.chosen = None
        selection.reason = (f"no kernel predicts held-out pixels clearly better than no blur: the best one's "
                            f"advantage is {evidence:+.1f} standard errors, {EVIDENCE_MIN:g} needed")
    return selection
