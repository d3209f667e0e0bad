"""Can a cheap score tell a right kernel from a plausible wrong one? Candidate estimates per case, scored.

    python benchmarks/bench_blind_candidates.py --split tuning --n 30 --size 192 --out cands.json
    python benchmarks/bench_blind_candidates.py --analyse cands.json
    python benchmarks/bench_blind_candidates.py --split tuning --n 30 --size 192 --out c.json --save cases/
    python benchmarks/bench_blind_candidates.py --analyse c.json --rescore cases/   # the natural scores again
    python benchmarks/bench_blind_candidates.py --analyse c.json --free-energy cases/  # and the free energy

For each case of bench_blind.py's split, several kernel estimates are made (``CANDIDATES``:
the frames blind_deconvolve tries, a third smaller one, and the L0 weight schedule started
twice as high and half as high), each restored by blind's final step, and scored from the
data only:

- heldout: blind_select's held-out prediction error / sigma^2 (lower is better);
- ghosts: blind_verdict.ghost_ratio of the restoration against the denoised input;
- sparsity: the restoration's gradients' L1 / L2 (Krishnan et al. 2011; lower is sharper);
- gauss: minus the log marginal likelihood of the data under a Gaussian image prior with a
  1/|w|^2 power spectrum (its scale fitted per candidate), in the Fourier domain of the
  tapered leading plane, per pixel (lower is better; Levin et al. 2011's Gaussian form);
- natural S / red S / projected S (the learned denoiser ``D = restore.denoiser.apply_denoiser`` of the
  shipped network at a fixed noise sd S in ``NATURAL_LEVELS``, on the channels' mean x of
  the restoration): how unnatural the restoration looks to it, mean((x - D(x))^2) ("natural"),
  the RED energy mean((x - mean x)(x - D(x))) ("red"), and the fit of the denoised restoration
  to the data, mean((k (*) D(x) - y)^2) / sigma^2 ("projected": ghosts a wrong kernel needs to
  explain the data are what D removes). Lower is better for each; ``--rescore`` computes them
  for cases saved by ``--save`` and rewrites the records;
- free energy: the candidate's variational free energy per pixel under a sparse gradient prior
  (Levin et al. 2011; restore/blind_free_energy.py), every candidate in the bound's frame; lower
  is better; ``--free-energy`` adds it to saved cases' records as ``--rescore`` does;

and, as the oracle, the restoration's PSNR against the truth. ``--analyse`` reports, per
score (and for the held-out error plus a share of a projected score), how often its best
candidate is the oracle's best and the mean PSNR it would give, and, with the natural
scores, how well each score flags a candidate below the blurred input across images (AUC;
natural and red relative to the same score of the denoised input).
The L0 schedule is varied through ``estimate_kernel(..., l0_start=)``.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from minieye import restore
from minieye.restore import blind_estimate
from minieye.restore.blind import FINAL_PRIOR, FINAL_SIGMA_FLOOR
from minieye.restore.blind_free_energy import free_energies
from minieye.restore.blind_select import embed, frames, heldout_errors
from minieye.restore.blind_verdict import GHOSTS_MAX, ghost_ratio, leading_plane, residual_ratio, structure
from minieye.restore.deconvolve import deconvolve_in_memory
from minieye.restore.noise import estimate_noise

import bench_blind

# (label, frame as a share of the bound, L0 start weight relative to the library's)
CANDIDATES = [("full", 1.0, 1.0), ("0.65", 0.65, 1.0), ("0.42", 0.42, 1.0), ("full lam x2", 1.0, 2.0),
              ("full lam /2", 1.0, 0.5), ("0.65 lam x2", 0.65, 2.0)]
NATURAL_LEVELS = (0.005, 0.01, 0.02, 0.04, 0.08)  # the denoiser's noise sd (working units) for the natural scores
SCORES = ["heldout", "ghosts", "sparsity", "gauss", "free energy"] + [
    f"{name} {level:g}" for name in ("natural", "red", "projected") for level in NATURAL_LEVELS]
FREE_ENERGY_SHARES = (0.1, 0.3, 1.0, 3.0)  # b in the combined score heldout + b x free energy
MARGIN = 12  # pixels left out at the border by the natural scores (the denoiser's and the blur's reflections)


def odd_frame(bound: tuple[int, int], share: float) -> tuple[int, int]:
    return tuple(n if share == 1 else min(n, max(2 * int(round(share * n / 2)) + 1, min(n, 5))) for n in bound)


def gauss_energy(y: np.ndarray, k: np.ndarray, sigma: float) -> float:
    """-log p(y | k) / pixel under x ~ N(0, c / |D(w)|^2) (c fitted on a grid), y = k (*) x + n."""
    p = leading_plane(y)
    h, w = p.shape
    taper = np.outer(np.hanning(h), np.hanning(w))
    p = (p - p.mean()) * taper
    fy = np.abs(np.fft.fft2(p)) ** 2 / np.mean(taper ** 2)
    big = np.zeros((h, w))
    big[:k.shape[0], :k.shape[1]] = k
    fk = np.abs(np.fft.fft2(big)) ** 2
    wy, wx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    dd = 4 * np.sin(np.pi * wy) ** 2 + 4 * np.sin(np.pi * wx) ** 2
    keep = dd > 0
    noise = sigma ** 2 * h * w
    best = np.inf
    for c in np.exp(np.linspace(np.log(1e-6), np.log(1e2), 60)) * h * w:
        v = fk[keep] * c / dd[keep] + noise
        best = min(best, float(np.mean(fy[keep] / v + np.log(v))))
    return best


def sparsity(x: np.ndarray) -> float:
    p = leading_plane(x)
    g = np.concatenate([np.diff(p, axis=0).ravel(), np.diff(p, axis=1).ravel()])
    return float(np.abs(g).sum() / np.sqrt((g * g).sum()))


def natural_scores(restored: np.ndarray, kernel: np.ndarray, blurred: np.ndarray, sigma: float) -> dict:
    """The learned denoiser's view of a restoration at each of NATURAL_LEVELS (module docstring)."""
    from minieye.restore.denoiser import apply_denoiser, load_denoiser
    net = load_denoiser()
    grey = lambda a: (a.mean(axis=-1) if a.ndim == 3 else a).astype(np.float64)  # noqa: E731
    x, y, m = np.clip(grey(restored), -0.5, 1.5), grey(blurred), MARGIN
    inner = (slice(m, -m), slice(m, -m))
    out = {}
    for level in NATURAL_LEVELS:
        d = apply_denoiser(net, x.astype(np.float32), level).astype(np.float64)
        r, c = (x - d)[inner], x[inner]
        out[f"natural {level:g}"] = float(np.mean(r * r))
        out[f"red {level:g}"] = float(np.mean((c - c.mean()) * r))
        out[f"projected {level:g}"] = float(np.mean((restore.blur(d, kernel, mode="reflect") - y)[inner] ** 2)
                                            / max(sigma, 1e-3) ** 2)
    return out


