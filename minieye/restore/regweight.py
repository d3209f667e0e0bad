"""deconvolve's prior and weight, and whether its non-local stage runs, chosen from the data alone.

Held-out prediction (pixel cross-validation): a random ``HOLDOUT`` share of the observed
pixels of a proxy window (the centre ``PROXY_SIDE`` x ``PROXY_SIDE`` of the image) is
hidden from the fidelity term (``HeldOutMSE``); for each candidate weight the local
problem is solved on the other pixels, and the candidate whose re-blurred estimate
predicts the hidden pixels best wins. The noise on a hidden pixel is independent of the
estimate, so the held-out error is sigma^2 plus the prediction error ||k (*) (u - x)||^2
on those pixels: an unbiased estimate of the prediction risk of whatever the solver
reached, with no derivative of the solver (unlike SURE). (When sigma is near 0 it scores
mostly how far the short proxy solves are from convergence: ``AUTO_MIN_SIGMA``.)

The TV candidates are ``CANDIDATES`` times the fixed rule 12 sigma^2 (a coarse pass,
then the two half-way points around the best), each solved from the Wiener start; a
quadratic curvature prior (``smooth_terms``) is scored at ``SMOOTH_CANDIDATES`` times
sigma^2 (while the top rung is best, x4 rungs above it up to ``EXTEND_MAX_WEIGHT``, then
the half-way points: very smooth images at low noise want weights far above sigma^2 x
4000) and replaces TV where it predicts better. At the chosen TV weight the same score
decides the non-local stage: it runs when it lowers the held-out error of the local
prior, continued as long, by more than ``NONLOCAL_MARGIN`` of sigma^2. ``RISK_TO_IMAGE``
(1: no correction) would scale the winning TV weight. On the tuning set
(benchmarks/bench_restore_tune.py) the choice is 0.04 dB above the best of a x2 weight
grid per case; docs/restoration.md has the figures. No solve sees the hidden pixels'
values, its start included (``fill_hidden``).

With ``learned`` (deconvolve's prior='auto') the learned prior (learned_prior.py) is one
more candidate, fitted on the same proxy with the same pixels hidden. Its re-blurred
estimate and the chosen hand-made prior's are blended: the share of the learned one that
predicts the hidden pixels best (``blend_share``: least squares in one number, so no more
solves), calibrated by ``learned_share``, is the share of the learned prior's restoration
in deconvolve's result. docs/learned_prior.md has the figures.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..losses import Loss, SecondOrderTV

__all__ = ["AUTO_MIN_SIGMA", "HeldOutMSE", "WeightChoice", "choose_weight", "fill_hidden", "hidden_pixels", "proxy_window",
           "smooth_terms"]

AUTO_MIN_SIGMA = 2e-3      # below (half an 8-bit grey level) deconvolve keeps the fixed rule 12 sigma^2:
# the held-out error is then only the proxy solves' distance from convergence, which favours large weights
# (camera, box 5, noise-free: 35.0 dB against the rule's 40.3). On the tuning images the kernel-aware
# estimate reads 0.04-1.4e-3 on noise-free blurs (motion the highest) and >= 2.5e-3 at sigma 0.0025.
HOLDOUT = 0.2              # share of the proxy's observed pixels hidden from the fit
PROXY_SIDE = 128           # the proxy window's side (the whole image when smaller)
PROXY_ITERATIONS = 30      # L-BFGS iterations per candidate solve on the proxy
CANDIDATES = (0.25, 1.0, 4.0, 16.0)  # coarse pass, times 12 sigma^2 (a geometric ladder); then the two half-way
# points (geometrically) around the best
RISK_TO_IMAGE = 1.0        # the chosen candidate times this is the weight used
NONLOCAL_MARGIN = 0.0      # the non-local stage must lower the held-out error by more than this times sigma^2
LEARNED_MARGIN = 0.0      # prior 'auto': the learned prior must predict better by more than this times sigma^2
SHARE_POWER = 0.6         # the learned prior's share is the held-out one to this power: on the proxy, with a fifth
# of its pixels hidden, the learned prior predicts relatively worse than it restores the whole image (tuning set:
# held-out share 0.51 on average, the truth's best 0.72; docs/learned_prior.md)
PROXY_MISS_RATIO = 1.1     # where the learned prior's held-out score is above this times the hand-made one's, ...
PROXY_MISS_SHARE = 0.95    # ... its share is at least this: on the tuning set that happens where the masked proxy
# fit fails (motion blurs at low noise), not where the learned prior restores badly (docs/learned_prior.md)
VERY_SMOOTH_WEIGHT = 36000.0  # where the quadratic prior wins at this weight (times sigma^2) or above, ...
VERY_SMOOTH_POWER = 0.8   # ... the held-out share is raised to this power instead (a smaller lift): on very smooth,
# low-contrast images the learned prior restores worse than its proxy fit suggests (the synthetic smooth-microscopy
# tuning set, benchmarks/smooth_images.py; docs/learned_prior.md)
SMOOTH_CANDIDATES = (250.0, 1000.0, 4000.0)  # the quadratic prior's weights, times sigma^2
EXTEND = {"tv": 0, "smooth": 3}  # rungs the ladder may add above its top while the top is best (then refined), ...
EXTEND_MAX_WEIGHT = 2.0    # ... up to this weight (working units): past it the 30-iteration proxy solves are far
# from converged, and a start barely moved predicts the hidden pixels well, flattering ever larger weights
REFINE = {"tv": True, "smooth": False}  # score the two half-way points around the best (always after an extension)
SMOOTH_EPS = 1.0           # SecondOrderTV's eps for the quadratic prior (working units)
SEED = 12                  # the hidden pixels are drawn with np.random.default_rng(SEED): the same choice every run


class HeldOutMSE(Loss):
    """``sum(mask * (prediction - target)^2) / (mask.sum())``: MSE over the kept pixels only.

    Shapes: prediction, target (N, 1, H, W); mask broadcastable to them, 1 = kept, 0 = hidden -> ().
    """

    def __init__(self, mask: np.ndarray):
        super().__init__()
        self.mask = np.asarray(mask)
        self.count = max(float(self.mask.sum()), 1.0)

    def forward(self, prediction: Any, target: Any):
        p = np.asarray(prediction)
        diff = (p - np.asarray(target, dtype=p.dtype)) * self.mask.astype(p.dtype)
        value = np.asarray(np.vdot(diff, diff) / self.count, dtype=p.dtype)

        def backward(dy: Any, deltas: Any):
            dp = diff * p.dtype.type(2.0 * self.scalar_dy(dy) / self.count)
            return dp, -dp

        return value, backward


@dataclass
class WeightChoice:
    """What ``choose_weight`` found: the prior family and weight, the non-local verdict and the evidence."""

    weight: float
    nonlocal_helps: bool | None  # None: not asked (prior 'local', or the smooth family won)
    scores: dict = field(default_factory=dict)  # TV candidate multiple of 12 sigma^2 -> held-out error / sigma^2
    family: str = "tv"  # 'tv' (TV + SecondOrderTV, the local stage) or 'smooth' (``smooth_terms``)
    smooth_scores: dict = field(default_factory=dict)  # smooth candidate multiple of sigma^2 -> held-out error
    nonlocal_score: float | None = None  # held-out error / sigma^2 with the non-local stage, at the chosen weight
    local_score: float | None = None  # ... and with the local prior continued as long
    learned_score: float | None = None  # held-out error / sigma^2 of the learned prior (prior 'auto')
    learned_wins: bool = False  # whether it beat the hand-made prior's score by LEARNED_MARGIN (prior 'auto')
    learned_share: float = 0.0  # prior 'auto': the restoration is this share of the learned prior's plus the rest
    # of the hand-made prior's (``learned_share``)
    held_out_share: float = 0.0  # prior 'auto': the raw share that predicts the hidden pixels best (``blend_share``)
    share_error: float = math.inf  # ... and its standard error: sigma / |learned - hand-made prediction| on them
    proxy: dict | None = field(default=None, repr=False, compare=False)  # prior 'auto': the proxy's arrays
    # (N, 1, h, w): 'observed', 'hidden' (bool), the re-blurred 'learned' and 'handmade' fits without the hidden pixels
    seconds: float = 0.0

    @property
    def handmade_score(self) -> float:
        """The held-out error / sigma^2 of the hand-made prior this choice would run."""
        if self.family == "smooth":
            return min(self.smooth_scores.values())
        if self.nonlocal_score is not None:
            return self.nonlocal_score if self.nonlocal_helps else self.local_score
        return min(self.scores.values())


def proxy_window(shape: tuple[int, int], side: int | None = None) -> tuple[slice, slice]:
    """The centred window of at most ``side`` (default ``PROXY_SIDE``) pixels a side of an (H, W) image."""
    h, w = shape
    side = PROXY_SIDE if side is None else side
    sh, sw = min(side, h), min(side, w)
    return slice((h - sh) // 2, (h - sh) // 2 + sh), slice((w - sw) // 2, (w - sw) // 2 + sw)


def hidden_pixels(shape: tuple[int, ...]) -> np.ndarray:
    """The held-out mask for a proxy of ``shape``: boolean, True = hidden (``HOLDOUT`` of them, seed ``SEED``)."""
    return np.random.default_rng(SEED).random(shape) < HOLDOUT


def fill_hidden(window: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """``window`` (..., h, w) with each ``hidden`` pixel replaced by the mean of the kept pixels of its 3x3
    (else 7x7) neighbourhood in its plane, else of all kept pixels; kept pixels unchanged.

    The start of a held-out solve must be made from this: a start made from the whole window
    carries each hidden pixel's own (noisy) value, which a short solve with a spread kernel
    largely keeps, so the "prediction" of a hidden pixel would partly be the pixel itself.
    """
    from scipy.ndimage import uniform_filter  # late: keeps `import minieye` light
    hidden = np.broadcast_to(np.asarray(hidden, dtype=bool), window.shape)
    kept = (~hidden).astype(np.float64)
    out = np.where(hidden, 0.0, window).astype(np.float64)
    missing = hidden.copy()
    for side in (3, 7):
        size = (1,) * (window.ndim - 2) + (side, side)
        total, count = uniform_filter(out * kept, size, mode="mirror"), uniform_filter(kept, size, mode="mirror")
        fill = missing & (count > 1e-9)
        out[fill] = total[fill] / count[fill]
        kept, missing = kept + fill, missing & ~fill
    out[missing] = float(window[~hidden].mean()) if (~hidden).any() else 0.0
    return out.astype(window.dtype, copy=False)


def choose_weight(observed: np.ndarray, make_start: Callable[[np.ndarray], np.ndarray], sigma: float,
                  solve: Callable[..., tuple[np.ndarray, np.ndarray]], terms_for: Callable[[float], list],
                  nonlocal_terms_for: Callable[[np.ndarray, float], list] | None = None,
                  learned: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> WeightChoice:
    """The prior family and weight for ``observed`` by held-out prediction on its proxy window.

    ``observed`` (N, H, W) planes (only the centred ``proxy_window`` is read, so a tiled
    run that reads that window chooses the same); ``make_start(window)`` the solver's
    start for (N, 1, h, w) planes: (N, 1, h + kh - 1, w + kw - 1), given the window with its
    hidden pixels filled from their kept neighbours (``fill_hidden``); ``solve(observed,
    start, terms, fidelity, iterations) -> (learned scene, its blurred prediction)`` one
    L-BFGS stage; ``terms_for(w)`` the local prior's terms at weight w;
    ``nonlocal_terms_for(guide, w)``, when given, the non-local stage's, so that its
    verdict is part of the answer; ``learned(window, hidden)``, when given, the learned
    prior's blurred estimate of the window fitted without the hidden pixels (both (N, 1, h, w)),
    scored the same way against the hand-made prior the choice would run (``learned_wins``).
    """
    started = time.perf_counter()
    rows, cols = proxy_window(observed.shape[1:])
    y = observed[:, rows, cols][:, None]
    hidden = hidden_pixels(y.shape)
    u0 = make_start(fill_hidden(y, hidden))  # the start must not carry the hidden pixels' values
    fit = HeldOutMSE(~hidden)
    noise = max(sigma * sigma, 1e-12)

    def held_out(prediction: np.ndarray) -> float:
        return float(np.mean((prediction - y)[hidden] ** 2)) / noise

    def ladder(make_terms: Callable[[float], list], base: float, candidates: Sequence[float], refine: bool,
               extend: int) -> tuple:
        """Held-out error / sigma^2 per multiple of ``base``; every solve from the same start.

        (Warm starts from the nearest weight solved were tried: the scores then depend on
        the order, and the tuning set's mean fell by 0.09 dB.)
        """
        scores: dict[float, float] = {}
        fits: dict[float, tuple[np.ndarray, np.ndarray]] = {}

        def score(multiple: float) -> None:
            fits[multiple] = solve(y, u0, make_terms(base * multiple), fit, PROXY_ITERATIONS)
            scores[multiple] = held_out(fits[multiple][1])

        for m in sorted(candidates, key=lambda m: abs(math.log(m))):
            score(m)
        ratio = candidates[1] / candidates[0]
        extended = False
        for _ in range(extend):  # the top rung best: the optimum may lie above (very smooth images at low noise)
            best = min(scores, key=scores.get)
            if best != max(scores) or base * best * ratio > EXTEND_MAX_WEIGHT:
                break
            score(best * ratio)
            extended = True
        if refine or extended:
            step = math.sqrt(ratio)
            best = min(scores, key=scores.get)
            for m in (best / step, best * step):
                if base * m <= EXTEND_MAX_WEIGHT or not extended:
                    score(m)
        best = min(scores, key=scores.get)
        return best, dict(sorted(scores.items())), *fits[best]

    base = max(12.0 * sigma * sigma, 1e-7)
    best, scores, scene, handmade = ladder(terms_for, base, CANDIDATES, REFINE["tv"], EXTEND["tv"])
    weight = base * best * RISK_TO_IMAGE
    choice = WeightChoice(weight, None, scores)
    smooth_base = max(sigma * sigma, 1e-8)
    if SMOOTH_CANDIDATES:
        smooth_best, choice.smooth_scores, _, smooth = ladder(smooth_terms, smooth_base, SMOOTH_CANDIDATES,
                                                              REFINE["smooth"], EXTEND["smooth"])
    if choice.smooth_scores and choice.smooth_scores[smooth_best] < scores[best]:  # a quadratic curvature prior predicts better: use it
        choice.weight, choice.family, handmade = smooth_base * smooth_best, "smooth", smooth
    elif nonlocal_terms_for is not None:  # both continue from the same local solution, as long
        _, local = solve(y, scene, terms_for(weight), fit, PROXY_ITERATIONS)
        _, nonlocal_ = solve(y, scene, nonlocal_terms_for(scene, weight), fit, PROXY_ITERATIONS)
        choice.local_score, choice.nonlocal_score = held_out(local), held_out(nonlocal_)
        choice.nonlocal_helps = choice.nonlocal_score < choice.local_score - NONLOCAL_MARGIN
        handmade = nonlocal_ if choice.nonlocal_helps else local
    if learned is not None:
        prediction = learned(y, hidden)
        choice.learned_score = held_out(prediction)
        choice.learned_wins = choice.learned_score < choice.handmade_score - LEARNED_MARGIN
        choice.held_out_share = blend_share(prediction[hidden], handmade[hidden], y[hidden])
        gap = float(np.linalg.norm(prediction[hidden] - handmade[hidden]))
        choice.share_error = sigma / gap if gap > 0 else math.inf
        very_smooth = choice.family == "smooth" and choice.weight >= VERY_SMOOTH_WEIGHT * smooth_base
        choice.learned_share = learned_share(choice.held_out_share, choice.learned_score, choice.handmade_score,
                                             very_smooth=very_smooth)
        # y is a view of the whole image: a copy, so that the choice kept on a user's info holds the window only
        choice.proxy = dict(observed=y.copy(), hidden=hidden, learned=prediction, handmade=handmade)
    choice.seconds = time.perf_counter() - started
    return choice


def blend_share(learned: np.ndarray, handmade: np.ndarray, observed: np.ndarray) -> float:
    """The share t in [0, 1] of the learned estimate whose blend ``t learned + (1 - t) handmade`` predicts the
    ``observed`` (held-out) pixels best: least squares in t, clipped. Shapes: three equal arrays -> float.

    Blurring is linear, so the blend of the two re-blurred estimates is the re-blurred blend of the
    estimates, and its held-out error is the same unbiased risk estimate as each prior's.
    """
    gap = (learned - handmade).ravel()
    power = float(np.dot(gap, gap))
    if not power > 0:
        return 0.0  # the same estimates: nothing to blend
    return float(np.clip(np.dot(gap, (observed - handmade).ravel()) / power, 0.0, 1.0))


def learned_share(held_out_share: float, learned_score: float, handmade_score: float, *,
                  very_smooth: bool = False) -> float:
    """The blend's learned share from the held-out one (``blend_share``) and the two held-out scores.

    ``held_out_share ** SHARE_POWER`` (``** VERY_SMOOTH_POWER`` where ``very_smooth``: the quadratic
    prior won on the proxy at a weight of at least ``VERY_SMOOTH_WEIGHT`` sigma^2), raised to at least
    ``PROXY_MISS_SHARE`` where the learned prior's score exceeds ``PROXY_MISS_RATIO`` times the
    hand-made one's (scores: error / sigma^2).
    """
    share = float(held_out_share) ** (VERY_SMOOTH_POWER if very_smooth else SHARE_POWER)
    if learned_score > PROXY_MISS_RATIO * handmade_score:
        share = max(share, PROXY_MISS_SHARE)
    return share


def smooth_terms(weight: float) -> list:
    """The quadratic curvature prior: ``SecondOrderTV`` with eps ``SMOOTH_EPS``, far above image curvatures.

    sqrt(|H|^2 + eps^2) ~ eps + |H|^2 / (2 eps): a Wiener-Hunt (Laplacian-like) penalty,
    the better prior for smooth images without sharp edges.
    """
    return [(weight, SecondOrderTV(eps=SMOOTH_EPS))]
