"""Blind deconvolution: estimate the blur kernel from the image alone, then restore it non-blind.

The kernel comes from ``blind_estimate.estimate_kernel`` (coarse-to-fine alternation of an
L0 image step and a kernel fit on the simplex); the returned image from the ordinary
non-blind ``deconvolve`` with that kernel, unless ``blind_verdict``'s tests find the data
cannot support a kernel or the kernel does not explain the data: then the input comes
back unchanged and the record says why.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..checks import check_positive_int, fail, pair
from .blind_estimate import ROUNDS, check_initial_kernel, estimate_kernel, pyramid
from .deconvolve import as_image, deconvolve_in_memory
from .blind_verdict import RESIDUAL_MAX, STRUCTURE_MIN, residual_ratio, structure
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


FINAL_SIGMA_FLOOR = 0.005  # the final non-blind pass regularises at least as for this noise sd


def blind_deconvolve(blurred: Any, kernel_size: Any, *, rounds: int | None = None, iterations: int | None = None,
                     initial_kernel: Any = None, progress: bool = False, full: bool = False) -> Any:
    """Estimate (image, kernel) from a blurred image alone.

    ``kernel_size``: the PSF's (kh, kw) (odd; an int for square), an upper bound on the
    blur's extent. ``iterations``: alternation rounds per pyramid level (default ``ROUNDS``, 8;
    ``rounds`` is a synonym, give one or the other); each round is one L0 image step and
    one kernel solve. ``initial_kernel`` ((kh, kw), finite, non-negative, positive sum;
    rescaled to sum 1) skips the pyramid and starts at full resolution.
    Returns the image (shape and dtype of ``blurred``) and the kernel ((kh, kw),
    float64, non-negative, sum 1, true-convolution convention like psf.py's); with
    ``full=True`` a ``BlindResult`` record. When the data cannot support a kernel or the
    restoration is not credibly better (blind_verdict.py) the image is the input
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
    if initial_kernel is not None:
        initial_kernel = check_initial_kernel(initial_kernel, (kh, kw), where)
    sigma = estimate_noise(y)
    detail = structure(y, sigma)
    if detail < STRUCTURE_MIN:
        delta = np.zeros((kh, kw))
        delta[kh // 2, kw // 2] = 1.0
        why = f"no structure to read a kernel from: gradient energy {detail:+.2f} of the noise's above it"
        return _finish(y * scale, out_dtype, delta, False, why, sigma, detail, float("nan"), started, full)
    steps = rounds * (1 if initial_kernel is not None else len(pyramid(kh, kw)))
    bar = _bar(steps, progress)
    k = estimate_kernel(y, (kh, kw), rounds=rounds, initial_kernel=initial_kernel, progress=bar)
    if bar is not None:
        bar.close()
    # the estimated kernel's error acts like extra noise: regularise as for sigma >= 0.005
    restored = deconvolve_in_memory(y, k, noise_sigma=max(sigma, FINAL_SIGMA_FLOOR))
    misfit = residual_ratio(restored, y, k, sigma)
    if misfit > RESIDUAL_MAX:
        why = f"the kernel does not explain the data: re-blurred residual {misfit:.2f} x the noise sd"
        return _finish(y * scale, out_dtype, k, False, why, sigma, detail, misfit, started, full)
    return _finish(restored * scale, out_dtype, k, True, "", sigma, detail, misfit, started, full)


def _finish(image, dtype, k, accepted, reason, sigma, detail, misfit, started, full):
    """The image in the input's dtype (the input's own values when refused), alone or in a record."""
    out = to_dtype(image, dtype)
    if full:
        return BlindResult(out, k, accepted, reason, sigma, detail, misfit, time.perf_counter() - started)
    return out, k


def _rounds(rounds: Any, iterations: Any, where: str) -> int:
    """The rounds per level, from whichever of the two synonyms was given (reported under its own name)."""
    if rounds is not None and iterations is not None:
        raise fail(where, "rounds or iterations (synonyms), not both", f"rounds={rounds!r}, iterations={iterations!r}")
    if rounds is not None:
        return check_positive_int(rounds, where, "rounds")
    return check_positive_int(ROUNDS if iterations is None else iterations, where, "iterations")


def _bar(total: int, progress: bool):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc="blind deconvolution")
