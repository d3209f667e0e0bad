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

Defaults (no tuning): sigma = ``estimate_noise(blurred)`` (median absolute Haar
coefficient); regularizers = isotropic TotalVariation with eps = 1e-2 and weight
``tv_weight = 12 sigma^2`` (floor 1e-7: the MAP form for a Gaussian likelihood with a
Laplacian prior on gradients, mean-normalised like MSE) plus SecondOrderTV (eps 1e-2)
with weight ``tv_weight / 6``: the curvature term keeps smooth shading smooth instead
of TV's terraces, and lets TV's weight drop from 20 to 12 sigma^2 without letting
noise through (+0.19 dB mean on the benchmark's sigma 0.01 cases); all in working
units (values mapped to about [0, 1], intensity.py), with the box the data shows; start from a Wiener
estimate (reflect-padded FFT filter, balance 100 sigma^2 clipped to [1e-2, 0.1])
instead of the blurred image. The floor matters for noise-free input: a Wiener start
with balance 1e-4 rings at the PSF's spectral zeros and L-BFGS spent ~150 iterations
undoing it (camera, 5x5 box: 36 dB after 50 iterations instead of 23 dB).

Non-local stage (``prior='nonlocal'``, the default for images with noise sigma >= 4e-3):
a local prior sees only a pixel's right and lower neighbours, so at a texture it cannot
tell noise from detail. The first stage's result is a good enough guide to find, for
each pixel, the pixels whose 5x5 patches look like its own (``losses.nonlocal_graph``);
a second L-BFGS stage restarts from that result with ``NonLocalTV`` on the graph (weight
w / 12 per edge) + TV (0.3 w) + SecondOrderTV (0.1 w), w = the TV weight. +0.35 dB mean
on the benchmark's sigma 0.01 cases (docs/restoration.md), at the cost of a second stage.

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

from ..checks import as_float_array, check_ndim, check_positive_int, check_real, fail
from ..core import Layer
from ..network import Graph
from ..layers import Conv2D, Conv3D, Source
from ..losses import MSE, Loss, NonLocalTV, SecondOrderTV, TotalVariation, TotalVariation3D, nonlocal_graph
from .. import train
from .baselines import wiener
from .intensity import Intensity, check_channels_last, working_units
from .noise import estimate_noise
from .psf import as_conv_weight, normalize_kernel
from .volume import volume_noise, wiener_volume

__all__ = ["deconvolve_in_memory", "Deconvolution", "default_tv_weight", "deconvolution_problem", "PRIORS"]

TV_EPS = 1e-2  # smoothing of the default TV: converges in ~2x fewer iterations than 1e-3, same PSNR
SECOND_ORDER_SHARE = 1.0 / 6.0  # the default SecondOrderTV weight, as a fraction of the TV weight
PRIORS = ("nonlocal", "local", "learned")
# The non-local stage (prior='nonlocal'), tuned on the benchmark's sigma 0.01 crops
# (docs/restoration.md): weights as fractions of the TV weight w, the graph's h as a
# fraction of the intensity span. Each was flat to +-0.04 dB around these values.
NONLOCAL_SHARES = (1.0, 0.3, 0.1)  # NonLocalTV (per edge: / (K + 2)), TotalVariation, SecondOrderTV
NONLOCAL_H = 0.05
NONLOCAL_NEIGHBORS = 10
NONLOCAL_MIN_SIGMA = 4e-3  # below about one grey level of noise the local prior is enough: skip the stage
STAGE_ITERATIONS = (60, 80)  # default iteration caps of prior='nonlocal''s two stages (a single stage: 200)
# stage 1's stops after which stage 2 still runs; any other (timeout, non_finite, interrupted,
# monitor, ...) ends the whole run: the user or a limit asked to stop
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
    intensity: Intensity | None = None  # the map to working units: sigma and the weights are in working units

    @property
    def iterations(self) -> int:
        """L-BFGS iterations over all stages (of all tiles, for a tiled run)."""
        return sum(r.iterations for _, r in self.stages)


class _Objective(Loss):
    """fidelity(blurred prediction, observed) + sum_r w_r R_r(image).

    Routes the Graph's two outputs to their terms: the fidelity term sees the blurred
    prediction and the observation, the regularizers see the learned image.
    Shapes: prediction (N, 1, H, W), image (N, 1, H + kh - 1, W + kw - 1), observed like prediction -> ().
    """

    n_inputs = 3

    def __init__(self, fidelity: Layer, terms: Sequence[tuple[float, Layer]]):
        super().__init__()
        self.fidelity, self.terms_ = fidelity, list(terms)

    def forward(self, prediction: Any, image: Any, observed: Any):
        value, back_fid = self.fidelity.forward(prediction, observed)
        total = float(value)
        backs = []
        for weight, reg in self.terms_:
            v, b = reg.forward(image)
            total += weight * float(v)
            backs.append((weight, b))
        out = np.asarray(total, dtype=np.asarray(value).dtype)

        def backward(dy: Any, deltas: Any):
            s = self.scalar_dy(dy)
            d_pred = back_fid(s, deltas)[0]
            d_image = None
            for weight, b in backs:
                g = b(s * weight, deltas)
                d_image = g if d_image is None else d_image + g
            if d_image is None:
                d_image = np.zeros_like(image)
            return d_pred, d_image, None

        return out, backward


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


def deconvolution_problem(observed: np.ndarray, kernel: np.ndarray, init: np.ndarray,
                          terms: Sequence[tuple[float, Layer]], box: tuple[float | None, float | None] | None,
                          dtype: Any = np.float32) -> tuple[train.Problem, Source, Graph]:
    """The network and Problem of one deconvolution (exposed for experiments and blind.py).

    Shapes: observed (N, 1, H, W), kernel (kh, kw) PSF, init (N, 1, H + kh - 1, W + kw - 1);
    or, for volumes, observed (N, 1, D, H, W), kernel (kd, kh, kw), init (N, 1, D + kd - 1, ...).
    """
    image = Source(value=init, dtype=dtype, name="image")
    blur = (Conv3D if kernel.ndim == 3 else Conv2D)(1, 1, kernel.shape, bias=False, dtype=dtype, name="psf")
    blur.weight.value[...] = as_conv_weight(kernel, dtype)
    blur.freeze()
    g = Graph(name="deconvolution")
    u = g.add(image)
    g.output(g.add(blur, u), u)
    constraints = [] if box is None else [train.Box(image.value, box[0], box[1])]
    problem = train.Problem(g, _Objective(MSE(), terms), (), observed.astype(dtype),
                            params=[image.value], constraints=constraints)
    return problem, image, g


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


def _as_image(blurred: Any, where: str, volume: bool = False) -> tuple[np.ndarray, np.dtype, float]:
    """(blurred scaled by its integer dtype's maximum, the dtype, that scale): blind deconvolution's input rule."""
    x, dtype = _as_values(blurred, where, volume)
    scale = float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0
    return x / scale, dtype, scale


def deconvolve_in_memory(blurred: Any, kernel: Any, *, noise_sigma: float | None = None,
                         tv_weight: float | None = None, regularizers: Sequence[tuple[float, Layer]] | None = None,
                         box: Any = "auto", iterations: int | None = None, timeout: float | None = None,
                         init: str = "wiener", progress: bool = False, dtype: Any = np.float32, full: bool = False,
                         prior: str = "nonlocal", nonlocal_h: float | None = None, value_range: Any = None) -> Any:
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
        tv_weight: weight (>= 0; 0: no regularizer) of the default TotalVariation term;
            ``default_tv_weight(sigma)`` when None. The default also adds ``SecondOrderTV`` with weight ``tv_weight / 6``
            (for plain TV: ``regularizers=[(w, losses.TotalVariation(1e-2))]``).
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
        full: also return a ``Deconvolution`` record (sigma, weights, training results, time).
        prior: 'nonlocal' (default): after the local stage (TV + SecondOrderTV), a second
            stage restarts from its result with ``losses.NonLocalTV`` on the patch graph of
            that result, plus lighter TV and TV2 (``nonlocal_terms``); skipped for volumes,
            custom ``regularizers``, ``tv_weight=0``, and sigma < 4e-3 (estimated or given
            as ``noise_sigma``: nearly noise-free input, where it only costs time), and after
            stage 1 stopped on a timeout, Ctrl-C, a monitor or a non-finite loss.
            'local': the local stage alone. 'learned': the shipped denoiser network as the
            prior, in half-quadratic splitting (learned_prior.py; 2-D only; ``iterations``
            counts its steps, default 16; tv_weight, regularizers, init, timeout are unused).
        nonlocal_h: the graph's filtering parameter ``h``, in blurred's units; None: 0.05
            times the box's span (1 for a [0, 1] image) or the blurred image's range.
        value_range: (low, high) values that map to working units 0 and 1, overriding the
            rules of intensity.py (e.g. (0, 4095) for 12-bit data); the 'auto' box is then
            [low, high] when the data lies in it.

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
        raise fail(where, "prior 'nonlocal', 'local' or 'learned'", f"prior={prior!r}")
    if nonlocal_h is not None:
        nonlocal_h = check_real(nonlocal_h, where, "nonlocal_h", positive=True)
    if noise_sigma is None:
        sigma = volume_noise(y) if volume else estimate_noise(y)
    else:
        sigma = check_real(noise_sigma, where, "noise_sigma")
    if iterations is not None:
        iterations = check_positive_int(iterations, where, "iterations")
    weight = default_tv_weight(sigma) if tv_weight is None else check_real(tv_weight, where, "tv_weight")
    if prior == "learned":  # the trained denoiser inside half-quadratic splitting: learned_prior.py
        from .learned_prior import LAMBDA, deconvolve_learned_image
        out = _to_dtype(intensity.to_data(deconvolve_learned_image(y, k, sigma, box, iterations, where)), out_dtype)
        return (out, Deconvolution(out, sigma, [(LAMBDA, "learned denoiser, HQS")], None,
                                   time.perf_counter() - started, intensity=intensity)) if full else out
    terms = _regularizer_terms(regularizers, weight, where, volume)

    gray = volume or y.ndim == 2
    planes = y[None] if gray else np.moveaxis(y, -1, 0)  # (N, H, W) or (1, D, H, W): channels as a batch
    radii = [n // 2 for n in k.shape]
    if init == "wiener":
        # never below 1e-2, even noise-free: a sharper Wiener start rings at the kernel's
        # spectral zeros, and L-BFGS spent ~150 of its iterations undoing that ringing
        balance = float(np.clip(100.0 * sigma * sigma, 1e-2, 0.1))
        filt = wiener_volume if volume else wiener
        start = np.stack([filt(p, k, balance) for p in planes])
    elif init == "blurred":
        start = planes
    else:
        start = np.full_like(planes, 0.5)
    start = np.pad(start, [(0, 0)] + [(r, r) for r in radii], mode="symmetric")
    if box is not None:
        start = np.clip(start, -np.inf if box[0] is None else box[0], np.inf if box[1] is None else box[1])

    two_stage = prior == "nonlocal" and regularizers is None and not volume and sigma >= NONLOCAL_MIN_SIGMA \
        and weight > 0
    if two_stage and nonlocal_h is None:
        nonlocal_h = default_nonlocal_h(box, float(y.min()), float(y.max()))
    u, terms, stages = _run_stages(planes[:, None], k, start[:, None], terms, box, dtype, iterations, timeout,
                                   progress, nonlocal_h if two_stage else None, weight, started)
    result = stages[-1][1]
    u = u[:, 0].astype(np.float64)
    restored = u[(slice(None),) + tuple(slice(r, r + n) for r, n in zip(radii, spatial))]
    restored = restored[0] if gray else np.moveaxis(restored, 0, -1)
    out = _to_dtype(intensity.to_data(restored), out_dtype)
    if not full:
        return out
    labels = [(w, t.label()) for w, t in terms]
    return out, Deconvolution(out, sigma, labels, result, time.perf_counter() - started, stages=stages,
                              intensity=intensity)


def _run_stages(observed: np.ndarray, kernel: np.ndarray, start: np.ndarray, terms: list, box: Any, dtype: Any,
                iterations: int | None, timeout: float | None, progress: bool, nonlocal_h: float | None,
                tv_weight: float, started: float) -> tuple[np.ndarray, list, list]:
    """Stage 1 with ``terms``; then, when ``nonlocal_h`` is given, stage 2 on stage 1's patch graph.

    Stage 2 runs only after a normal stop of stage 1 (``CONTINUE_AFTER``: not after a
    timeout, Ctrl-C, a monitor's stop or a non-finite loss) and while time is left.
    Returns (the learned image, the last stage's terms, [(stage name, train.Result), ...]).
    """
    caps = STAGE_ITERATIONS if nonlocal_h is not None and iterations is None else (iterations or 200,) * 2
    u, result = _solve(observed, kernel, start, terms, box, dtype, caps[0], timeout, progress, "deconvolve")
    stages = [("local", result)]
    left = None if timeout is None else timeout - (time.perf_counter() - started)
    if nonlocal_h is None or result.stop_reason not in CONTINUE_AFTER or (left is not None and left <= 0):
        return u, terms, stages
    terms = nonlocal_terms(u, tv_weight, nonlocal_h)
    left = None if timeout is None else max(timeout - (time.perf_counter() - started), 1e-3)  # graph included
    u, result = _solve(observed, kernel, u, terms, box, dtype, caps[1], left, progress, "deconvolve (non-local)")
    stages.append(("nonlocal", result))
    return u, terms, stages


def default_nonlocal_h(box: tuple[float | None, float | None] | None, low: float, high: float) -> float:
    """The non-local graph's h: ``NONLOCAL_H`` times the box's span, or the blurred image's range when unbounded."""
    span = box[1] - box[0] if box is not None and None not in box else high - low
    return NONLOCAL_H * (span if span > 0 else 1.0)


def nonlocal_terms(guide: np.ndarray, tv_weight: float, h: float) -> list[tuple[float, Layer]]:
    """The second stage's regularizers: NonLocalTV on ``guide``'s patch graph, plus lighter TV and TV2.

    ``guide`` is the first stage's learned image (N, 1, H', W'); ``h`` the graph's
    filtering parameter in image units. NonLocalTV's weight is per edge, so it is
    divided by the K + 2 edges of a row to keep it comparable with TV's.
    """
    graph = nonlocal_graph(guide, h, neighbors=NONLOCAL_NEIGHBORS)
    share_nl, share_tv, share_tv2 = NONLOCAL_SHARES
    return [(tv_weight * share_nl / (NONLOCAL_NEIGHBORS + 2), NonLocalTV(graph, eps=TV_EPS)),
            (tv_weight * share_tv, TotalVariation(eps=TV_EPS)), (tv_weight * share_tv2, SecondOrderTV(eps=TV_EPS))]


def _solve(observed: np.ndarray, kernel: np.ndarray, start: np.ndarray, terms: Sequence[tuple[float, Layer]],
           box: Any, dtype: Any, iterations: int, timeout: float | None, progress: bool,
           label: str) -> tuple[np.ndarray, Any]:
    """One stage: L-BFGS + strong Wolfe from ``start``; returns the learned image and the train.Result."""
    problem, image, _ = deconvolution_problem(observed, kernel, start, terms, box, dtype)
    monitors = [train.ProgressBar(label)] if progress else []
    result = train.Trainer(problem, train.LBFGS(), train.ArmijoWolfe(), monitors).run(
        max_iterations=iterations, timeout=timeout)
    return image.value.value, result


def _to_dtype(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(x), info.min, info.max).astype(dtype)
    if dtype.kind == "f":
        return x.astype(dtype)
    return x.astype(np.float64)  # booleans
