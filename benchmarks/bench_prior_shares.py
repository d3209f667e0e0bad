"""Cross-validated share rules for prior='auto''s blend (issue 17), scored offline on saved tuning rows.

    python benchmarks/bench_prior_shares.py out/prior_tune/blend.jsonl --warm out/prior_tune/warm.jsonl
    python benchmarks/bench_prior_shares.py out/prior_tune/blend.jsonl out/prior_tune/blend-smooth.jsonl

The rows are bench_prior_tune.py's: ``blend`` rows give each tuning case's raw held-out share
(``share``), the two held-out scores and sigma; the PSNRs at t = 0, 1/2 and 1 come from the
``warm`` rows (the learned part started from the hand-made restoration, as deconvolve runs it;
``handmade``, ``warm_half``, ``warm``) or, without --warm, from the blend rows themselves
(``handmade``, ``half``, ``learned``: since the warm start, deconvolve's blend runs it). Several
blend files are scored together (the tuning images and the synthetic smooth set). The squared
error of ``t learned + (1 - t) handmade`` is a quadratic in t, so three PSNRs give the PSNR of
every blend: no restoration is run.

Each rule family maps (held-out share s, score ratio learned/hand-made, sigma, the hand-made
prior's family and weight on the proxy) to a share t. A family with free constants is scored by
cross-validation: its constants are chosen (best mean training gain) without the held-out fold,
then it is scored on that fold; folds are whole images (leave-one-image-out: the three cases of
an image together) and single cases (LOO).
Fixed rules (no constants fitted here) score the same in every column.
"""
from __future__ import annotations

import argparse
import json
from typing import Callable

import numpy as np
from scipy.optimize import minimize

POWERS = np.round(np.arange(0.1, 1.01, 0.05), 2)
LEVELS = np.round(np.arange(0.0, 1.01, 0.05), 2)
NOISE_BANDS = (0.005, 0.02)  # sigma below the first, between, above the second: the tuning set's 0.0025 / 0.01 / 0.03
RATIO_CUTS = (1.02, 1.05, 1.1, 1.2)
SMOOTH_POWERS = (0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0)
VERY_SMOOTH_CUTS = (16, 100, 300, 1000, 3000)  # times 12 sigma^2 (the TV ladder's unit; its top rung is 16)


