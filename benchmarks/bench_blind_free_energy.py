"""The free energy of candidate kernels (restore/blind_free_energy.py) on one case: values and CPU time.

    OMP_NUM_THREADS=1 python benchmarks/bench_blind_free_energy.py          # seven candidates, timed twice
    python benchmarks/bench_blind_free_energy.py --fit-prior                # the gradient prior's mixture, refitted

A 256x256 crop of scikit-image's camera blurred by ``psf.camera_shake(13, seed=2)`` plus noise of
sd 0.01 (seed 0); candidates: the true kernel, its outer 2 px cut, a Gaussian, another shake, a
disk, and the true kernel mirrored left-right and rotated 180 degrees (the same power spectrum,
another phase). ``free_energies`` of all of them is called twice and timed in CPU seconds of this
process (run it on one thread where the machine is loaded). ``--fit-prior`` refits the zero-mean
mixture of ``PRIOR_WEIGHTS`` / ``PRIOR_SDS`` by EM on the differences of the tuning corpus's photos.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from minieye import restore
from minieye.restore import psf
from minieye.restore.blind_free_energy import free_energies

import bench_blind

PHOTOS = ["camera", "astronaut", "coins", "ascent", "aero", "china", "flower"]  # of bench_blind.TUNING


def fit_prior(components: int = 4, samples: int = 400_000, steps: int = 300, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    g = []
    for name in PHOTOS:
        x = bench_blind.load(name)
        x = x.mean(axis=-1) if x.ndim == 3 else x
        g += [np.diff(x, axis=0).ravel(), np.diff(x, axis=1).ravel()]
    g = rng.choice(np.concatenate(g), samples, replace=False)[:, None]
    var, weights = np.logspace(-5, -1, components), np.full(components, 1 / components)
    for _ in range(steps):
        logp = np.log(weights) - 0.5 * np.log(2 * np.pi * var) - g ** 2 / (2 * var)
        q = np.exp(logp - logp.max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)
        weights, var = q.mean(axis=0), (q * g ** 2).sum(axis=0) / q.sum(axis=0)
    print("PRIOR_WEIGHTS =", tuple(np.round(weights, 4).tolist()))
    print("PRIOR_SDS =", tuple(np.round(np.sqrt(var), 5).tolist()))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit-prior", action="store_true")
    if ap.parse_args(argv).fit_prior:
        return fit_prior()
    truth = bench_blind.load("camera")[128:384, 128:384]
    k = psf.camera_shake(13, seed=2)
    y = restore.blur(truth, k, mode="reflect") + 0.01 * np.random.default_rng(0).standard_normal(truth.shape)
    candidates = {"true": k, "outer 2 px cut": np.pad(k[2:-2, 2:-2], 2), "gaussian 1.5": psf.gaussian(1.5),
                  "another 9 px shake": np.pad(psf.camera_shake(9, seed=5), 2), "disk 3": psf.disk(3),
                  "mirrored left-right": np.fliplr(k), "rotated 180 (same |K|)": k[::-1, ::-1]}
    print(f"load average at start {os.getloadavg()[0]:.1f}")
    for _ in range(2):
        cpu = time.process_time()
        energies = free_energies(y, list(candidates.values()), 0.01)
        print(f"{len(candidates)} candidates, 256x256: {time.process_time() - cpu:.2f} CPU s")
    for name, energy in zip(candidates, energies):
        print(f"  {name:24s} {energy:+.3f}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
