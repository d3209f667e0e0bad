"""A/B of the pooling kernels against an earlier revision's, in one process (2-D speed, compile time).

    .venv/bin/python benchmarks/bench_pool_ab.py --rev 9437da8             # 2-D kernel times, 1 thread
    .venv/bin/python benchmarks/bench_pool_ab.py --rev 9437da8 --compile   # cold compile, CPU seconds
    .venv/bin/python benchmarks/bench_pool_ab.py --rev ff47679 --threads 2  # threaded paths (wall clock)
    .venv/bin/python benchmarks/bench_pool_ab.py --rev ff47679 --threads 2 --knob unpool_parallel_min_cells=0

The old ``minieye/kernels/pool.py`` is read with ``git show REV:...`` into a temporary
package beside the current one (it imports the current ``_jit`` flags), so both run in
the same process, interleaved, on the same arrays, and each reports its fastest run
(other jobs on a shared machine only ever add time).
Revisions before the N-d kernels (9437da8 and earlier) have the 2-D API
(``max_pool2d_forward(x, kh, kw, ...)``); both APIs are understood. ``--compile`` runs
each kernel set in a fresh process with an empty Numba cache and reports the CPU time
(``time.process_time``, steadier than wall time on a busy machine) of the first calls:
serial bodies and parallel drivers, float32 and float64.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import minieye as me

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [((32, 32, 32, 32), 2, 2, 0), ((8, 64, 64, 64), 2, 2, 0), ((8, 64, 64, 64), 3, 2, 1),
          # the other pools of bench_training.py (VGG block, LeNet-5)
          ((32, 64, 16, 16), 2, 2, 0), ((64, 6, 28, 28), 2, 2, 0), ((64, 16, 10, 10), 2, 2, 0)]


class Ops:
    """max-pool, scatter, avg forward and backward of one kernel module, for 2-D NCHW arrays."""

    def __init__(self, module):
        self.m, self.old = module, hasattr(module, "max_pool2d_forward")

    def max_pool(self, x, k, s, p):
        if self.old:
            return self.m.max_pool2d_forward(x, k, k, s, s, p, p)
        return self.m.max_pool_forward(x, (k, k), (s, s), (p, p))

    def scatter(self, v, sw, h, w):
        return self.m.scatter_switches(v, sw, h, w) if self.old else self.m.scatter_switches(v, sw, (h, w))

    def avg(self, x, k, s, p):
        if self.old:
            return self.m.avg_pool2d_forward(x, k, k, s, s, p, p, True)
        return self.m.avg_pool_forward(x, (k, k), (s, s), (p, p), True)

    def avg_back(self, dy, h, w, k, s, p):
        if self.old:
            return self.m.avg_pool2d_backward(dy, h, w, k, k, s, s, p, p, True)
        return self.m.avg_pool_backward(dy, (h, w), (k, k), (s, s), (p, p), True)


def load_revision(rev: str):
    """The kernel module of ``rev``, imported as minieye.kernels.<name> (so ``._jit`` resolves)."""
    source = subprocess.run(["git", "show", f"{rev}:minieye/kernels/pool.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="pool_ab_"))
    path = folder / "pool_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("minieye.kernels.pool_rev", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def steps(ops: Ops, rng: np.random.Generator):
    for shape, k, s, p in SHAPES:
        x = rng.standard_normal(shape).astype(np.float32)
        h, w = shape[2:]
        y, sw = ops.max_pool(x, k, s, p)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        tag = f"{'x'.join(map(str, shape))} k{k}s{s}p{p}"
        yield f"max-pool {tag}", lambda o, x=x, k=k, s=s, p=p: o.max_pool(x, k, s, p)
        yield f"scatter {tag}", lambda o, dy=dy, sw=sw, h=h, w=w: o.scatter(dy, sw, h, w)
        yield f"avg-pool {tag}", lambda o, x=x, k=k, s=s, p=p: o.avg(x, k, s, p)
        yield f"avg-pool backward {tag}", lambda o, dy=dy, h=h, w=w, k=k, s=s, p=p: o.avg_back(dy, h, w, k, s, p)


def speed(rev: str, repeat: int) -> None:
    from minieye.kernels import pool as current

    old, new = Ops(load_revision(rev)), Ops(current)
    ratios = []
    import numba
    print(f"{f'operation (float32, {numba.get_num_threads()} threads)':<44} {rev:>9} {'now':>9} {'now/rev':>8}")
    for label, step in steps(new, np.random.default_rng(0)):
        a, b = step(old), step(new)  # compile or load, and check they agree
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5)
        times: dict[str, list[float]] = {"old": [], "new": []}
        for _ in range(repeat):
            for key, ops in (("old", old), ("new", new)):
                start = time.perf_counter()
                step(ops)
                times[key].append(time.perf_counter() - start)
        # the fastest of the interleaved runs: on a shared machine, bursts of other work only add
        t_old, t_new = min(times["old"]), min(times["new"])
        ratios.append(t_new / t_old)
        print(f"{label:<44} {t_old * 1e3:>7.2f}ms {t_new * 1e3:>7.2f}ms {t_new / t_old:>8.2f}")
    print(f"geometric mean now/{rev}: {float(np.exp(np.mean(np.log(ratios)))):.3f}")


def compile_child(rev: str | None) -> None:
    """First calls of every kernel, serial and parallel, both dtypes; prints CPU seconds."""
    if rev is None:
        from minieye.kernels import pool as module
    else:
        module = load_revision(rev)
    ops, rng = Ops(module), np.random.default_rng(0)
    start = time.process_time()
    for threshold in (1 << 62, 0):  # serial bodies, then parallel drivers
        if hasattr(module, "PARALLEL_MIN_WORK"):  # a revision from before minieye.options
            setattr(module, "PARALLEL_MIN_WORK", threshold)
        with me.options(pool_parallel_min_work=threshold):
            for dtype in (np.float32, np.float64):
                x = rng.standard_normal((2, 3, 4, 4)).astype(dtype)
                y, sw = ops.max_pool(x, 2, 2, 0)
                ops.scatter(y, sw, 4, 4)
                module.gather_switches(x, sw)
                ops.avg_back(ops.avg(x, 2, 2, 0), 4, 4, 2, 2, 0)
    print(f"{time.process_time() - start:.2f}")


def compile_times(rev: str, rounds: int) -> None:
    for _ in range(rounds):  # alternate, so that load changes hit both
        for label, args in ((rev, ["--rev", rev]), ("now", [])):
            env = {**os.environ, "NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="numba_cold_")}
            out = subprocess.run([sys.executable, __file__, "--compile-child", *args], env=env, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            print(f"cold compile of the pooling kernel set at {label}: {out} s CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="9437da8", help="the earlier revision (git) to compare with")
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--compile", action="store_true", help="compare cold compile times instead")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="Numba threads (the kernels' threaded paths from 2)")
    parser.add_argument("--knob", action="append", default=[], metavar="NAME=INT",
                        help="a minieye.options knob for the run, e.g. unpool_parallel_min_cells=0 (repeatable)")
    parser.add_argument("--compile-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compile_child:
        compile_child(args.rev if "--rev" in sys.argv else None)
        return
    import numba

    numba.set_num_threads(args.threads)  # default 1, the serial kernels: two busy cores make threads noise
    if args.compile:
        compile_times(args.rev, args.rounds)
    else:
        knobs = {name: int(value) for name, value in (k.split("=", 1) for k in args.knob)}
        with me.options(**knobs):
            speed(args.rev, args.repeat)


if __name__ == "__main__":
    main()
