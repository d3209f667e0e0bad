"""Blind deconvolution: estimate the blur kernel from the image alone, then restore it non-blind.

The kernel comes from ``blind_estimate.estimate_kernel`` (coarse-to-fine alternation of an
L0 image step and a kernel fit on the simplex), in the user's frame and a smaller one (or,
without a frame, in each of ``AUTO_FRAMES``); the one that predicts held-out pixels best is
kept if it predicts them clearly better than no deblurring at all (``blind_select``). The
returned image comes from the ordinary non-blind ``deconvolve`` with that kernel, unless
``blind_select`` or ``blind_verdict``'s tests find the data cannot support a kernel or the
kernel does not explain the data: then the input comes back unchanged and the record says why.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..checks import as_float_array, check_positive_int, fail, fail_type, pair
from ..progress import progress_bar
from .blind_estimate import ROUNDS, check_initial_kernel, estimate_kernel, pyramid
from .deconvolve import as_image, deconvolve_in_memory
from .denoiser import denoise
from .blind_select import embed, frames, select_kernel
from .blind_verdict import (GHOSTS_MAX, RESIDUAL_MAX, STRUCTURE_HEDGE, STRUCTURE_MIN, ghost_ratio, residual_ratio,
                            structure)
from .intensity import to_dtype
from .noise import estimate_noise

__all__ = ["blind_deconvolve", "BlindResult"]


@dataclass
class BlindResult:
    """What ``blind_deconvolve(..., full=True)`` returns.

    ``accepted`` is False when the input was returned unchanged (``reason`` says why:
    the data could not support a kernel, or the restoration was not credibly better);
    ``kernel`` is then still the estimate that was judged. ``share`` below the caller's: the
    restoration was hedged (its ``ghosts`` ratio reached ``blind_verdict.GHOSTS_MAX``, or its
    ``structure`` was under ``blind_verdict.STRUCTURE_HEDGE``).
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
    share: float = 0.0  # the restoration's share of the returned image (at most the caller's ``share``; 0 when refused)
    ghosts: float = float("nan")  # the restoration's gradient correlation within the frame over the input's (ghost_ratio)


# kernel_size=None: the square frames estimated (each about 0.6 of the next: the estimator finds a blur best
# in a frame not much wider than it), the held-out test choosing among them
AUTO_FRAMES = (25, 15, 9)
HEDGE_SHARE = 0.5  # the restoration's share at most when hedged (ghosts >= GHOSTS_MAX, structure < STRUCTURE_HEDGE)
FINAL_SIGMA_FLOOR = 0.005  # the final non-blind pass regularises at least as for this noise sd
# the final non-blind pass's prior, named so that deconvolve's default may change without changing blind's
# results or speed (the benchmarks' true-kernel reference uses it too, so error ratios stay comparable)
FINAL_PRIOR = "nonlocal"


