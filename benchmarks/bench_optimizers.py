"""Optimizer benchmark: minieye's orientations and line searches beside SciPy's L-BFGS-B.

    .venv/bin/python benchmarks/bench_optimizers.py            # all problems
    .venv/bin/python benchmarks/bench_optimizers.py --quick    # smaller caps, fewer methods
    .venv/bin/python benchmarks/bench_optimizers.py --threads 2

For each problem SciPy's ``minimize(method="L-BFGS-B", jac=True)`` runs first, fed with
minieye's own loss and gradient (``Problem.evaluate_vector``), with its default
tolerances: that is what a user would reach for. Its final loss becomes the target;
every minieye method then runs with ``target_loss`` = that loss and an iteration cap,
from the same starting point. Columns: iterations and loss evaluations (forward +
backward passes) to reach the target, wall time, final loss. "-" in "reached" means
the cap came first. Times include the same network evaluations on both sides, in one
process; the machine is shared, so read ratios, not absolute times.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

import minieye as me
from minieye import layers, losses, train

F64 = "float64"


class Rosenbrock(me.Layer):
    """sum_i (1 - x_i)^2 + 100 (x_{i+1} - x_i^2)^2 over a vector (the extended Rosenbrock function)."""

    n_inputs = 1

    def forward(self, x):
        a, b = x[:-1], x[1:]
        value = np.asarray(((1 - a) ** 2).sum() + 100 * ((b - a * a) ** 2).sum())

        def backward(dy, deltas):
            g = np.zeros_like(x)
            g[:-1] += -2 * (1 - a) - 400 * a * (b - a * a)
            g[1:] += 200 * (b - a * a)
            return float(dy) * g

        return value, backward


def least_squares() -> train.Problem:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((200, 50)) * np.linspace(1, 10, 50)  # condition number ~100
    b = a @ rng.standard_normal((50, 1))
    net = me.Sequential(layers.Dense(50, 1, bias=False, dtype=F64, init="zeros"))
    return train.Problem(net, losses.MSE(), a, b)


def rosenbrock() -> train.Problem:
    start = np.tile([-1.2, 1.0], 5)
    return train.Problem(me.Sequential(layers.Source(value=start, dtype=F64)), Rosenbrock())


def digits() -> train.Problem:
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    net = me.Sequential(layers.Dense(64, 32, dtype=F64, seed=1), layers.Tanh(), layers.Dense(32, 10, dtype=F64, seed=2))
    return train.Problem(net, losses.SoftmaxCrossEntropy(), x[:600] / 16.0, y[:600])


def learn_both() -> train.Problem:
    """MindsEye's 'learn both' on a convolution: a source image and the conv weights."""
    rng = np.random.default_rng(7)
    truth = me.Sequential(layers.Conv2D(2, 3, 3, padding=1, dtype=F64, seed=1)).freeze()
    y = truth(rng.standard_normal((1, 2, 6, 6)))
    source = layers.Source(value=rng.standard_normal((1, 2, 6, 6)), dtype=F64)
    net = me.Sequential(source, layers.Conv2D(2, 3, 3, padding=1, dtype=F64, seed=2))
    return train.Problem(net, losses.MSE(), (), y)


PROBLEMS: dict[str, tuple[Callable[[], train.Problem], int]] = {
    # name: (builder, iteration cap for SciPy)
    "least squares 200x50": (least_squares, 1000),
    "rosenbrock 10-d": (rosenbrock, 1000),
    "digits MLP (600 samples)": (digits, 150),
    "learn input+weights (conv)": (learn_both, 1000),
}

