"""The `--clock` option the speed benchmarks share: wall time, or this process's CPU time."""

from __future__ import annotations

import argparse
import time
from typing import Callable


def add_clock_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="cpu: this process's CPU time (with --threads 1 only), robust to other load")


def chosen_clock(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Callable[[], float]:
    """The timer `args.clock` names; CPU time adds up over threads, so it needs `--threads 1`."""
    if args.clock == "wall":
        return time.perf_counter
    if args.threads != 1:
        parser.error("--clock cpu needs --threads 1 (CPU time adds up over threads)")
    return time.process_time


# After each parallel op PyTorch's OpenMP (libgomp) workers spin for milliseconds before they sleep,
# on a core the next timed block needs; 50 ms outlasts the spin (bench_settle.py measures it;
# docs/kernels.md, "Seventh pass")
SETTLE_S = 0.05


def settle() -> None:
    """Wait until the other side's worker threads have gone idle: call before each timed block."""
    time.sleep(SETTLE_S)
