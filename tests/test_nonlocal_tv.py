"""NonLocalTV and nonlocal_graph against slow NumPy references that follow the math of
minieye/losses/nonlocal_tv.py's docstring, plus errors, dtypes, saving and a denoising check."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minieye as me
from minieye import losses
from minieye.checks import ShapeError
from minieye.core import DeltaSet


# -- references --------------------------------------------------------------------------------------
def reference_distances(guide, search, patch):
    """{flat i: {flat j: d(i, j)}} over every in-image candidate j of every pixel i."""
    g = np.asarray(guide, dtype=np.float64)
    height, width = g.shape[-2:]
    planes = g.reshape(-1, height, width)
    side = 2 * patch + 1
    out = {}
    for p, plane in enumerate(planes):
        padded = np.pad(plane, patch, mode="reflect")
        for y in range(height):
            for x in range(width):
                i = (p * height + y) * width + x
                out[i] = {}
                for dy in range(-max(search, 1), max(search, 1) + 1):
                    for dx in range(-max(search, 1), max(search, 1) + 1):
                        y2, x2 = y + dy, x + dx
                        if (dy, dx) == (0, 0) or not (0 <= y2 < height and 0 <= x2 < width):
                            continue
                        a = padded[y:y + side, x:x + side]
                        b = padded[y2:y2 + side, x2:x2 + side]
                        out[i][i + dy * width + dx] = (np.mean((a - b) ** 2), max(abs(dy), abs(dx)) <= search)
    return out


def reference_weights(ds, h):
    """Weights of one row from its distances (None marks a self slot, weight 0)."""
    real = [d for d in ds if d is not None]
    if not real:
        return np.zeros(len(ds))
    w = np.array([0.0 if d is None else np.exp(-(d - min(real)) / h ** 2) for d in ds])
    return w * len(real) / w.sum()


def check_graph(graph, guide, h, search, patch, k):
    """The kernel's graph follows the math: see the module docstring of minieye/losses/nonlocal_tv.py."""
    guide = np.asarray(guide, dtype=np.float64)
    height, width = guide.shape[-2:]
    dist = reference_distances(guide, search, patch)
    assert graph.shape == guide.shape and graph.index.shape == (guide.size, k + 2)
    for i, row in enumerate(graph.index):
        y, x = divmod(i % (height * width), width)
        candidates = {j: d for j, (d, searchable) in dist[i].items() if searchable}
        best = sorted(candidates.values())[:k]
        chosen = [int(j) for j in row[:k] if j != i]
        assert len(chosen) == len(best) == len(set(chosen)), (i, row)
        assert all(j in candidates for j in chosen), (i, row)   # in the window, inside the image and plane
        got = [candidates[j] for j in chosen]
        np.testing.assert_allclose(got, best, rtol=1e-9, atol=1e-12)  # the K smallest (ties in any order)
        assert (np.diff(got) >= -1e-12).all()  # sorted by distance
        if 0 < len(best) < len(candidates) and sorted(candidates.values())[k] > best[-1] * (1 + 1e-6) + 1e-12:
            assert set(chosen) == {j for j, d in candidates.items() if d <= best[-1]}
        assert list(row[len(chosen):k]) == [i] * (k - len(chosen))  # self padding
        assert row[k] == (i + 1 if x + 1 < width else i) and row[k + 1] == (i + width if y + 1 < height else i)
        ds = got + [None] * (k - len(chosen)) + [dist[i][j][0] if j != i else None for j in row[k:]]
        np.testing.assert_allclose(graph.weight[i], reference_weights(ds, h), rtol=1e-9, atol=1e-12)


def reference_value_grad(x, graph, eps):
    u = np.asarray(x, dtype=np.float64).ravel()
    diff = u[:, None] - u[graph.index]
    m = np.sqrt(diff ** 2 + eps ** 2)
    g = graph.weight * diff / m
    grad = g.sum(axis=1) - np.bincount(graph.index.ravel(), weights=g.ravel(), minlength=u.size)
    return (graph.weight * (m - eps)).sum() / u.size, (grad / u.size).reshape(np.shape(x))


