"""NUMBA_DISABLE_JIT=1 (documented in kernels/_jit.py for debugging) runs every convolution path
as plain Python with the compiled results: the BLAS products and the intrinsics have Python twins
(called from Python, the external xGEMM symbols did nothing and left garbage in the output)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import minieye
from minieye import layers as L
from minieye.core import DeltaSet

ALGORITHMS = ("direct", "gemm", "taps", "winograd", "winograd4", "small")

SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {tests!r})
from test_kernels_nojit import steps
print(json.dumps(steps()))
"""


def steps() -> dict[str, list]:
    """Each algorithm's forward and gradients of one small 3x3 layer at two threads, and a GELU."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 2, 6, 6))
    dy = rng.normal(size=(2, 3, 6, 6))
    results = {}
    for algorithm in ALGORITHMS:
        layer = L.Conv2D(2, 3, 3, padding=1, dtype=np.float64, seed=1)
        with minieye.options(conv_algorithm=algorithm, threads=2):
            y, backward = layer.forward(x)
            deltas = DeltaSet()
            dx = backward(dy, deltas)
        grads = [deltas[p] for p in layer.parameters()]
        results[algorithm] = [a.ravel().tolist() for a in (y, dx, *grads)]
    gelu = L.GELU()
    results["gelu"] = [np.asarray(gelu.forward(np.linspace(-3, 3, 13, dtype=np.float32))[0]).tolist()]
    return results


def test_kernels_without_jit_give_the_compiled_results() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(root=root, tests=here)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    plain = json.loads(done.stdout.strip().splitlines()[-1])
    compiled = steps()
    for name, arrays in compiled.items():
        for got, want in zip(plain[name], arrays):
            np.testing.assert_allclose(got, want, rtol=1e-5 if name == "gelu" else 1e-10, atol=1e-6,
                                       err_msg=f"{name} without JIT")
