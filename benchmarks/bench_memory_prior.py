"""Peak memory of ``deconvolve_in_memory`` per prior and image size (the memory model of restore/memory.py).

    python benchmarks/bench_memory_prior.py                               # grey 128..1024, three priors
    python benchmarks/bench_memory_prior.py --priors learned --sizes 512 --channels 3
    python benchmarks/bench_memory_prior.py --model                       # also the model's estimate per row
    python benchmarks/bench_memory_prior.py --sizes 512 --max-memory 150MB  # restore.deconvolve in tiles

Each point runs in a fresh subprocess: a synthetic image (blocks blurred by gaussian(1.6)
plus noise 0.02, float64) is deconvolved once at 48x48 with the same prior (Numba's
compilation and the denoiser's loading are not measured), then measured. Two peaks, above
the process's state just before the call: numpy's (tracemalloc's traced peak: every
NumPy array, not Numba's own allocations) and the anonymous resident memory (``RssAnon``,
sampled every 10 ms: everything on the heap, Numba's scratch included). prior 'auto' is
run with ``learned_share=0.5`` so that its learned part runs whatever the image (its
worst case: the automatic choice, the hand-made prior and then the learned prior's HQS).
``--iterations`` caps the hand-made L-BFGS (and the learned prior's HQS for 'learned');
memory does not grow past the first iterations (buffers are reused). ``--max-memory``: the
public ``restore.deconvolve(..., max_memory=...)`` instead, in tiles when the image does not fit
(the row then names the plan; the model column is the plan's ``peak_bytes``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
from bench_tiled import measure_peaks  # (run as a script: this folder is on sys.path)

from minieye import restore
from minieye.restore import psf, tiled
from minieye.restore.deconvolve import deconvolve_in_memory


def _image(size: int, channels: int, seed: int = 0) -> np.ndarray:
    from scipy.ndimage import convolve
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    planes = []
    for c in range(channels):
        scene = 0.2 + 0.5 * ((rows // (24 + 4 * c) + cols // 32) % 2) + 0.1 * np.sin(cols / 17.0)
        planes.append(convolve(scene, psf.gaussian(1.6), mode="reflect") + 0.02 * rng.standard_normal(scene.shape))
    return planes[0] if channels == 1 else np.stack(planes, axis=-1)


def _options(prior: str, iterations: int) -> dict:
    options = dict(prior=prior, iterations=iterations)
    if prior == "auto":
        options["learned_share"] = 0.5
    return options


def _child(prior: str, size: int, channels: int, iterations: int, budget: str) -> dict:
    k = psf.gaussian(1.6)
    deconvolve_in_memory(_image(48, channels, 1), k, **_options(prior, 2))  # compile and load before measuring
    blurred = _image(size, channels)
    with measure_peaks() as peaks:
        if budget == "none":
            deconvolve_in_memory(blurred, k, **_options(prior, iterations))
        else:
            restore.deconvolve(blurred, k, max_memory=budget, **_options(prior, iterations))
    plan = None if budget == "none" else tiled.plan_tiles(blurred.shape, k, max_memory=budget, prior=prior,
                                                          sigma=restore.estimate_noise(blurred, kernel=k))
    return {"prior": prior, "size": size, "channels": channels, "traced": peaks["traced"],
            "plan": None if plan is None else [plan.tile[0], plan.count, plan.peak_bytes],
            "anon": peaks["anon"], "seconds": peaks["seconds"]}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "child":
        print(json.dumps(_child(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), argv[5])))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--priors", default="nonlocal,learned,auto")
    ap.add_argument("--sizes", default="128,256,512,768,1024")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--model", action="store_true", help="print restore.memory's estimate beside each row")
    ap.add_argument("--max-memory", default="none", help="run restore.deconvolve with this budget (tiles)")
    args = ap.parse_args(argv)
    show = args.model or args.max_memory != "none"
    print(f"load average at start: {os.getloadavg()[0]:.1f}; gaussian(1.6) 11x11, noise 0.02, "
          f"{args.iterations} iterations, {args.channels} channel(s), float32 (deconvolve's default)")
    print("| prior | image | scene pixels x channels | numpy peak (tracemalloc) MB | anon RSS peak MB | "
          "bytes per scene pixel (tracemalloc) |" + (" model MB (model / tracemalloc) |" if show else "")
          + " seconds |")
    print("|---|---|---|---|---|---|" + ("---|" if show else "") + "---|")
    for prior in args.priors.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            cmd = [sys.executable, __file__, "child", prior, str(size), str(args.channels), str(args.iterations),
                   args.max_memory]
            row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            pixels = (size + 10) ** 2 * args.channels  # the scene: the image plus the kernel's half-width per side
            model, plan = "", row["plan"]
            if plan is not None:
                model = f" {plan[2] / 1e6:.0f} (plan: {plan[1]} tiles of {plan[0]}) |"
            elif show:
                from minieye.restore.memory import memory_prior, peak_estimate
                estimate = peak_estimate(memory_prior(prior), (size, size), (11, 11), args.channels)
                model = f" {estimate / 1e6:.0f} ({estimate / row['traced']:.2f}x) |"
            print(f"| {prior} | {size}x{size}" + (f"x{args.channels}" if args.channels > 1 else "") +
                  f" | {pixels} | {row['traced'] / 1e6:.0f} | {row['anon'] / 1e6:.0f} | "
                  f"{row['traced'] / pixels:.0f} |{model} {row['seconds']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