# -- the graph ---------------------------------------------------------------------------------------
@settings(max_examples=25)
@given(st.data())
def test_graph_matches_the_reference(data):
    lead = data.draw(st.lists(st.integers(1, 2), max_size=2), label="leading axes")
    shape = (*lead, data.draw(st.integers(1, 7), label="H"), data.draw(st.integers(1, 7), label="W"))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    guide = rng.random(shape)
    h, search, patch, k = (data.draw(st.sampled_from([0.05, 0.2, 1.0])), data.draw(st.integers(0, 3)),
                           data.draw(st.integers(0, 2)), data.draw(st.integers(0, 12)))
    graph = losses.nonlocal_graph(guide, h, search=search, patch=patch, neighbors=k)
    check_graph(graph, guide, h, search, patch, k)


def test_planes_are_never_connected_and_borders_are_skipped():
    guide = np.random.default_rng(1).random((2, 3, 6, 5))
    graph = losses.nonlocal_graph(guide, 0.2, search=3, patch=1, neighbors=8)
    rows = np.arange(guide.size)
    assert (graph.index // 30 == (rows // 30)[:, None]).all()
    y, x = np.divmod(graph.index % 30, 5)
    y0, x0 = np.divmod(rows % 30, 5)
    assert (np.abs(y - y0[:, None]) <= 3).all() and (np.abs(x - x0[:, None]) <= 3).all()  # no wrap-around
    check_graph(graph, guide, 0.2, 3, 1, 8)


def test_more_neighbours_than_candidates_pads_with_the_pixel_itself():
    guide = np.random.default_rng(2).random((1, 2, 3))  # at most 5 candidates per pixel
    graph = losses.nonlocal_graph(guide, 0.3, search=5, patch=1, neighbors=9)
    i = np.arange(6)[:, None]
    assert ((graph.index[:, :9] == i).sum(axis=1) == 9 - 5).all()
    assert (graph.weight[graph.index == i] == 0).all()
    assert np.allclose(graph.weight.sum(axis=1), (graph.index != i).sum(axis=1))  # mean weight 1 per real edge
    one = losses.nonlocal_graph(np.ones((1, 1)), 1.0)  # no neighbour at all: every slot is the pixel, weight 0
    assert (one.index == 0).all() and (one.weight == 0).all()


def test_a_flat_region_keeps_its_nearest_candidates_with_equal_weights():
    graph = losses.nonlocal_graph(np.zeros((9, 9)), 0.1, search=2, patch=1, neighbors=4)
    centre = 4 * 9 + 4
    assert sorted(graph.index[centre, :4] - centre) == [-9, -1, 1, 9]
    assert np.allclose(graph.weight[centre], 1.0)


def test_weights_prefer_similar_patches():
    guide = np.zeros((8, 8))
    guide[:, 4:] = 1.0  # a vertical edge: left and right halves
    graph = losses.nonlocal_graph(guide, 0.1, search=3, patch=1, neighbors=6)
    i = 3 * 8 + 3  # just left of the edge
    right = graph.index[i] % 8 >= 4
    assert graph.weight[i][right].max() < 1e-3 * graph.weight[i][~right].max()


# -- value and gradient --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1, 7, 6), (2, 3, 5, 4), (4, 9)])
@pytest.mark.parametrize("eps", [1e-2, 0.5])
def test_value_and_gradient_match_the_reference(shape, eps):
    rng = np.random.default_rng(3)
    graph = losses.nonlocal_graph(rng.random(shape), 0.2, search=2, patch=1, neighbors=5)
    x = rng.standard_normal(shape)
    value, backward = losses.NonLocalTV(graph, eps=eps).forward(x)
    want_value, want_grad = reference_value_grad(x, graph, eps)
    assert value.shape == () and np.isclose(value, want_value, rtol=1e-12)
    np.testing.assert_allclose(backward(2.5, DeltaSet()), 2.5 * want_grad, rtol=1e-10, atol=1e-14)


def test_float32_stays_float32_and_close_to_float64():
    rng = np.random.default_rng(4)
    guide = rng.random((1, 1, 12, 10)).astype(np.float32)
    graph = losses.nonlocal_graph(guide, 0.2)
    assert graph.index.dtype == np.int32 and graph.weight.dtype == np.float32
    assert not graph.index.flags.writeable and not graph.weight.flags.writeable
    loss = losses.NonLocalTV(graph)
    x = rng.standard_normal(guide.shape).astype(np.float32)
    before = x.copy()
    v32, b32 = loss.forward(x)
    g32 = b32(np.float32(1.0), DeltaSet())
    v64, b64 = loss.forward(x.astype(np.float64))
    g64 = b64(1.0, DeltaSet())
    assert v32.dtype == np.float32 and g32.dtype == np.float32 and v64.dtype == np.float64 and g64.dtype == np.float64
    assert np.isclose(v32, v64, rtol=1e-5) and np.allclose(g32, g64, rtol=1e-4, atol=1e-6)
    assert np.array_equal(x, before)


# -- errors ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, pattern", [
    ({"h": 0}, r"nonlocal_graph: expected h a finite number > 0.*h=0"),
    ({"h": -1.0}, r"h=-1"),
    ({"h": float("nan")}, r"h=nan"),
    ({"h": True}, r"h=True"),
    ({"h": 0.1, "search": -1}, r"search a non-negative integer.*search=-1"),
    ({"h": 0.1, "patch": 1.5}, r"patch a non-negative integer.*patch=1.5"),
    ({"h": 0.1, "neighbors": "4"}, r"neighbors a non-negative integer"),
])
def test_bad_graph_arguments_are_named(kwargs, pattern):
    with pytest.raises(ShapeError, match=pattern):
        losses.nonlocal_graph(np.zeros((4, 4)), **kwargs)


