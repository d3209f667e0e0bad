"""minieye's training step of bench_training.py's workloads under two trees or knob settings, in one process.

    PYTHONPATH=$PWD python benchmarks/bench_step_ab.py --base 1c219a9                 # that tree (A) / this one (B)
    PYTHONPATH=$PWD python benchmarks/bench_step_ab.py --only vgg --a conv_algorithm=gemm --blocks 20

The LeNet-5 and VGG-block trainers of ``bench_training.py`` (mini-batch Adam on the same digits,
the same network and seeds) are built once per side: side A from ``--base REV_OR_PATH``'s tree (a
git revision, or a folder holding ``minieye/``, imported beside this one as ``minieye_base``: see
``bench_plan_ab.py``) or this tree, side B from this tree; ``--a`` / ``--b KNOB=VALUE`` set
``minieye.options`` knobs per side. After a warm-up block each, blocks of ``--block`` iterations
alternate, the order swapped every pair; printed per workload: each side's median ms per iteration
and the median of the pair ratios B / A. Default one thread and CPU time (``--clock cpu``), robust
to other load where whole-run figures are not; ``--threads 2 --clock wall`` for the issue's protocol.
``--profile N``: no comparison; N iterations of this tree's trainer under cProfile (CPU time), the
functions that take the most time themselves (where a step goes outside the layers: the optimizer's
vector work, ``to_vector`` / ``set_vector``):

    PYTHONPATH=$PWD python benchmarks/bench_step_ab.py --only lenet --profile 300
"""
from __future__ import annotations

import argparse
import cProfile
import importlib
import os
import pstats
import time

import numpy as np

from bench_clock import add_clock_option, chosen_clock
from bench_plan_ab import base_package, knobs
from bench_training import WORKLOADS, digits, minieye_net, minieye_trainer


class Side:
    """One contender's trainer for one workload, under its knobs."""

    def __init__(self, package, settings: dict, workload: str):
        self.package, self.settings = package, settings
        x, y, _, _ = digits(workload)
        net = minieye_net(workload, package)
        self.trainer = minieye_trainer(net, x, y, WORKLOADS[workload]["batch"], me=package)

    def block(self, iterations: int, clock) -> float:
        """Seconds per iteration over the next ``iterations`` steps."""
        with self.package.options(**self.settings):
            begun, start = self.trainer.iteration, clock()
            self.trainer.run(max_iterations=iterations)  # this call's budget
            seconds = clock() - start
        if self.trainer.iteration - begun != iterations:
            raise RuntimeError(f"the trainer ran {self.trainer.iteration - begun} iterations, not {iterations}")
        return seconds / iterations


def compare(workload: str, packages: tuple, settings: tuple[dict, dict], blocks: int, block: int, clock) -> None:
    a, b = (Side(p, s, workload) for p, s in zip(packages, settings))
    for side in (a, b):
        side.block(block, clock)  # compile or load, fill the caches
    times = {a: [], b: []}
    for k in range(blocks):
        for side in ((a, b) if k % 2 == 0 else (b, a)):
            times[side].append(side.block(block, clock))
    ta, tb = np.array(times[a]) * 1e3, np.array(times[b]) * 1e3
    print(f"{workload:<6} A {np.median(ta):7.2f} ms  B {np.median(tb):7.2f} ms  B/A (median of pair ratios) "
          f"{np.median(tb / ta):.3f}  load {os.getloadavg()[0]:.1f}", flush=True)


def profile(workload: str, iterations: int, clock) -> None:
    side = Side(importlib.import_module("minieye"), {}, workload)
    side.block(10, clock)  # compile or load
    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(side.block, iterations, clock)
    print(f"{workload}: {iterations} iterations, CPU seconds")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=list(WORKLOADS))
    parser.add_argument("--blocks", type=int, default=10, help="pairs of alternated blocks")
    parser.add_argument("--block", type=int, default=10, help="iterations per block")
    parser.add_argument("--threads", type=int, default=1)
    add_clock_option(parser)
    parser.set_defaults(clock="cpu")
    parser.add_argument("--a", action="append", default=[], metavar="KNOB=VALUE", help="side A's knobs")
    parser.add_argument("--b", action="append", default=[], metavar="KNOB=VALUE", help="side B's knobs")
    parser.add_argument("--base", metavar="REV_OR_PATH", help="side A runs this tree of minieye")
    parser.add_argument("--profile", type=int, metavar="N", help="profile N iterations of this tree instead")
    args = parser.parse_args()
    clock = chosen_clock(parser, args)
    import numba
    from threadpoolctl import threadpool_limits
    numba.set_num_threads(args.threads)
    packages = (base_package(args.base) if args.base else importlib.import_module("minieye"),
                importlib.import_module("minieye"))
    if not args.profile:
        print(f"A: {args.base or 'this tree'} {args.a or ''}; B: this tree {args.b or ''}; threads {args.threads}, "
              f"clock {args.clock}, {args.blocks} pairs of {args.block}-iteration blocks, ms per iteration")
    with threadpool_limits(args.threads):
        if args.profile:
            for workload in ([args.only] if args.only else list(WORKLOADS)):
                profile(workload, args.profile, clock)
            return
        for workload in ([args.only] if args.only else list(WORKLOADS)):
            compare(workload, packages, (knobs(args.a), knobs(args.b)), args.blocks, args.block, clock)


if __name__ == "__main__":
    main()
