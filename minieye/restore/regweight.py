"""deconvolve's regularisation weight, and whether its non-local stage runs, chosen from the data alone.

Held-out prediction (pixel cross-validation): a random ``HOLDOUT`` share of the observed
pixels of a proxy window (the centre ``PROXY_SIDE`` x ``PROXY_SIDE`` of the image) is
hidden from the fidelity term (``HeldOutMSE``); for each candidate weight the local
problem is solved on the other pixels, and the candidate whose re-blurred estimate
predicts the hidden pixels best wins. The noise on a hidden pixel is independent of the
estimate, so the held-out error is sigma^2 plus the prediction error ||k (*) (u - x)||^2
on those pixels: an unbiased estimate of the prediction risk that needs neither sigma
nor a derivative of the solver (unlike SURE), and that does not care whether L-BFGS
converged. The same score, once more on the proxy, decides the non-local stage: it
runs when it lowers the held-out error of the chosen weight by more than
``NONLOCAL_MARGIN`` of sigma^2.

The candidates are ``CANDIDATES`` times the fixed rule 12 sigma^2 (a coarse pass, then
the two half-way points around the best); the prediction risk is minimised at slightly
less regularisation than the image-domain error, so the winner is multiplied by
``RISK_TO_IMAGE`` (tuned on the tuning set, benchmarks/bench_restore_tune.py).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..losses import Loss

__all__ = ["HeldOutMSE", "WeightChoice", "choose_weight", "proxy_window"]

HOLDOUT = 0.2              # share of the proxy's observed pixels hidden from the fit
PROXY_SIDE = 128           # the proxy window's side (the whole image when smaller)
PROXY_ITERATIONS = 30      # L-BFGS iterations per candidate solve on the proxy
CANDIDATES = (0.25, 1.0, 4.0, 16.0)  # coarse pass, times 12 sigma^2 (a geometric ladder); then the two half-way
# points (geometrically) around the best
RISK_TO_IMAGE = 1.0        # the chosen candidate times this is the weight used
NONLOCAL_MARGIN = 0.0      # the non-local stage must lower the held-out error by more than this times sigma^2
SEED = 12                  # the hidden pixels are drawn with np.random.default_rng(SEED): the same choice every run


class HeldOutMSE(Loss):
    """``sum(mask * (prediction - target)^2) / (mask.sum())``: MSE over the kept pixels only.

    Shapes: prediction, target (N, 1, H, W); mask broadcastable to them, 1 = kept, 0 = hidden -> ().
    """

    def __init__(self, mask: np.ndarray):
        super().__init__()
        self.mask = np.asarray(mask)
        self.count = max(float(self.mask.sum()) * 1.0, 1.0)

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
    """What ``choose_weight`` found: the weight, the non-local verdict and the evidence."""

    weight: float
    nonlocal_helps: bool | None  # None: not asked
    scores: dict = field(default_factory=dict)  # candidate multiple of 12 sigma^2 -> held-out error / sigma^2
    nonlocal_score: float | None = None  # held-out error / sigma^2 with the non-local stage, at the chosen weight
    local_score: float | None = None  # ... and with the local prior continued as long
    seconds: float = 0.0


def proxy_window(shape: tuple[int, int], side: int = PROXY_SIDE) -> tuple[slice, slice]:
    """The centred window of at most ``side`` x ``side`` pixels of an (H, W) image."""
    h, w = shape
    sh, sw = min(side, h), min(side, w)
    return slice((h - sh) // 2, (h - sh) // 2 + sh), slice((w - sw) // 2, (w - sw) // 2 + sw)


def choose_weight(observed: np.ndarray, make_start: Callable[[np.ndarray], np.ndarray], sigma: float,
                  solve: Callable[..., tuple[np.ndarray, np.ndarray]], terms_for: Callable[[float], list],
                  nonlocal_terms_for: Callable[[np.ndarray, float], list] | None = None) -> WeightChoice:
    """The TV weight for ``observed`` by held-out prediction on its proxy window.

    ``observed`` (N, H, W) planes (only the centred ``proxy_window`` is read, so a tiled
    run that reads that window chooses the same); ``make_start(window)`` the solver's
    start for (N, 1, h, w) planes: (N, 1, h + kh - 1, w + kw - 1); ``solve(observed,
    start, terms, fidelity, iterations) -> (learned scene, its blurred prediction)`` one
    L-BFGS stage; ``terms_for(w)`` the local prior's terms at weight w;
    ``nonlocal_terms_for(guide, w)``, when given, the non-local stage's, so that its
    verdict is part of the answer.
    """
    started = time.perf_counter()
    rows, cols = proxy_window(observed.shape[1:])
    y = observed[:, rows, cols][:, None]
    u0 = make_start(y)
    hidden = np.random.default_rng(SEED).random(y.shape) < HOLDOUT
    fit = HeldOutMSE(~hidden)
    base = max(12.0 * sigma * sigma, 1e-7)
    noise = max(sigma * sigma, 1e-12)
    scores: dict[float, float] = {}
    scenes: dict[float, np.ndarray] = {}

    def score(multiple: float) -> float:
        if multiple not in scores:  # warm start from the nearest weight solved so far
            near = min(scenes, key=lambda m: abs(math.log(m / multiple)), default=None)
            scene, prediction = solve(y, u0 if near is None else scenes[near], terms_for(base * multiple), fit,
                                      PROXY_ITERATIONS)
            scores[multiple] = float(np.mean((prediction - y)[hidden] ** 2)) / noise
            scenes[multiple] = scene
        return scores[multiple]

    for m in sorted(CANDIDATES, key=lambda m: abs(math.log(m))):  # from 1 outwards, so each start is near
        score(m)
    best = min(scores, key=scores.get)
    step = math.sqrt(CANDIDATES[1] / CANDIDATES[0])
    for m in (best / step, best * step):
        score(m)
    best = min(scores, key=scores.get)
    weight = base * best * RISK_TO_IMAGE
    verdict, nl_score, local_score = None, None, None
    if nonlocal_terms_for is not None:  # both continue from the same local solution, as long
        _, local = solve(y, scenes[best], terms_for(weight), fit, PROXY_ITERATIONS)
        _, nonlocal_ = solve(y, scenes[best], nonlocal_terms_for(scenes[best], weight), fit, PROXY_ITERATIONS)
        local_score = float(np.mean((local - y)[hidden] ** 2)) / noise
        nl_score = float(np.mean((nonlocal_ - y)[hidden] ** 2)) / noise
        verdict = nl_score < local_score - NONLOCAL_MARGIN
    return WeightChoice(weight, verdict, dict(sorted(scores.items())), nl_score, local_score if verdict is not None else None,
                        time.perf_counter() - started)
