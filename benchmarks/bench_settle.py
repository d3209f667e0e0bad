"""How long PyTorch's OpenMP workers spin after an op: the reason for ``bench_clock.settle``'s pause.

    PYTHONPATH=$PWD python benchmarks/bench_settle.py
    OMP_WAIT_POLICY=passive PYTHONPATH=$PWD python benchmarks/bench_settle.py   # workers sleep at once

After each call of PyTorch's digits layer (bench_kernels.py's 256x1x8x8 -> 16, 3x3, forward and
backward) on ``--threads`` threads, this process sleeps and reads its own CPU time across the sleep:
what it used is the workers' spinning, which takes a core that the next timed block of the other
side needs. Printed per sleep length: the median of ``--repeat`` such readings. ``SETTLE_S``
(bench_clock.py) should be past the length from which the reading stops growing.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench_clock import SETTLE_S


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sleeps-ms", type=float, nargs="+", default=[1, 5, 20, 50, 200])
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((256, 1, 8, 8), dtype=np.float32), requires_grad=True)
    w = torch.tensor(rng.standard_normal((16, 1, 3, 3), dtype=np.float32), requires_grad=True)

    def theirs() -> None:
        torch.nn.functional.conv2d(x, w, padding=1).sum().backward()

    for _ in range(5):
        theirs()
    print(f"torch {torch.__version__}, {args.threads} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
          f"bench_clock.SETTLE_S = {SETTLE_S * 1e3:.0f} ms")
    for sleep_ms in args.sleeps_ms:
        used = []
        for _ in range(args.repeat):
            theirs()
            start = time.process_time()
            time.sleep(sleep_ms / 1e3)
            used.append(time.process_time() - start)
        print(f"sleep {sleep_ms:6.1f} ms: CPU used meanwhile {np.median(used) * 1e3:6.2f} ms", flush=True)
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