def blend_psnr(p0: np.ndarray, p_half: np.ndarray, p1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """PSNR of the blend at share t, from the PSNRs at t = 0, 1/2 and 1 (any data range). Shapes: all (n,)."""
    m0, mh, m1 = (10.0 ** (-np.asarray(p, dtype=np.float64) / 10.0) for p in (p0, p_half, p1))
    c = 2.0 * (m0 + m1 - 2.0 * mh)  # mse(t) = m0 + b t + c t^2
    b = m1 - m0 - c
    return -10.0 * np.log10(np.maximum(m0 + b * t + c * t * t, 1e-300))


def best_shares(p0: np.ndarray, p_half: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """The truth's best share in [0, 1] per case (the quadratic's clipped minimiser, or an end)."""
    grid = np.linspace(0.0, 1.0, 1001)
    return grid[np.argmax(blend_psnr(p0[:, None], p_half[:, None], p1[:, None], grid[None, :]), axis=1)]


class Cases:
    """The tuning rows as arrays: features s, ratio, sigma; PSNRs at t = 0, 1/2, 1; image groups."""

    def __init__(self, blend_rows: list[dict], warm_rows: list[dict] | None):
        keys = [(r["image"], r["kernel"], r["sigma"]) for r in blend_rows]
        psnrs = [(r["handmade"], r["half"], r["learned"]) for r in blend_rows]
        if warm_rows is not None:
            by_key = {(r["image"], r["kernel"], r["sigma"]): r for r in warm_rows}
            psnrs = [(by_key[k]["handmade"], by_key[k]["warm_half"], by_key[k]["warm"]) for k in keys]
        self.p0, self.ph, self.p1 = (np.array(column) for column in zip(*psnrs))
        self.s = np.array([r["share"] for r in blend_rows])
        self.ratio = np.array([r["learned_score"] / r["handmade_score"] for r in blend_rows])
        self.sigma = np.array([r["sigma"] for r in blend_rows])
        self.image = np.array([r["image"] for r in blend_rows])
        self.smooth = np.array([r.get("family") == "smooth" for r in blend_rows])  # rows before it was recorded: no
        # the chosen weight over sigma^2 (bench_prior_tune.py records it over 12 sigma^2)
        self.weight = np.array([12.0 * r.get("weight_rule", 0.0) for r in blend_rows])

    def gains(self, t: np.ndarray, index: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Gain in dB over the hand-made prior of the blend at shares t (for the cases ``index``)."""
        return blend_psnr(self.p0[index], self.ph[index], self.p1[index], np.clip(t, 0.0, 1.0)) - self.p0[index]


Rule = Callable[[Cases, np.ndarray, tuple], np.ndarray]  # (cases, index, constants) -> shares


def _grid_fit(rule: Rule, grid: list[tuple]) -> Callable[[Cases, np.ndarray], tuple]:
    return lambda cases, train: max(grid, key=lambda c: cases.gains(rule(cases, train, c), train).mean())


def _band(sigma: np.ndarray) -> np.ndarray:
    return np.searchsorted(NOISE_BANDS, sigma)


def _power_per_band(cases: Cases, index: np.ndarray, powers: tuple) -> np.ndarray:
    return cases.s[index] ** np.asarray(powers)[_band(cases.sigma[index])]


def _fit_power_per_band(cases: Cases, train: np.ndarray) -> tuple:
    bands = _band(cases.sigma[train])
    return tuple(max(POWERS, key=lambda p: cases.gains(cases.s[train][bands == b] ** p, train[bands == b]).mean())
                 if (bands == b).any() else 0.5 for b in range(len(NOISE_BANDS) + 1))


def _logistic(cases: Cases, index: np.ndarray, c: tuple) -> np.ndarray:
    s = np.clip(cases.s[index], 1e-3, 1 - 1e-3)
    z = c[0] + c[1] * np.log(s / (1 - s)) + c[2] * np.log(cases.ratio[index]) + c[3] * np.log(cases.sigma[index] / 0.01)
    return 1.0 / (1.0 + np.exp(-z))


def _fit_logistic(cases: Cases, train: np.ndarray) -> tuple:
    start = np.array([0.5, 1.0, 0.0, 0.0])
    result = minimize(lambda c: -cases.gains(_logistic(cases, train, tuple(c)), train).mean(), start,
                      method="Nelder-Mead", options=dict(maxiter=2000, xatol=1e-4, fatol=1e-6))
    return tuple(result.x)


def _ratio_override(cases: Cases, index: np.ndarray, c: tuple) -> np.ndarray:
    cut, level, power = c
    return np.where(cases.ratio[index] > cut, np.maximum(cases.s[index] ** power, level), cases.s[index] ** power)


def _smooth_power(cases: Cases, index: np.ndarray, c: tuple) -> np.ndarray:
    """The ratio rule with its own power where the proxy chose the quadratic (smooth) prior."""
    cut, level, power, smooth_power = c
    share = cases.s[index] ** np.where(cases.smooth[index], smooth_power, power)
    return np.where(cases.ratio[index] > cut, np.maximum(share, level), share)


def _very_smooth_power(cases: Cases, index: np.ndarray, c: tuple) -> np.ndarray:
    """The ratio rule (1.1, 0.95, 0.6) with power q where the quadratic prior won at a weight >= W sigma^2."""
    q, least = c
    share = cases.s[index] ** np.where(cases.smooth[index] & (cases.weight[index] >= least), q, 0.6)
    return np.where(cases.ratio[index] > 1.1, np.maximum(share, 0.95), share)


def _now(cases: Cases, index: np.ndarray, c: tuple) -> np.ndarray:
    """regweight.learned_share as it ships, whatever its constants are now."""
    from minieye.restore import regweight
    very = cases.smooth[index] & (cases.weight[index] >= regweight.VERY_SMOOTH_WEIGHT)
    return np.array([regweight.learned_share(s, ratio, 1.0, v)
                     for s, ratio, v in zip(cases.s[index], cases.ratio[index], very)])


FIXED = {
    "now: regweight.learned_share": _now,
    "before issue 17's smooth pass: s^0.6, at least 0.95 where ratio > 1.1": lambda cases, i, c: _ratio_override(
        cases, i, (1.1, 0.95, 0.6)),
    "held-out share s (raw)": lambda cases, i, c: cases.s[i],
    "s^0.5 (the first calibration)": lambda cases, i, c: np.sqrt(cases.s[i]),
    "1/2": lambda cases, i, c: np.full(len(cases.s[i]), 0.5),
}
FITTED = {
    "s^p": (lambda cases, i, c: cases.s[i] ** c[0], _grid_fit(lambda cases, i, c: cases.s[i] ** c[0],
                                                               [(p,) for p in POWERS])),
    "constant c": (lambda cases, i, c: np.full(len(cases.s[i]), c[0]),
                   _grid_fit(lambda cases, i, c: np.full(len(cases.s[i]), c[0]), [(v,) for v in LEVELS])),
    "s^p, p per noise band": (_power_per_band, _fit_power_per_band),
    "(1-l) s^0.5 + l c": (
        lambda cases, i, c: (1 - c[0]) * np.sqrt(cases.s[i]) + c[0] * c[1],
        _grid_fit(lambda cases, i, c: (1 - c[0]) * np.sqrt(cases.s[i]) + c[0] * c[1],
                  [(lam, v) for lam in LEVELS[:11] for v in LEVELS])),
    "s^p, at least c where ratio > r": (
        _ratio_override, _grid_fit(_ratio_override, [(r, v, p) for r in RATIO_CUTS for v in LEVELS[10:]
                                                      for p in POWERS[::2]])),
    "logistic(logit s, log ratio, log sigma)": (_logistic, _fit_logistic),
    "the ratio rule, power q where the smooth prior won": (
        _smooth_power, _grid_fit(_smooth_power, [(r, v, p, q) for r in RATIO_CUTS for v in LEVELS[16:]
                                                 for p in POWERS[::2] for q in SMOOTH_POWERS])),
    "the ratio rule, power q where the quadratic prior won at >= W sigma^2": (
        _very_smooth_power, _grid_fit(_very_smooth_power, [(q, 12.0 * w) for q in SMOOTH_POWERS + (3.0,)
                                                           for w in VERY_SMOOTH_CUTS])),
}


def cross_validated(cases: Cases, rule: Rule, fit: Callable, folds: list[np.ndarray]) -> np.ndarray:
    """Per-case gains, each case's share from constants fitted without its fold."""
    gains = np.empty(len(cases.s))
    everything = np.arange(len(cases.s))
    for fold in folds:
        constants = fit(cases, np.setdiff1d(everything, fold))
        gains[fold] = cases.gains(rule(cases, fold, constants), fold)
    return gains


def table(cases: Cases) -> list[tuple]:
    """Rows (rule, in-sample gains, leave-one-image-out gains, LOO gains, constants on all cases)."""
    everything = np.arange(len(cases.s))
    by_image = [np.flatnonzero(cases.image == name) for name in dict.fromkeys(cases.image)]
    single = [np.array([i]) for i in everything]
    rows = []
    for name, rule in FIXED.items():
        g = cases.gains(rule(cases, everything, ()))
        rows.append((name, g, g, g, ()))
    for name, (rule, fit) in FITTED.items():
        constants = fit(cases, everything)
        rows.append((name, cases.gains(rule(cases, everything, constants)),
                     cross_validated(cases, rule, fit, by_image), cross_validated(cases, rule, fit, single), constants))
    best = best_shares(cases.p0, cases.ph, cases.p1)
    g = cases.gains(best)
    rows.append(("the truth's best share (bound)", g, g, g, ()))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("blend_rows", nargs="+", help="bench_prior_tune.py blend rows (jsonl files)")
    ap.add_argument("--warm", default=None, help="bench_prior_tune.py warm rows (jsonl): their PSNRs")
    args = ap.parse_args(argv)
    load = lambda path: [json.loads(line) for line in open(path)]  # noqa: E731
    rows = [row for path in args.blend_rows for row in load(path) if row.get("share") is not None]
    cases = Cases(rows, None if args.warm is None else load(args.warm))
    print(f"{len(cases.s)} cases, {len(set(cases.image))} images; hand-made prior {cases.p0.mean():.3f} dB. "
          "Gain over it: mean / worst (cases worse)")
    print("| rule | in-sample | leave-one-image-out | leave-one-case-out | constants (all cases) |")
    print("|---|---|---|---|---|")
    for name, *gains, constants in table(cases):
        cells = " | ".join(f"{g.mean():+.3f} / {g.min():+.2f} ({(g < -0.005).sum()})" for g in gains)
        print(f"| {name} | {cells} | {', '.join(f'{c:.3g}' for c in constants)} |")


if __name__ == "__main__":
    main()