METHODS: dict[str, Callable[[], tuple[train.Orientation, train.LineSearch]]] = {
    "LBFGS + ArmijoWolfe": lambda: (train.LBFGS(), train.ArmijoWolfe()),
    "LBFGS + Quadratic": lambda: (train.LBFGS(), train.Quadratic()),
    "LBFGS + Backtracking": lambda: (train.LBFGS(), train.Backtracking()),
    "QQN + ArmijoWolfe": lambda: (train.QQN(), train.ArmijoWolfe()),
    "GradientDescent + ArmijoWolfe": lambda: (train.GradientDescent(), train.ArmijoWolfe(c2=0.1)),
    "GradientDescent + Backtracking": lambda: (train.GradientDescent(), train.Backtracking()),
    "Nesterov + FixedStep(1e-3)": lambda: (train.Nesterov(), train.FixedStep(1e-3)),
    "Adam + FixedStep(1e-2)": lambda: (train.Adam(), train.FixedStep(1e-2)),
}
QUICK = ("LBFGS + ArmijoWolfe", "QQN + ArmijoWolfe", "GradientDescent + Backtracking")


def run_scipy(problem: train.Problem, cap: int) -> dict:
    from scipy.optimize import minimize

    x0 = problem.get_vector()
    calls = [0]

    def fun(x):
        calls[0] += 1
        problem.set_vector(x)
        return problem.evaluate_vector()

    start = time.perf_counter()
    result = minimize(fun, x0, jac=True, method="L-BFGS-B", options={"maxiter": cap})
    elapsed = time.perf_counter() - start
    problem.set_vector(x0)
    return {"iterations": result.nit, "evaluations": calls[0], "time": elapsed, "loss": float(result.fun),
            "reached": "yes"}


def run_minieye(problem: train.Problem, method: str, target: float, cap: int) -> dict:
    x0 = problem.get_vector()
    orientation, search = METHODS[method]()
    start = time.perf_counter()
    result = train.Trainer(problem, orientation, search).run(max_iterations=cap, target_loss=target)
    elapsed = time.perf_counter() - start
    problem.set_vector(x0)
    return {"iterations": result.iterations, "evaluations": result.evaluations, "time": elapsed,
            "loss": result.loss, "reached": "yes" if result.loss <= target else "-"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only three methods, smaller caps")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1: on a shared machine "
                        "more threads make small matrix products slower and the timings noisy)")
    args = parser.parse_args()
    import scipy.optimize  # noqa: F401 - load SciPy's own BLAS before limiting the thread pools
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    except ImportError:  # timings then depend on the BLAS default
        pass
    methods = QUICK if args.quick else tuple(METHODS)
    # load (or compile, on a cold cache) the optimizer's Numba loops outside the timings
    train.Trainer(rosenbrock(), train.LBFGS()).run(max_iterations=3)
    header = f"{'problem':28} {'method':32} {'iters':>6} {'evals':>6} {'time ms':>8} {'final loss':>11} reached"
    print(header)
    print("-" * len(header))
    summary = []
    for name, (build, cap) in PROBLEMS.items():
        problem = build()
        problem.evaluate_vector()  # warm up (Numba compiles the conv kernels once)
        reference = run_scipy(problem, cap)
        rows = [("SciPy L-BFGS-B (reference)", reference)]
        limit = 5 * max(reference["iterations"], 20) if not args.quick else 2 * max(reference["iterations"], 20)
        for method in methods:
            rows.append((method, run_minieye(problem, method, reference["loss"], limit)))
        for method, row in rows:
            print(f"{name:28} {method:32} {row['iterations']:6d} {row['evaluations']:6d} "
                  f"{1000 * row['time']:8.1f} {row['loss']:11.4g} {row['reached']:>7}")
        ours = dict(rows)["LBFGS + ArmijoWolfe"]
        summary.append((name, ours["iterations"], reference["iterations"], ours["reached"]))
        print()
    print("minieye LBFGS + ArmijoWolfe vs SciPy L-BFGS-B, iterations to SciPy's final loss:")
    for name, ours, theirs, reached in summary:
        verdict = "ok" if reached == "yes" and ours <= 1.1 * theirs else "SLOWER"
        print(f"  {name:28} {ours:5d} vs {theirs:5d}  ({ours / max(theirs, 1):.2f}x)  {verdict}")


if __name__ == "__main__":
    main()
