"""Data-parallel training on Dask: time per evaluation and per L-BFGS iteration, 1 vs 2 workers.

    .venv/bin/python benchmarks/bench_distributed.py              # the table in docs/distributed.md
    .venv/bin/python benchmarks/bench_distributed.py --quick      # a smoke run (seconds)

Problem: a small conv net (Conv2D 1->8 3x3, ReLU, Conv2D 8->8 3x3, ReLU, Dense 6272->10;
63 k float32 parameters) with softmax cross-entropy on N random 28x28 images, full
batch. Rows of the first table, all in this one run:

- single process, Numba on every core (the ordinary train.Problem);
- single process, one Numba thread and one BLAS thread;
- DistributedProblem on a LocalCluster of 1 and of 2 worker processes, 1 thread each.

"overhead" is the client's wall time per evaluation minus the slowest worker's
compute time: sending parameters, the actor calls, returning and summing gradients.

On a shared machine wall times say little about scaling: Linux's autogroup scheduler
gives every login session one fair share of the cores, so worker processes started
from this session share that one share. The "CPU s / eval, busiest process" column
(process CPU time: the worker's Dask threads count too) and the "idle-machine
estimate" derived from it, one thread's CPU time / (busiest process's CPU time +
overhead), are what the wall-time speed-up would be with the cores free.

With ``--recovery`` it measures instead what losing a worker costs: the conv net's rows as
4 shards that the 2 workers load from .npz files, one worker process SIGKILLed before an
evaluation, and the seconds of that evaluation (noticing the loss, re-loading the 2 shards
on the other worker, rebuilding their networks, repeating the 2 calls) against the median
of ordinary ones; then, once the nanny's replacement has joined, the evaluation that moves
2 shards back onto it (``Placement.rebalance``) and the ordinary ones after it.

The second table is the communication cost alone: a Dense layer with P parameters on
one row per worker (nothing to compute), for several P. A distributed evaluation over
W workers pays when the single-process compute time T satisfies
T (1 - 1/W) > overhead(P); the break-even T is printed for W = 2.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import minieye as me
from minieye import layers, losses, train


def conv_net() -> me.Sequential:
    return me.Sequential(layers.Conv2D(1, 8, 3, padding=1, seed=1), layers.ReLU(),
                         layers.Conv2D(8, 8, 3, padding=1, seed=2), layers.ReLU(),
                         layers.Flatten(), layers.Dense(8 * 28 * 28, 10, seed=3))


def images(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, size=n)


def per_evaluation(problem: train.Problem, repeats: int) -> dict[str, float]:
    """Medians over ``repeats`` evaluations: wall seconds, CPU seconds of the busiest process
    (this one, or the slowest worker), and for a DistributedProblem the overhead."""
    walls, cpus, overheads = [], [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        problem.evaluate_vector()
        walls.append(time.perf_counter() - start)
        timing = getattr(problem, "last_timing", None)
        cpus.append(timing["cpu"] if timing else time.process_time() - cpu)
        if timing:
            overheads.append(timing["overhead"])
    return dict(evaluation=statistics.median(walls), cpu=statistics.median(cpus),
                overhead=statistics.median(overheads) if overheads else None)


def per_iteration(problem: train.Problem, iterations: int) -> tuple[float, float, float]:
    """Seconds per L-BFGS iteration, evaluations per iteration, final loss."""
    start = time.perf_counter()
    result = train.Trainer(problem, orientation=train.LBFGS(), line_search=train.ArmijoWolfe()).run(
        max_iterations=iterations)
    seconds = time.perf_counter() - start
    return seconds / result.iterations, result.history[-1].evaluations / result.iterations, result.loss


def compute_table(n: int, repeats: int, iterations: int) -> list[dict]:
    import numba
    from threadpoolctl import threadpool_limits

    from minieye.distributed import DistributedProblem
    x, y = images(n)
    rows = []
    cores = numba.get_num_threads()
    for threads in (cores, 1):
        numba.set_num_threads(threads)
        with threadpool_limits(threads):  # BLAS (the GEMM convolution path) too
            problem = train.Problem(conv_net(), losses.SoftmaxCrossEntropy(), x, y)
            problem.evaluate_vector()  # compile outside the timing
            timed = per_evaluation(problem, repeats)
            iteration, evals, loss = per_iteration(problem, iterations)
        rows.append(dict(setup=f"single process, {threads} thread(s)", start=0.0, **timed,
                         iteration=iteration, evals=evals, loss=loss))
    numba.set_num_threads(cores)
    for workers in (1, 2):
        start = time.perf_counter()
        with DistributedProblem(conv_net(), losses.SoftmaxCrossEntropy(), x, y,
                                n_workers=workers, threads_per_worker=1) as problem:
            started = time.perf_counter() - start
            timed = per_evaluation(problem, repeats)
            iteration, evals, loss = per_iteration(problem, iterations)
        rows.append(dict(setup=f"Dask, {workers} worker process(es) x 1 thread", start=started, **timed,
                         iteration=iteration, evals=evals, loss=loss))
    return rows


def communication_table(sizes: list[int], repeats: int) -> list[dict]:
    from minieye.distributed import DistributedProblem
    rows = []
    with DistributedProblem(layers.Dense(1, 1, seed=0), losses.MSE(), np.zeros((2, 1), np.float32),
                            np.zeros((2, 1), np.float32), n_workers=2) as first:
        client = first.client  # one cluster for every size
        for size in sizes:
            width = max(1, int(round(np.sqrt(size))))
            net = layers.Dense(width, width, seed=0)
            x = np.random.default_rng(1).normal(size=(2, width)).astype(np.float32)
            with DistributedProblem(net, losses.MSE(), x, np.zeros_like(x), client=client) as problem:
                timed = per_evaluation(problem, repeats)
            params = width * width + width
            rows.append(dict(params=params, megabytes=2 * params * (4 + 4) / 1e6, **timed))
    return rows


def recovery(n: int, repeats: int) -> None:
    """Seconds of an evaluation that finds a worker killed, against ordinary evaluations."""
    import signal
    import tempfile

    from minieye.distributed import DistributedProblem, ShardSource
    x, y = images(n)
    folder = tempfile.mkdtemp()
    paths = []
    for i, rows in enumerate(np.array_split(np.arange(n), 4)):
        paths.append(os.path.join(folder, f"part-{i}.npz"))
        np.savez(paths[-1], x=x[rows], y=y[rows])
    start = time.perf_counter()
    with me.options(rebalance_every=None), DistributedProblem(  # only the forced look below moves shards back
            conv_net(), losses.SoftmaxCrossEntropy(), shards=ShardSource.files(paths), n_workers=2) as problem:
        started = time.perf_counter() - start
        ordinary = per_evaluation(problem, repeats)["evaluation"]
        before = problem.evaluate_vector()[0]
        client, address = problem.client, problem.workers[0]
        os.kill(client.run(os.getpid, workers=[address])[address], signal.SIGKILL)
        start = time.perf_counter()
        loss = problem.evaluate_vector()[0]
        hit = time.perf_counter() - start
        after = per_evaluation(problem, repeats)["evaluation"]
        client.wait_for_workers(2, timeout=120)  # the nanny's replacement
        start = time.perf_counter()
        problem.placement.rebalance(force=True)
        back = problem.evaluate_vector()[0]
        moving = time.perf_counter() - start
        balanced = per_evaluation(problem, repeats)["evaluation"]
        print(f"{n} images in 4 shards on 2 workers; start {started:.1f} s; moves {problem.placement.moves}")
        print(f"load average {os.getloadavg()[0]:.1f}")
        print("| ordinary evaluation (s) | evaluation that recovers (s) | after, on 1 worker (s) | "
              "evaluation that rebalances (s) | after, on 2 workers again (s) | loss before | loss | loss after |")
        print(f"|---|---|---|---|---|---|---|---|\n| {ordinary:.3f} | {hit:.3f} | {after:.3f} | {moving:.3f} | "
              f"{balanced:.3f} | {before!r} | {loss!r} | {back!r} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="images in the full batch")
    parser.add_argument("--repeats", type=int, default=5, help="evaluations timed per setup (median)")
    parser.add_argument("--iterations", type=int, default=4, help="L-BFGS iterations timed per setup")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that the script runs")
    parser.add_argument("--recovery", action="store_true", help="the cost of losing a worker instead")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.repeats, args.iterations = 64, 2, 2
    if args.recovery:
        recovery(args.rows, args.repeats)
        return
    sizes = [1_000, 100_000] if args.quick else [1_000, 100_000, 1_000_000, 4_000_000]

    load_before = os.getloadavg()[0]
    rows = compute_table(args.rows, args.repeats, args.iterations)
    comm = communication_table(sizes, args.repeats)
    load_after = os.getloadavg()[0]

    print(f"\nconv net, 63 k float32 parameters, softmax cross-entropy, full batch of {args.rows} 28x28 images; "
          f"{os.cpu_count()} cores, load average {load_before:.1f} before / {load_after:.1f} after")
    base = rows[0]["evaluation"]
    one = rows[1]["cpu"]  # CPU seconds of the whole work, done by one thread
    print("| setup | start (s) | s / evaluation | speed-up | overhead (s) | CPU s / eval, busiest process "
          "| idle-machine estimate | s / L-BFGS iteration | evals / it | loss |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        overhead = "-" if r["overhead"] is None else f"{r['overhead']:.3f}"
        estimate = one / (r["cpu"] + (r["overhead"] or 0.0))
        print(f"| {r['setup']} | {r['start']:.1f} | {r['evaluation']:.3f} | {base / r['evaluation']:.2f} | "
              f"{overhead} | {r['cpu']:.3f} | {estimate:.2f} | {r['iteration']:.3f} | {r['evals']:.1f} | "
              f"{r['loss']:.6f} |")
    print("(speed-up: against the first row, in wall time; idle-machine estimate: one thread's CPU time / "
          "(busiest process's CPU time + overhead), what the wall-time speed-up would be with free cores)")
    print("\ncommunication alone: Dense(k, k) on one row per worker, 2 workers "
          "(float32 parameters out, float32 gradients back)")
    print("| parameters | MB moved / evaluation | s / evaluation | overhead (s) | break-even compute, W=2 (s) |")
    print("|---|---|---|---|---|")
    for r in comm:
        print(f"| {r['params']:,} | {r['megabytes']:.2f} | {r['evaluation']:.4f} | {r['overhead']:.4f} | "
              f"{2 * r['evaluation']:.3f} |")


if __name__ == "__main__":
    main()