@pytest.mark.parametrize("guide, pattern", [
    (np.zeros(5), r"guide a non-empty \(\.\.\., H, W\) array; got guide.shape == \(5,\)"),
    (np.zeros((0, 4)), r"guide.shape == \(0, 4\)"),
    (np.array([[0.0, np.nan]]), r"finite guide; got 1 NaN/Inf"),
    (np.zeros((3, 3), complex), r"guide of a real numeric dtype"),
])
def test_bad_guides_are_named(guide, pattern):
    with pytest.raises(ShapeError, match=pattern):
        losses.nonlocal_graph(guide, 0.1)


def test_wrong_input_shape_names_the_layer_and_both_shapes():
    loss = losses.NonLocalTV(losses.nonlocal_graph(np.zeros((1, 1, 4, 5)), 0.1), name="prior")
    with pytest.raises(ShapeError, match=r"NonLocalTV\(slots=12, eps=0.01\) 'prior' forward: expected x.shape == \(1, 1, 4, 5\).*"
                                         r"got x.shape == \(1, 1, 5, 4\)"):
        loss.forward(np.zeros((1, 1, 5, 4)))
    with pytest.raises(ShapeError, match=r"eps a finite number > 0"):
        losses.NonLocalTV(loss.graph, eps=0)


def _config_graph(**changes):
    graph = losses.nonlocal_graph(np.random.default_rng(5).random((2, 3, 4)), 0.2, search=1, neighbors=3)
    spec = {"shape": list(graph.shape), "index": graph.index.copy(), "weight": graph.weight.copy()}
    for key, edit in changes.items():
        spec[key] = edit(spec[key])
    return spec


def _poke(a, position, value):
    a = a.copy()
    a.flat[position] = value
    return a