def rescore(path: str, folder: str) -> None:
    """Add the natural scores to the records in ``path`` from the cases ``--save`` left in ``folder``."""
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for r in rows:
        z = np.load(os.path.join(folder, f"case_{r['seed']}_{r['size']}_{r['i']}.npz"))
        for c, x, k in zip(r["candidates"], z["restorations"], z["kernels"]):
            c.update(natural_scores(x, k, z["blurred"], float(z["sigma"])))
        r["structure"] = structure(z["blurred"], float(z["sigma"]))
        r["denoised input"] = natural_scores(z["denoised"], np.ones((1, 1)), z["blurred"], float(z["sigma"]))
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def rescore_free_energy(path: str, folder: str) -> None:
    """Add the free energy to the records in ``path`` from the cases ``--save`` left in ``folder``."""
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for r in rows:
        z = np.load(os.path.join(folder, f"case_{r['seed']}_{r['size']}_{r['i']}.npz"))
        for c, energy in zip(r["candidates"], free_energies(z["blurred"], list(z["kernels"]), float(z["sigma"]))):
            c["free energy"] = energy
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def run_case(i: int, names: list[str], size: int, seed: int, save: str | None = None) -> dict:
    name, label, truth, kernel, noise, blurred = bench_blind.make_case(i, names, size, seed)
    bound = kernel.shape
    sigma = estimate_noise(blurred)
    floor = max(sigma, FINAL_SIGMA_FLOOR)
    denoised = restore.denoise(blurred)
    score_y, score_sigma = blurred, floor
    if blurred.ndim == 3:  # as blind_select: one plane, the floor scaled to its noise
        score_y = leading_plane(blurred)
        score_sigma = floor * estimate_noise(score_y) / max(estimate_noise(blurred), 1e-12)
    psnr = lambda x: restore.psnr(truth, np.clip(x, 0, 1))  # noqa: E731
    reference = deconvolve_in_memory(blurred, kernel, noise_sigma=floor, prior=FINAL_PRIOR)
    out = {"i": i, "seed": seed, "size": size, "case": f"{name} {'colour ' if truth.ndim == 3 else ''}{label}",
           "blurred": psnr(blurred), "true": psnr(reference), "denoised": psnr(denoised),
           "structure": structure(blurred, sigma), "candidates": []}
    images, kernels = [], []
    for tag, share, lam in CANDIDATES:
        frame = odd_frame(bound, share)
        t = time.process_time()
        k = blind_estimate.estimate_kernel(blurred, frame, l0_start=blind_estimate.LAMBDA_START * lam)
        t = time.process_time() - t
        k = embed(k, bound)
        kernels.append(k)
        restored = deconvolve_in_memory(blurred, k, noise_sigma=floor, prior=FINAL_PRIOR)
        images.append(restored)
        out["candidates"].append({
            "tag": tag, "psnr": psnr(restored), "half": psnr(0.5 * restored + 0.5 * denoised),
            "kernel L1": bench_blind.kernel_error(k, kernel), "seconds": t,
            "heldout": float(heldout_errors(score_y, k, score_sigma).mean()),
            "ghosts": ghost_ratio(restored, denoised, bound), "sparsity": sparsity(restored) / sparsity(denoised),
            "gauss": gauss_energy(blurred, k, sigma), "residual": residual_ratio(restored, blurred, k, sigma)}
            | natural_scores(restored, k, blurred, sigma))
    for c, energy in zip(out["candidates"], free_energies(blurred, kernels, sigma)):
        c["free energy"] = energy
    if save:  # the case's arrays, for scoring the candidates again without re-estimating them
        np.savez_compressed(os.path.join(save, f"case_{seed}_{size}_{i}.npz"), truth=truth, blurred=blurred,
                            kernel=kernel, sigma=sigma, floor=floor, denoised=denoised, reference=reference,
                            restorations=np.stack(images), kernels=np.stack(kernels))
    mean = np.mean(images, axis=0)
    out["ensembles"] = {"all": psnr(mean), "full+0.65": psnr(0.5 * (images[0] + images[1])),
                        "all+denoised": psnr(0.5 * mean + 0.5 * denoised),
                        "spread": float(np.sqrt(np.mean([(x - mean) ** 2 for x in images])) / floor),
                        "spread2": float(np.sqrt(np.mean((images[0] - images[1]) ** 2)) / floor)}
    return out


