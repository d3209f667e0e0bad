"""The trainer's fused Box and L-BFGS passes (kernels/optim.py) against the general NumPy formulas."""
from __future__ import annotations

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train
from minieye.functional.optim import box_clip, box_line_point, box_line_slope, box_reduce, box_tangent_dot, store_pair


def _box_case(n=300, seed=0):
    rng = np.random.default_rng(seed)
    lower = np.where(rng.random(n) < 0.2, -np.inf, 0.0)
    upper = np.where(rng.random(n) < 0.2, np.inf, 1.0)
    x = np.clip(rng.choice([0.0, 0.4, 1.0], n), lower, upper)  # on and between the bounds
    d, g = rng.standard_normal(n), rng.standard_normal(n)
    return x, d, g, lower, upper


@pytest.mark.parametrize("t", [0.0, 1e-3, 0.3, 2.0])
def test_fused_box_passes_match_the_numpy_formulas(t):
    x, d, g, lower, upper = _box_case()
    z = x + t * d
    want_point = np.clip(x + (np.clip(z, lower, upper) - x), lower, upper)
    np.testing.assert_allclose(box_line_point(x, d, t, lower, upper, np.empty_like(x)), want_point, rtol=0, atol=1e-15)
    assert box_line_slope(x, d, t, g, lower, upper) == pytest.approx(box_tangent_dot(z, d, g, lower, upper), rel=1e-12)
    np.testing.assert_array_equal(box_clip(z, lower, upper, np.empty_like(z)), np.clip(z, lower, upper))
    active = ((x <= lower) & (g > 0)) | ((x >= upper) & (g < 0))
    np.testing.assert_array_equal(box_reduce(x, g, lower, upper, np.empty_like(g)), np.where(active, 0.0, g))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_store_pair_writes_the_differences_and_their_products(dtype):
    rng = np.random.default_rng(1)
    x1, x0, g1, g0 = (rng.standard_normal(50) for _ in range(4))
    s_row, y_row = np.zeros(50, dtype), np.zeros(50, dtype)
    sy, yy = store_pair(x1, x0, g1, g0, s_row, y_row)
    np.testing.assert_array_equal(s_row, (x1 - x0).astype(dtype))
    np.testing.assert_array_equal(y_row, (g1 - g0).astype(dtype))
    s64, y64 = s_row.astype(np.float64), y_row.astype(np.float64)
    assert sy == pytest.approx(s64 @ y64, rel=1e-12) and yy == pytest.approx(y64 @ y64, rel=1e-12)


def _box_problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    target = rng.random((1, 1, 12, 12)).astype(dtype)
    source = layers.Source(value=np.full((1, 1, 14, 14), 0.5), dtype=dtype)
    blur = layers.Conv2D(1, 1, 3, bias=False, dtype=dtype)
    blur.weight.value[...] = 1.0 / 9.0
    blur.freeze()
    net = me.Sequential(source, blur)
    problem = train.Problem(net, losses.MSE(), (), target, constraints=[train.Box(source.value, 0.0, 1.0)])
    return problem, source


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lbfgs_keeps_pairs_in_the_networks_precision(dtype):
    problem, _ = _box_problem(dtype)
    orientation = train.LBFGS(history=4)
    train.Trainer(problem, orientation).run(max_iterations=6)
    assert orientation._s.dtype == dtype and orientation.pairs > 0


def test_fused_box_line_search_matches_the_general_path(monkeypatch):
    """The same run with the fused box path and with the general ProjectedPath formulas (float64)."""
    results = []
    for fused in (True, False):
        problem, source = _box_problem(np.float64)
        if not fused:
            problem._bounds = None  # Problem.project / reduce_gradient and ProjectedPath go the general way
        result = train.Trainer(problem).run(max_iterations=15)
        results.append((result.loss, source.value.value.copy(), result.iterations))
    (loss_a, image_a, it_a), (loss_b, image_b, it_b) = results
    assert it_a == it_b == 15
    assert loss_a == pytest.approx(loss_b, rel=1e-9)
    np.testing.assert_allclose(image_a, image_b, atol=1e-9)
    assert image_a.min() >= 0.0 and image_a.max() <= 1.0
