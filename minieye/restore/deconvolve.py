"""Non-blind deconvolution as a learning task (MindsEye's experiment, done properly).

The unknown sharp image is the parameter of a ``layers.Source``; a frozen ``Conv2D``
holding the flipped PSF blurs it (a cross-correlation with the flipped kernel is the
true convolution ``k (*) u``); the trainer minimises

    E(u) = mean((k (*) u - y)^2) + sum_r w_r R_r(u)        subject to  lo <= u <= hi

with L-BFGS and a strong-Wolfe line search, the box enforced by projection.

Boundaries: the learned image is *larger* than the blurred one by the kernel's
half-width on every side, and the convolution is 'valid', so each observed pixel is
explained by exactly the scene pixels that produced it, whatever the edge rule of the
blur (reflect, nearest, or a real camera's unseen surroundings). Nothing assumes a
periodic image, so nothing rings at the borders. The border ring is returned cropped.

Defaults (nothing to tune): sigma = ``estimate_noise(blurred, kernel=k)`` (the noise
power at the frequencies the blur removed, noise.py); regularizers = isotropic
TotalVariation (eps 1e-2) with weight w plus SecondOrderTV (eps 1e-2) with weight w / 6
(the curvature term keeps smooth shading smooth instead of TV's terraces); w chosen per
image by held-out prediction (regweight.py): candidates 12 sigma^2 times 1/4 .. 16 are
solved on a 128x128 centre proxy with a fifth of its pixels hidden from the fit, and the
one that predicts the hidden pixels best wins (``info.tv_weight``, ``info.choice``).
All in working units (values mapped to about [0, 1], intensity.py), with the box the
data shows; start from a Wiener estimate (reflect-padded FFT filter, balance
100 sigma^2 clipped to [1e-2, 0.1]) instead of the blurred image. The floor matters for
noise-free input: a Wiener start with balance 1e-4 rings at the PSF's spectral zeros and
L-BFGS spent ~150 iterations undoing it (camera, 5x5 box: 36 dB after 50 iterations
instead of 23 dB). A given ``tv_weight`` is used as it is; volumes use 12 sigma^2.

Non-local stage (``prior='nonlocal'``, where it helps): a local prior sees only a pixel's
right and lower neighbours, so at a texture it cannot tell noise from detail. The first
stage's result guides a second L-BFGS stage: ``NonLocalTV`` on the graph of pixels with
similar 5x5 patches (nonlocal_stage.py). It runs when, on the proxy, it predicts the hidden
pixels better than the local prior continued as long (``info.nonlocal_ran``); with a given
``tv_weight``, when sigma >= 4e-3.

The default prior, 'auto', blends that hand-made restoration with the learned prior's
(learned_prior.py: the shipped denoiser inside half-quadratic splitting), with the share
that predicts the proxy's hidden pixels best (regweight.py, docs/learned_prior.md).

Volumes: a (kd, kh, kw) kernel makes ``blurred`` a (D, H, W) grayscale volume (a 2-D
kernel keeps a (H, W, 3) array a colour image). The same problem one dimension up: the
learned scene (1, 1, D + kd - 1, H + kh - 1, W + kw - 1), a frozen 'valid' ``Conv3D``,
MSE + ``TotalVariation3D`` (eps 1e-2, weight 12 sigma^2; no second-order term), the same
box rule, sigma = the median over D of ``estimate_noise`` on each (H, W) slice, and a
3-D Wiener start (reflect-padded FFT, 3-D Laplacian regulariser).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..checks import as_float_array, check_ndim, check_optional_real, check_positive_int, check_real, fail
from ..core import Layer
from ..losses import SecondOrderTV, TotalVariation, TotalVariation3D
from .baselines import wiener
from .problem import deconvolution_problem, solve_stage  # noqa: F401 (deconvolution_problem: re-exported)
from .intensity import Intensity, check_channels_last, clip_to_box, to_dtype, working_units
from .noise import estimate_noise
from .nonlocal_stage import TV_EPS, default_nonlocal_h, nonlocal_terms  # noqa: F401 (re-exported)
from .regweight import AUTO_MIN_SIGMA, WeightChoice, choose_weight, proxy_window, smooth_terms
from .psf import normalize_kernel
from .volume import volume_noise, wiener_volume

__all__ = ["deconvolve_in_memory", "Deconvolution", "default_tv_weight", "deconvolution_problem", "PRIORS",
           "as_image"]

SECOND_ORDER_SHARE = 1.0 / 6.0  # the default SecondOrderTV weight, as a fraction of the TV weight
PRIORS = ("nonlocal", "local", "learned", "auto")
NONLOCAL_MIN_SIGMA = 4e-3  # without the automatic choice: below about one grey level of noise the local prior is enough
STAGE_ITERATIONS = (60, 80)  # default iteration caps of prior='nonlocal''s two stages (a single stage: 200)
# stage 1's stops after which stage 2 still runs; any other (timeout, non_finite, interrupted,
# monitor, ...) ends the whole run: the user or a limit asked to stop
BLEND_SKIP = 0.0  # prior 'auto': a share of the learned prior at most this (at least 1 - this) runs one prior only
CONTINUE_AFTER = ("max_iterations", "no_progress", "no_descent", "line_search_failed", "gradient_tolerance",
                  "target_loss")


def default_tv_weight(sigma: float) -> float:
    """The TV weight deconvolve uses for noise level ``sigma`` (in [0, 1] image units)."""
    return max(12.0 * sigma * sigma, 1e-7)


@dataclass
class Deconvolution:
    """What ``deconvolve(..., full=True)`` returns besides the image."""

    image: np.ndarray
    sigma: float
    weights: list[tuple[float, str]]  # the last stage's (weight, regularizer label) pairs
    result: Any  # train.Result of the last stage (loss, iterations, history, stop_reason); tiled: one per tile
    seconds: float
    reblurred: np.ndarray = field(repr=False, default=None)
    stages: list = field(repr=False, default_factory=list)  # (stage name, train.Result) in order; tiled: every tile's
    tv_weight: float | None = None  # the TV weight of the local stage (None: custom regularizers or family 'smooth')
    family: str = "tv"  # the prior: 'tv' (TV + TV2, then maybe non-local), 'smooth' (regweight.smooth_terms), 'custom',
    # or 'learned' (the denoiser, HQS: learned_prior.py); a blend keeps its hand-made part's family
    weight_source: str = "given"  # 'auto' (regweight.py), 'given' (tv_weight=), 'rule' (12 sigma^2: volumes), 'custom'
    nonlocal_ran: bool = False  # whether the non-local stage ran
    choice: WeightChoice | None = field(repr=False, default=None)  # the evidence of an 'auto' choice
    intensity: Intensity | None = None  # the map to working units: sigma and the weights are in working units
    learned_share: float = 0.0  # the learned prior's share of the image (prior 'auto' blends: regweight.blend_share;
    # 1 for family 'learned'; tiled: the mean over the tiles)
    parts: dict | None = field(repr=False, default=None)  # a blend's two restorations: 'handmade', 'learned'
    interrupted: bool = False  # Ctrl-C ended the run (the image is the work done until then); tiled: it ended the tiles

    @property
    def iterations(self) -> int:
        """L-BFGS iterations over all stages (of all tiles, for a tiled run)."""
        return sum(r.iterations for _, r in self.stages)


def _regularizer_terms(regularizers: Any, tv_weight: float, where: str,
                       volume: bool = False) -> list[tuple[float, Layer]]:
    if regularizers is None:
        if not tv_weight > 0:
            return []
        if volume:
            return [(tv_weight, TotalVariation3D(eps=TV_EPS))]
        return [(tv_weight, TotalVariation(eps=TV_EPS)), (tv_weight * SECOND_ORDER_SHARE, SecondOrderTV(eps=TV_EPS))]
    return regularizer_pairs(regularizers, where)


def regularizer_pairs(regularizers: Any, where: str, factor: float = 1.0) -> list[tuple[float, Layer]]:
    """A user's ``[(weight, loss layer), ...]`` validated, each weight times ``factor``."""
    terms = []
    for i, item in enumerate(regularizers):
        ok = isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], Layer) \
            and isinstance(item[0], (int, float, np.integer, np.floating))
        if not ok:
            raise fail(where, "regularizers as (weight, loss layer) pairs, e.g. [(1e-4, losses.TotalVariation())]",
                       f"item {i} is {item!r}")
        terms.append((float(item[0]) * factor, item[1]))
    return terms


