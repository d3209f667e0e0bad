"""SMALL's first, compiling calls on three threads at once, in fresh processes with an empty Numba cache:
forward, input and weight gradients against the naive loops (docs/kernels.md, "Reliability").

    python benchmarks/check_cold_threads.py --runs 3

Each run is a new process (``NUMBA_NUM_THREADS=3``, ``NUMBA_CACHE_DIR`` a new empty folder), so every kernel
compiles on the call that three threads make together. Prints the mismatches per run (3 shapes x 2 dtypes x
3 passes) and exits 1 if any.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import sys
import numpy as np
import minieye as me
sys.path.insert(0, "tests")
import naive_conv as naive
from minieye.kernels import conv as kconv
from minieye.kernels.conv_geometry import Geometry
rng = np.random.default_rng(0)
bad = 0
for dtype in (np.float32, np.float64):
    for (n, c, h, w), (kh, kw) in [((6, 2, 9, 7), (3, 3)), ((1, 1, 8, 8), (5, 3)), ((5, 3, 4, 6), (3, 5))]:
        x, wt = rng.standard_normal((n, c, h, w)).astype(dtype), rng.standard_normal((7, c, kh, kw)).astype(dtype)
        dy, pad = rng.standard_normal((n, 7, h, w)).astype(dtype), (kh // 2, kw // 2)
        g = Geometry((1, 1), pad, (1, 1), 1)
        with me.options(conv_algorithm="small", threads=3, conv_gemm_parallel_min_work=0):
            ours = (kconv.conv2d_forward(x, wt, g), kconv.conv2d_grad_input(dy, wt, (h, w), g),
                    kconv.conv2d_grad_weight(x, dy, (kh, kw), g))
        theirs = (naive.conv2d(x, wt, padding=pad), naive.conv_transpose2d(dy, wt, padding=pad),
                  naive.conv2d_grad_weight(x, dy, (kh, kw), padding=pad))
        tol = 1e-4 if dtype == np.float32 else 1e-10
        bad += sum(not np.allclose(a, b, rtol=tol, atol=tol) for a, b in zip(ours, theirs))
print(bad)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    total = 0
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_NUM_THREADS="3", NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
            out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                                 check=True)
        bad = int(out.stdout.split()[-1])
        total += bad
        print(f"run {run + 1}: {bad} mismatches of 18")
    print(f"load average {os.getloadavg()[0]:.1f}; {total} mismatches in {args.runs} runs")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