def blind_deconvolve(blurred: Any, kernel_size: Any = None, *, rounds: int | None = None,
                     iterations: int | None = None, initial_kernel: Any = None, share: float = 1.0,
                     progress: bool = False, full: bool = False) -> Any:
    """Estimate (image, kernel) from a blurred image alone.

    ``kernel_size``: the PSF's (kh, kw) (odd; an int for square), an upper bound on the
    blur's extent; None: chosen from the data (``auto_frames``: each of ``AUTO_FRAMES``,
    capped at a quarter of the image's shorter side, is estimated, the held-out test picks
    one, and the kernel comes back in it; with ``initial_kernel``, its shape).
    ``iterations``: alternation rounds per pyramid level (default ``ROUNDS``, 8;
    ``rounds`` is a synonym, give one or the other); each round is one L0 image step and
    one kernel solve. ``initial_kernel`` ((kh, kw), finite, non-negative, positive sum;
    rescaled to sum 1) skips the pyramid and starts at full resolution.
    Without ``initial_kernel``, kernels are estimated in the (kh, kw) frame and in a
    smaller one (``blind_select.frames``), and the one whose restoration predicts held-out
    pixels best is used (centred in the (kh, kw) frame).
    ``share`` in (0, 1]: the restoration's share of an accepted result, the rest the input
    denoised (``restore.denoise``); 0.5 is a hedge against a plausible but wrong kernel, which
    no test here detects: its restoration's errors and the input's are nearly uncorrelated, so
    their average is rarely worse than the input, at the price of about half of a right
    kernel's gain (docs/blind.md, *Third pass*). Whatever ``share`` asks, a restoration that
    keeps much of the input's gradient correlation within the kernel's frame (residual blur,
    echoes of edges: ``blind_verdict.ghost_ratio`` at least ``GHOSTS_MAX``) is returned at
    a share of at most ``HEDGE_SHARE`` (the record's ``share`` and ``ghosts`` say so), and so is
    one from an image with few edges above its noise (``structure`` under ``STRUCTURE_HEDGE``).
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
    automatic = kernel_size is None and initial_kernel is None
    if kernel_size is None:
        kernel_size = auto_frames(y.shape)[0] if automatic else _initial_frame(initial_kernel, where)
    kh, kw = pair(kernel_size, where, "kernel_size", minimum=1)
    if kh % 2 == 0 or kw % 2 == 0:
        raise fail(where, "odd kernel sides", f"kernel_size=({kh}, {kw})")
    if kh > y.shape[0] or kw > y.shape[1]:
        raise fail(where, "a kernel no larger than the image", f"kernel_size=({kh}, {kw}), blurred.shape == {y.shape}")
    rounds = _rounds(rounds, iterations, where)
    share = check_share(share, where)
    if initial_kernel is not None:
        initial_kernel = check_initial_kernel(initial_kernel, (kh, kw), where)
    sigma = estimate_noise(y)
    detail = structure(y, sigma)
    delta = embed(np.ones((1, 1)), (kh, kw))
    if detail < STRUCTURE_MIN:
        why = f"no structure to read a kernel from: gradient energy {detail:+.2f} of the noise's above it"
        return _finish(y * scale, out_dtype, delta, False, why, sigma, detail, float("nan"), started, full)
    candidates = [(kh, kw)] if initial_kernel is not None else auto_frames(y.shape) if automatic else frames((kh, kw))
    steps = rounds * (1 if initial_kernel is not None else sum(len(pyramid(*f)) for f in candidates))
    bar = progress_bar("progress=True", total=steps, desc="blind deconvolution") if progress else None
    try:
        kernels = [estimate_kernel(y, frame, rounds=rounds, initial_kernel=initial_kernel, progress=bar)
                   for frame in candidates]
    finally:  # closed after Ctrl-C too (a bar left open garbles the terminal's next lines)
        if bar is not None:
            bar.close()
    # the estimated kernel's error acts like extra noise: regularise (and judge) as for sigma >= 0.005
    # (a colour image is judged on its leading plane, whose noise select_kernel scales this floor to)
    floor = max(sigma, FINAL_SIGMA_FLOOR)
    choice = select_kernel(y, kernels, floor)
    if automatic:  # the kernel comes back in the frame the data chose
        kh, kw = candidates[choice.best]
    k = embed(kernels[choice.best], (kh, kw))
    scores = {"no blur": choice.delta_score, "minimal blur": choice.minimal_score} | {
        f"{f[0]}x{f[1]}": s for f, s in zip(candidates, choice.scores)}
    if choice.chosen is None:
        return _finish(y * scale, out_dtype, k, False, choice.reason, sigma, detail, float("nan"), started, full,
                       scores, choice.evidence)
    restored = deconvolve_in_memory(y, k, noise_sigma=floor, prior=FINAL_PRIOR)
    misfit = residual_ratio(restored, y, k, sigma)
    if misfit > RESIDUAL_MAX:
        why = f"the kernel does not explain the data: re-blurred residual {misfit:.2f} x the noise sd"
        return _finish(y * scale, out_dtype, k, False, why, sigma, detail, misfit, started, full, scores,
                       choice.evidence)
    # the rest is the input without its noise: the learned denoiser (restore.denoise) is cheap and
    # its output rarely worse than the input
    denoised = denoise(y)
    ghosts = ghost_ratio(restored, denoised, (kh, kw))
    if ghosts >= GHOSTS_MAX or detail < STRUCTURE_HEDGE:  # residual blur, echoes of edges, or few edges: hedge
        share = min(share, HEDGE_SHARE)
    image = share * restored + (1.0 - share) * denoised if share < 1 else restored
    return _finish(image * scale, out_dtype, k, True, "", sigma, detail, misfit, started, full, scores,
                   choice.evidence, share, ghosts)


def auto_frames(shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """``kernel_size=None``'s candidate frames for an image of ``shape`` (H, W[, C]): ``AUTO_FRAMES``, none
    wider than a quarter of the shorter side (odd, at least 3), largest first, without repeats."""
    cap = max(2 * ((min(shape[0], shape[1]) // 4 - 1) // 2) + 1, 3)
    sides = sorted({min(side, cap) for side in AUTO_FRAMES}, reverse=True)
    return [(side, side) for side in sides if side <= min(shape[0], shape[1])] or [(1, 1)]


def _initial_frame(initial_kernel: Any, where: str) -> tuple[int, int]:
    """The frame of a user's ``initial_kernel`` given without a ``kernel_size``: its (kh, kw) shape."""
    shape = as_float_array(initial_kernel, where, "initial_kernel").shape  # a ragged list: refused by name
    if len(shape) != 2:
        raise fail(where, "initial_kernel of shape (kh, kw)", f"initial_kernel.shape == {shape}")
    return shape


def check_share(share: Any, where: str) -> float:
    """The restoration's share of the returned image: a real number in (0, 1]."""
    if isinstance(share, bool) or not isinstance(share, (int, float, np.integer, np.floating)):
        raise fail_type(where, "share a real number in (0, 1]", f"{type(share).__name__} {share!r}")
    if not 0 < share <= 1:
        raise fail(where, "share in (0, 1]", f"share={share!r}")
    return float(share)


def _finish(image, dtype, k, accepted, reason, sigma, detail, misfit, started, full, scores=None,
            evidence=float("nan"), share=0.0, ghosts=float("nan")):
    """The image in the input's dtype (the input's own values when refused), alone or in a record."""
    out = to_dtype(image, dtype)
    if full:
        return BlindResult(out, k, accepted, reason, sigma, detail, misfit, time.perf_counter() - started,
                           scores or {}, evidence, share, ghosts)
    return out, k


def _rounds(rounds: Any, iterations: Any, where: str) -> int:
    """The rounds per level, from whichever of the two synonyms was given (reported under its own name)."""
    if rounds is not None and iterations is not None:
        raise fail(where, "rounds or iterations (synonyms), not both", f"rounds={rounds!r}, iterations={iterations!r}")
    if rounds is not None:
        return check_positive_int(rounds, where, "rounds")
    return check_positive_int(ROUNDS if iterations is None else iterations, where, "iterations")