def analyse(rows: list[dict]) -> None:
    n = len(rows)
    oracle = [max(c["psnr"] for c in r["candidates"]) - r["blurred"] for r in rows]
    first = [r["candidates"][0]["psnr"] - r["blurred"] for r in rows]
    true = [r["true"] - r["blurred"] for r in rows]
    print(f"{n} cases; gain over blurred, mean: oracle best candidate {np.mean(oracle):+.2f} dB, "
          f"'full' alone {np.mean(first):+.2f} dB, true kernel {np.mean(true):+.2f}")

    def pairs(r: dict) -> list:  # candidate pairs whose restorations differ by more than 0.5 dB
        return [(a, b) for a in r["candidates"] for b in r["candidates"] if abs(a["psnr"] - b["psnr"]) > 0.5]

    natural = [s for s in SCORES if s.split()[0] in ("natural", "red", "projected")]
    combined = [f"heldout + {b:g} x projected {level:g}" for b in (0.1, 0.3, 1.0) for level in (0.02, 0.04)] + [
        f"heldout + {b:g} x free energy" for b in FREE_ENERGY_SHARES]
    for r in rows:
        for c in r["candidates"]:
            for name in combined:
                b, other = float(name.split()[2]), " ".join(name.split()[4:])
                c[name] = c["heldout"] + b * c.get(other, np.nan)
    scored = [s for s in SCORES + combined if all(s in c for r in rows for c in r["candidates"])]
    for s in scored:
        pick = [min(r["candidates"], key=lambda c: c[s]) for r in rows]
        hits = sum(p["psnr"] == max(c["psnr"] for c in r["candidates"]) for p, r in zip(pick, rows))
        gain = [p["psnr"] - r["blurred"] for p, r in zip(pick, rows)]
        below = sum(g < 0 for g in gain)
        agree = [(a[s] < b[s]) == (a["psnr"] > b["psnr"]) for r in rows for a, b in pairs(r)]
        print(f"{s:9s}: picks the oracle's best in {hits}/{n}, mean gain {np.mean(gain):+.2f} dB, below input {below}, "
              f"orders {np.mean(agree):.0%} of {len(agree)} candidate pairs (> 0.5 dB apart) like the oracle")
    if all("denoised input" in r for r in rows):  # a verdict: is a candidate's restoration below the blurred input?
        below = np.array([c["psnr"] < r["blurred"] for r in rows for c in r["candidates"]])
        flags = {s: [c[s] for r in rows for c in r["candidates"]]
                 for s in ["heldout", "ghosts", "residual", "sparsity"]}
        for s in natural:
            flags[s + " over the denoised input's" if s.startswith(("natural", "red")) else s] = [
                c[s] / r["denoised input"][s] if s.startswith(("natural", "red")) else c[s]
                for r in rows for c in r["candidates"]]
        print(f"flagging the {below.sum()} of {below.size} candidates below the blurred input, across images "
              "(AUC: the chance that one below scores higher than one above; 0.5 is blind)")
        for s, v in flags.items():
            v = np.asarray(v)
            auc = np.mean([(a > b) + 0.5 * (a == b) for a in v[below] for b in v[~below]])
            print(f"  {s:40s} AUC {auc:.2f}")
    if all("structure" in r for r in rows):
        hedge_rules(rows)
    for j, (tag, _, _) in enumerate(CANDIDATES):
        g = [r["candidates"][j]["psnr"] - r["blurred"] for r in rows]
        print(f"  candidate {tag:12s}: mean gain {np.mean(g):+.2f} dB, below input {sum(x < 0 for x in g)}, "
              f"best for {sum(r['candidates'][j]['psnr'] == max(c['psnr'] for c in r['candidates']) for r in rows)}")