def _as_values(blurred: Any, where: str, volume: bool = False) -> tuple[np.ndarray, np.dtype]:
    """``blurred`` as float64 in its own units, checked; and its dtype."""
    raw = np.asarray(blurred)
    x = as_float_array(raw, where, "blurred", dtype=np.float64)
    if volume:
        check_ndim(x, 3, where, "blurred", "a (D, H, W) grayscale volume, as the kernel is 3-D")
    else:
        check_ndim(x, (2, 3), where, "blurred", "(H, W) grayscale or (H, W, C) colour")
        check_channels_last(x.shape, where)
    if not np.isfinite(x).all():
        raise fail(where, "finite pixel values", "NaN or Inf in blurred")
    return x, raw.dtype


def as_image(blurred: Any, where: str, volume: bool = False) -> tuple[np.ndarray, np.dtype, float]:
    """(blurred scaled by its integer dtype's maximum, the dtype, that scale): blind deconvolution's input rule."""
    x, dtype = _as_values(blurred, where, volume)
    scale = float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0
    return x / scale, dtype, scale


def deconvolve_in_memory(blurred: Any, kernel: Any, *, noise_sigma: float | None = None,
                         tv_weight: float | None = None, regularizers: Sequence[tuple[float, Layer]] | None = None,
                         box: Any = "auto", iterations: int | None = None, timeout: float | None = None,
                         init: str = "wiener", progress: bool = False, dtype: Any = np.float32, full: bool = False,
                         prior: str = "auto", nonlocal_h: float | None = None, value_range: Any = None,
                         learned_share: float | None = None) -> Any:
    """Recover a sharp image from ``blurred = kernel (*) image + noise`` (all in memory).

    Args:
        blurred: (H, W) or (H, W, C) image (colour channels last), any real dtype, in its
            own units: values are mapped to working units about [0, 1] (uint8 and 0..255
            floats divided by 255, [0, 1] floats as they are, other ranges by the data's
            range: see intensity.py), restored, and mapped back.
        kernel: the PSF (kh, kw), applied as a true convolution; normalised to sum 1.
            A (kd, kh, kw) PSF (e.g. ``psf.gaussian3d``) makes ``blurred`` a (D, H, W)
            grayscale volume, regularised by ``TotalVariation3D`` (see the module docstring).
        noise_sigma: the noise standard deviation, in blurred's units; estimated when None.
        tv_weight: weight (>= 0; 0: no regularizer) of the default TotalVariation term
            (the default also adds ``SecondOrderTV`` with weight ``tv_weight / 6``; for plain
            TV: ``regularizers=[(w, losses.TotalVariation(1e-2))]``); None: chosen from the
            data by held-out prediction (regweight.py; ``default_tv_weight(sigma)`` for volumes
            and nearly noise-free input, sigma < 1e-3).
        regularizers: replaces the default: a list of ``(weight, loss layer)`` pairs,
            each applied to the learned image (N, 1, H', W') in working units, e.g. MindsEye's recipe
            ``[(1e-3, losses.Entropy()), (1.0, losses.NonNegativity())]`` with ``box=None``.
        box: 'auto' (what the data shows, intensity.py: [0, 1] for a [0, 1] image, [0, 255]
            for uint8 or 0..255 floats, [0, inf) for other non-negative data, none with
            negative values; all up to 0.02 + 4 sigma for noise), a (lower, upper) pair in
            blurred's units (None for unbounded), or None.
        iterations: L-BFGS iterations at most, per stage (None: 60 then 80 for the two
            non-local stages, 200 for a single stage; noisy inputs often stop earlier, when
            float32 can no longer resolve progress). ``timeout`` in seconds, for all stages.
        init: 'wiener' (default), 'blurred' or 'flat' (0.5 everywhere).
        progress: show a tqdm progress bar with the loss.
        dtype: float32 (default, faster) or float64 for the network.
        full: also return a ``Deconvolution`` record (sigma, weights, training results, time;
            ``tv_weight``, ``weight_source``, ``nonlocal_ran`` and the ``choice``'s evidence).
        prior: 'auto' (default): the hand-made prior 'nonlocal' and the learned prior
            'learned' blended, ``t learned + (1 - t) nonlocal``, with the share t in [0, 1]
            that predicts held-out pixels of the proxy best (regweight.py; t = 0 or 1 runs one
            prior only; ``info.learned_share``, ``info.parts``); where no automatic choice runs
            (a given tv_weight or regularizers, volumes, sigma < 2e-3) it is 'nonlocal'.
            ``iterations`` and ``timeout`` then limit the hand-made prior's L-BFGS only; when it
            stops early (timeout, Ctrl-C, a monitor: ``info.result.stop_reason``) the learned
            part does not run: the hand-made restoration is returned (``info.learned_share`` 0),
            as after Ctrl-C during the learned part (with a RuntimeWarning).
            'nonlocal': after the local stage (TV + SecondOrderTV), a second
            stage restarts from its result with ``losses.NonLocalTV`` on the patch graph of
            that result, plus lighter TV and TV2 (``nonlocal_terms``), where the held-out
            prediction says it helps (with a given ``tv_weight``: where sigma >= 4e-3);
            never for volumes, custom ``regularizers``, ``tv_weight=0``, or after stage 1
            stopped on a timeout, Ctrl-C, a monitor or a non-finite loss.
            'local': the local stage alone. 'learned': the shipped denoiser network as the
            prior, in half-quadratic splitting (learned_prior.py; 2-D only; ``iterations``
            counts its steps, default 12; tv_weight, regularizers, init, timeout are unused).
        nonlocal_h: the graph's filtering parameter ``h``, in blurred's units; None: 0.05
            times the box's span (1 for a [0, 1] image) or the blurred image's range.
        value_range: (low, high) values that map to working units 0 and 1, overriding the
            rules of intensity.py (e.g. (0, 4095) for 12-bit data); the 'auto' box is then
            [low, high] when the data lies in it.
        learned_share: the learned prior's share t of the blend, given, not chosen (deconvolve_tiled
            gives each tile the centre's): ``prior``'s restoration ('auto': 'nonlocal') blended with
            the learned one as under 'auto'; None: chosen by 'auto' where it chooses, else 0.

    Returns the restored image with the shape and dtype of ``blurred`` (or
    ``(image, Deconvolution)`` when ``full``; its ``sigma`` and ``weights`` are in working units,
    its ``intensity`` the map).
    Shapes: (H, W) -> (H, W); (H, W, C) -> (H, W, C); with a 3-D kernel (D, H, W) -> (D, H, W).
    """
    where = "deconvolve"
    started = time.perf_counter()
    k = normalize_kernel(kernel, where, ndim=(2, 3))
    volume = k.ndim == 3
    values, out_dtype = _as_values(blurred, where, volume)
    intensity, noise_sigma, box, nonlocal_h = working_units(values, out_dtype, noise_sigma, box, nonlocal_h,
                                                            value_range, where, volume)
    y = intensity.to_working(values)
    spatial = y.shape if volume else y.shape[:2]
    if any(a > b for a, b in zip(k.shape, spatial)):
        raise fail(where, f"a kernel no larger than the {'volume' if volume else 'image'}",
                   f"kernel.shape == {k.shape}, blurred.shape == {y.shape}")
    if init not in ("wiener", "blurred", "flat"):
        raise fail(where, "init 'wiener', 'blurred' or 'flat'", f"init={init!r}")
    if prior not in PRIORS:
        raise fail(where, "prior 'nonlocal', 'local', 'learned' or 'auto'", f"prior={prior!r}")
    # working_units checked a given noise_sigma and nonlocal_h
    sigma = noise_sigma if noise_sigma is not None else volume_noise(y) if volume else estimate_noise(y, kernel=k)
    iterations = None if iterations is None else check_positive_int(iterations, where, "iterations")
    learned_share = check_optional_real(learned_share, where, "learned_share")
    if learned_share is not None and (learned_share > 1 or learned_share > BLEND_SKIP and (volume or prior == "learned")):
        raise fail(where, "learned_share in [0, 1], with a hand-made prior and a 2-D kernel",
                   f"learned_share={learned_share}, prior={prior!r}, kernel.shape == {k.shape}")
    tv_weight = None if tv_weight is None else check_real(tv_weight, where, "tv_weight")
    if prior == "learned":  # the trained denoiser inside half-quadratic splitting: learned_prior.py
        return _learned(y, k, sigma, box, iterations, where, intensity, out_dtype, started, full, None)

    gray = volume or y.ndim == 2
    planes = y[None] if gray else np.moveaxis(y, -1, 0)  # (N, H, W) or (1, D, H, W): channels as a batch
    radii = [n // 2 for n in k.shape]
    start = initial_scene(planes, k, sigma, init, box)

    if nonlocal_h is None:
        nonlocal_h = default_nonlocal_h(box, float(y.min()), float(y.max()))
    choice, source = None, "custom" if regularizers is not None else "given" if tv_weight is not None else "rule"
    if regularizers is None and tv_weight is None and not volume and sigma >= AUTO_MIN_SIGMA:
        choice, source = auto_weight(planes, k, sigma, box, dtype, prior, nonlocal_h, init), "auto"
        if choice.learned_share >= 1.0 - BLEND_SKIP:  # (``iterations`` caps the hand-made prior's L-BFGS only)
            return _learned(y, k, sigma, box, None, where, intensity, out_dtype, started, full, choice)
        weight = choice.weight
    else:
        weight = default_tv_weight(sigma) if tv_weight is None else tv_weight
    smooth = choice is not None and choice.family == "smooth"
    terms = smooth_terms(weight) if smooth else _regularizer_terms(regularizers, weight, where, volume)
    two_stage = prior in ("nonlocal", "auto") and regularizers is None and not volume and weight > 0 and not smooth and \
        (choice.nonlocal_helps if choice is not None else sigma >= NONLOCAL_MIN_SIGMA)
    u, labels, stages = _run_stages(planes[:, None], k, start[:, None], terms, box, dtype, iterations, timeout,
                                   progress, nonlocal_h if two_stage else None, weight, started)
    result = stages[-1][1]
    u = u[:, 0].astype(np.float64)
    restored = u[(slice(None),) + tuple(slice(r, r + n) for r, n in zip(radii, spatial))]
    restored = restored[0] if gray else np.moveaxis(restored, 0, -1)
    share, parts = (0.0 if choice is None else choice.learned_share) if learned_share is None else learned_share, None
    if share > BLEND_SKIP and result.stop_reason in CONTINUE_AFTER:  # not after a timeout, Ctrl-C, ... (as non-local)
        from .learned_prior import blend_learned  # part learned, part hand-made (Ctrl-C there keeps the hand-made)
        handmade, (restored, learned) = restored, blend_learned(y, k, sigma, box, where, restored, share)
        if learned is not None:
            parts = {name: to_dtype(intensity.to_data(part), out_dtype)
                     for name, part in (("handmade", handmade), ("learned", learned))}
    out = to_dtype(intensity.to_data(restored), out_dtype)
    if not full:
        return out
    interrupted = result.stop_reason == "interrupted" or (share > BLEND_SKIP and parts is None and
                                                          result.stop_reason in CONTINUE_AFTER)
    return out, Deconvolution(out, sigma, labels, result, time.perf_counter() - started,
                              stages=stages, tv_weight=None if regularizers is not None or smooth else weight,
                              weight_source=source, intensity=intensity, nonlocal_ran=len(stages) > 1, choice=choice,
                              learned_share=share if parts else 0.0, parts=parts, interrupted=interrupted,
                              family="custom" if regularizers is not None else "smooth" if smooth else "tv")


def _learned(y: np.ndarray, k: np.ndarray, sigma: float, box: Any, iterations: int | None, where: str,
             intensity: Intensity, out_dtype: Any, started: float, full: bool, choice: WeightChoice | None) -> Any:
    """deconvolve with the learned prior (given, or chosen by prior 'auto'): the output, and the record when ``full``."""
    from .learned_prior import LAMBDA, restore_learned  # Ctrl-C there returns the estimate reached
    restored, interrupted = restore_learned(y, k, sigma, box, iterations, where)
    out = to_dtype(intensity.to_data(restored), out_dtype)
    return (out, Deconvolution(out, sigma, [(LAMBDA, "learned denoiser, HQS")], None, time.perf_counter() - started,
                               intensity=intensity, family="learned", choice=choice, learned_share=1.0,
                               weight_source="given" if choice is None else "auto", interrupted=interrupted)) \
        if full else out


def initial_scene(planes: np.ndarray, k: np.ndarray, sigma: float, init: str, box: Any) -> np.ndarray:
    """The solver's start for ``planes`` (N, H, W) (or (1, D, H, W)): (N, H + kh - 1, W + kw - 1), inside the box.

    'wiener': a reflect-padded Wiener estimate; its balance is never below 1e-2, even
    noise-free: a sharper start rings at the kernel's spectral zeros, and L-BFGS spent
    ~150 of its iterations undoing that ringing. 'blurred': the data; 'flat': 0.5.
    """
    if init == "wiener":
        balance = float(np.clip(100.0 * sigma * sigma, 1e-2, 0.1))
        filt = wiener_volume if k.ndim == 3 else wiener
        start = np.stack([filt(p, k, balance) for p in planes])
    else:
        start = planes if init == "blurred" else np.full_like(planes, 0.5)
    start = np.pad(start, [(0, 0)] + [(n // 2, n // 2) for n in k.shape], mode="symmetric")
    return clip_to_box(start, box)


def auto_weight(planes: np.ndarray, k: np.ndarray, sigma: float, box: Any, dtype: Any, prior: str,
                nonlocal_h: float, init: str = "wiener") -> WeightChoice:
    """The TV weight (and the non-local verdict for prior 'nonlocal' or 'auto', and the learned prior's for
    'auto' with a 2-D kernel) of ``planes`` (N, H, W): regweight.py."""
    from scipy.signal import fftconvolve  # late: keeps `import minieye` light

    def solve(observed: np.ndarray, start: np.ndarray, terms: list, fidelity: Layer, iterations: int):
        scene, _ = solve_stage(observed, k, start, terms, box, dtype, iterations, None, False, "", fidelity)
        prediction = np.stack([fftconvolve(p[0].astype(np.float64), k, mode="valid") for p in scene])[:, None]
        return scene, prediction

    def local_terms(w: float) -> list:
        return _regularizer_terms(None, w, "deconvolve")

    def two_stage_terms(guide: np.ndarray, w: float) -> list:
        return nonlocal_terms(guide, w, nonlocal_h)

    def learned(window: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        from .learned_prior import learned_prediction
        return learned_prediction(window, hidden, k, sigma, box)
    return choose_weight(planes, lambda window: initial_scene(window[:, 0], k, sigma, init, box)[:, None], sigma,
                         solve, local_terms, two_stage_terms if prior in ("nonlocal", "auto") else None,
                         learned if prior == "auto" and k.ndim == 2 else None)


def central_choice(read: Any, shape: Sequence[int], k: np.ndarray, sigma: float, box: Any,
                   settings: dict) -> tuple[float, str, list | None, float]:
    """(TV weight, prior, regularizers or None, the learned prior's blend share) for all of deconvolve_tiled's
    tiles, chosen on the untiled centre: a share in (0, 1) blends the learned prior's restoration of each tile
    with the hand-made prior's.

    ``read((r0, r1, c0, c1))`` returns that part of the image, (h, w) or (h, w, C), in working units.
    """
    # nearly noise-free: the fixed rule, as untiled; the learned prior needs no weight
    if sigma < AUTO_MIN_SIGMA or settings["prior"] == "learned":
        return default_tv_weight(sigma), settings["prior"], None, 0.0
    rows, cols = proxy_window(tuple(shape[:2]))
    window = read((rows.start, rows.stop, cols.start, cols.stop))
    planes = window[None] if window.ndim == 2 else np.moveaxis(window, -1, 0)
    prior = settings["prior"]
    choice = auto_weight(planes, k, sigma, box, settings["dtype"], prior, settings["nonlocal_h"], settings["init"])
    share = choice.learned_share if choice.learned_share > BLEND_SKIP else 0.0
    if share >= 1.0 - BLEND_SKIP:
        return choice.weight, "learned", None, 0.0
    if choice.family == "smooth":
        return choice.weight, "local", smooth_terms(choice.weight), share
    return choice.weight, "nonlocal" if prior in ("nonlocal", "auto") and choice.nonlocal_helps else "local", None, \
        share


def _run_stages(observed: np.ndarray, kernel: np.ndarray, start: np.ndarray, terms: list, box: Any, dtype: Any,
                iterations: int | None, timeout: float | None, progress: bool, nonlocal_h: float | None,
                tv_weight: float, started: float) -> tuple[np.ndarray, list, list]:
    """Stage 1 with ``terms``; then, when ``nonlocal_h`` is given, stage 2 on stage 1's patch graph.

    Stage 2 runs only after a normal stop of stage 1 (``CONTINUE_AFTER``: not after a timeout, Ctrl-C,
    a monitor's stop or a non-finite loss) and while time is left. Returns (the learned image, the last
    stage's (weight, label)s, [(stage name, train.Result), ...]): labels, so the graph is freed at once.
    """
    caps = STAGE_ITERATIONS if nonlocal_h is not None and iterations is None else (iterations or 200,) * 2
    u, result = solve_stage(observed, kernel, start, terms, box, dtype, caps[0], timeout, progress, "deconvolve")
    stages = [("local", result)]
    left = None if timeout is None else timeout - (time.perf_counter() - started)
    if nonlocal_h is None or result.stop_reason not in CONTINUE_AFTER or (left is not None and left <= 0):
        return u, [(w, t.label()) for w, t in terms], stages
    terms = nonlocal_terms(u, tv_weight, nonlocal_h)
    left = None if timeout is None else max(timeout - (time.perf_counter() - started), 1e-3)  # graph included
    u, result = solve_stage(observed, kernel, u, terms, box, dtype, caps[1], left, progress, "deconvolve (non-local)")
    stages.append(("nonlocal", result))
    return u, [(w, t.label()) for w, t in terms], stages
