"""Small objectives shared by the trainer tests: Rosenbrock, a loss that overflows, least squares."""
from __future__ import annotations

import numpy as np

import minieye as me
from minieye import layers, losses, train
from minieye.core import Layer


class Rosenbrock(Layer):
    """Loss layer on a 2-vector: (1 - x)^2 + 100 (y - x^2)^2 (minimum 0 at (1, 1))."""

    n_inputs = 1

    def forward(self, p):
        x, y = float(p[0]), float(p[1])
        value = np.asarray((1 - x) ** 2 + 100 * (y - x * x) ** 2)

        def backward(dy, deltas):
            d = float(dy)
            return d * np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])

        return value, backward


class Blowup(Layer):
    """sum(exp(k * x)) / n: finite near 0, overflows to inf for a large step."""

    n_inputs = 1

    def forward(self, x):
        with np.errstate(over="ignore"):  # overflow is the point of this layer
            e = np.exp(30.0 * x)
            value = np.asarray(e.sum() / x.size + ((x - 0.5) ** 2).sum())

        def backward(dy, deltas):
            return float(dy) * (30.0 * e / x.size + 2 * (x - 0.5))

        return value, backward


class GradPoison(Layer):
    """Identity whose input gradient is NaN wherever |x| > 1e3: a finite loss with a non-finite
    gradient. Its buffer ``peak`` (the largest |x| seen by a forward pass) shows which
    evaluations the trainer kept."""

    n_inputs = 1

    def __init__(self):
        super().__init__()
        self.peak = np.zeros(1)

    def buffers(self):
        return {"peak": self.peak}

    def forward(self, x):
        x = np.asarray(x)
        self.peak[0] = max(self.peak[0], float(np.abs(x).max()))

        def backward(dy, deltas):
            return np.where(np.abs(x) > 1e3, np.nan, dy)

        return x.copy(), backward


def least_squares(seed=1, n=60, k=10):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, k)) * np.linspace(1, 5, k)  # condition number ~ 5^2
    w_true = rng.standard_normal((1, k))
    b = a @ w_true.T
    net = me.Sequential(layers.Dense(k, 1, bias=False, dtype="float64", init="zeros"))
    return net, train.Problem(net, losses.MSE(), a, b), w_true


def rosenbrock(start=(-1.2, 1.0)):
    source = layers.Source(value=np.array(start, dtype=np.float64))
    return source, train.Problem(me.Sequential(source), Rosenbrock())