def hedge_rules(rows: list[dict]) -> None:
    """blind's pair (the given frame and 0.65 of it) chosen by the held-out error, hedged (half restoration, half
    denoised input) when its ghost ratio reaches GHOSTS_MAX or, beside blind's rule, the structure is under T."""
    for seed in sorted({r.get("seed", 0) for r in rows}):
        some = [r for r in rows if r.get("seed", 0) == seed]
        for limit in (0.0, 0.2, 0.3, 0.5, 1.0, 2.0, np.inf):
            gain, good = [], 0
            for r in some:
                c = min(r["candidates"][:2], key=lambda c: c["heldout"])
                p = c["half"] if c["ghosts"] >= GHOSTS_MAX or r["structure"] < limit else c["psnr"]
                gain.append(p - r["blurred"])
                good += 10 ** ((r["true"] - p) / 10) <= 3  # Levin's error ratio from the two PSNRs
            print(f"seed {seed}, hedged also under structure {limit:g}: ratio <= 3 in {good}/{len(some)}, mean gain "
                  f"{np.mean(gain):+.2f} dB, below the input {sum(g < 0 for g in gain)}, worst {min(gain):+.2f} dB")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("tuning", "heldout"), default="tuning")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", default=None)
    ap.add_argument("--out", default=None, help="append each case's record (JSON lines) to this file")
    ap.add_argument("--save", default=None, help="a folder: each case's arrays (truth, blurred, candidate kernels and "
                    "restorations) saved there as case_SEED_SIZE_I.npz")
    ap.add_argument("--rescore", default=None, help="with --analyse: the folder --save wrote; the natural scores "
                    "are computed from it and written into the --analyse file first")
    ap.add_argument("--free-energy", default=None, help="with --analyse: the folder --save wrote; the free energy "
                    "of each candidate is computed from it and written into the --analyse file first")
    ap.add_argument("--analyse", default=None, help="a file of records written by --out: report and exit")
    args = ap.parse_args(argv)
    if args.analyse:
        if args.rescore:
            rescore(args.analyse, args.rescore)
        if args.free_energy:
            rescore_free_energy(args.analyse, args.free_energy)
        with open(args.analyse) as f:
            analyse([json.loads(line) for line in f if line.strip()])
        return
    names = bench_blind.TUNING if args.split == "tuning" else bench_blind.HELDOUT
    print(f"load average at start {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for i in ([int(c) for c in args.cases.split(",")] if args.cases else range(args.n)):
        r = run_case(i, names, args.size, args.seed, args.save)
        rows.append(r)
        print(i, r["case"], f"blurred {r['blurred']:.2f} true {r['true']:.2f}", " | ".join(
            f"{c['tag']}: {c['psnr']:.2f} L1 {c['kernel L1']:.2f} h {c['heldout']:.3f} g {c['ghosts']:.2f} "
            f"s {c['sparsity']:.3f} G {c['gauss']:.4f}" for c in r["candidates"]), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(r) + "\n")
    analyse(rows)
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