@pytest.mark.parametrize("changes, pattern", [
    ({"index": lambda a: _poke(a, 7, 24)}, r"graph indices in \[0, 24\)"),
    ({"index": lambda a: _poke(a, 7, -1)}, r"graph indices in \[0, 24\)"),
    ({"index": lambda a: _poke(a, 0, 12)}, r"within its own \(H, W\) plane"),  # pixel 0 -> the second plane
    ({"index": lambda a: a.astype(float)}, r"graph index an integer array"),
    ({"weight": lambda a: _poke(a, 3, -0.5)}, r"weights finite and >= 0"),
    ({"weight": lambda a: a[:, :2]}, r"graph weight a float array of the index's shape"),
    ({"shape": lambda s: [2, 3, 5]}, r"graph index an integer array of shape \(30, slots\)"),
    ({"shape": lambda s: [24]}, r"graph shape \(\.\.\., H, W\)"),
])
def test_a_damaged_graph_is_refused(changes, pattern):
    with pytest.raises(ShapeError, match=pattern):
        losses.NonLocalTV(_config_graph(**changes))


def test_a_damaged_file_is_refused_on_load():
    loss = losses.NonLocalTV(_config_graph(), eps=0.05)
    meta, arrays = me.io.encode(loss)
    copy = me.io.decode(meta, arrays)
    x = np.random.default_rng(6).standard_normal((2, 3, 4))
    assert np.array_equal(copy(x), loss(x)) and copy.eps == 0.05
    name = meta["layers"][0]["config"]["graph"]["index"]["$array"]
    arrays[name] = _poke(arrays[name], 0, 10**6)
    with pytest.raises(ValueError, match=r"could not be rebuilt.*graph indices in \[0, 24\)"):
        me.io.decode(meta, arrays)


# -- a prior that helps ---------------------------------------------------------------------------------------
def test_denoising_with_a_graph_from_the_clean_image_reduces_the_error():
    """min 0.5 |u - noisy|^2 / n + lam R(u), graph from the clean image: closer to clean than noisy is."""
    scipy_optimize = pytest.importorskip("scipy.optimize")
    yy, xx = np.mgrid[:32, :32]
    clean = ((yy // 8 + xx // 8) % 2).astype(np.float64) * 0.6 + 0.2 + 0.2 * (np.hypot(yy - 16, xx - 16) < 7)
    noisy = clean + 0.15 * np.random.default_rng(7).standard_normal(clean.shape)
    loss = losses.NonLocalTV(losses.nonlocal_graph(clean, h=0.05), eps=1e-3)
    lam, n = 0.02, clean.size

    def objective(u):
        value, backward = loss.forward(u.reshape(clean.shape))
        r = u - noisy.ravel()
        return 0.5 * r @ r / n + lam * float(value), r / n + lam * backward(1.0, DeltaSet()).ravel()

    u = scipy_optimize.minimize(objective, noisy.ravel(), jac=True, method="L-BFGS-B",
                                options={"maxiter": 300}).x.reshape(clean.shape)
    rmse = lambda a: float(np.sqrt(np.mean((a - clean) ** 2)))  # noqa: E731
    assert rmse(u) < 0.5 * rmse(noisy), (rmse(u), rmse(noisy))


def test_the_tour_in_docs_runs_and_the_second_pass_beats_tv(capsys):
    from tests.doc_code import run_document
    run_document("docs/nonlocal_tv.md")
    out = capsys.readouterr().out
    assert "(64, 64) (4096, 12) int32 float32" in out and "float32 (64, 64) float32" in out
    noisy, tv, nltv = map(float, re.search(r"noisy ([\d.]+) dB, TV ([\d.]+) dB, TV then NLTV ([\d.]+) dB", out).groups())
    assert tv > noisy + 5 and nltv > tv + 1.0, out


def test_rows_split_over_threads_give_the_same_graph(monkeypatch):
    from minieye.kernels import _threads, nonlocal_tv as knl
    guide = np.random.default_rng(3).random((2, 1, 23, 17))
    one = losses.nonlocal_graph(guide, h=0.3)
    monkeypatch.setattr(knl, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(_threads, "thread_count", lambda: 3)  # uneven blocks, one across the plane boundary
    split = losses.nonlocal_graph(guide, h=0.3)
    np.testing.assert_array_equal(split.index, one.index)
    np.testing.assert_array_equal(split.weight, one.weight)
