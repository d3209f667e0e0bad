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
                           data.draw(st.integers(0, min(2, max(shape[-2:])))), data.draw(st.integers(0, 12)))
    graph = losses.nonlocal_graph(guide, h, search=search, patch=patch, neighbors=k)
    check_graph(graph, guide, h, search, patch, min(k, most_candidates(shape, search)))


def most_candidates(shape, search):
    """The most in-image candidates any pixel of a (..., H, W) image has: K is lowered to this."""
    side = 2 * search + 1
    return min(side, shape[-2]) * min(side, shape[-1]) - 1


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
    guide = np.random.default_rng(2).random((3, 3))  # corners have 3 candidates, edges 5, the centre 8
    graph = losses.nonlocal_graph(guide, 0.3, search=1, patch=1, neighbors=6)
    i = np.arange(9)[:, None]
    candidates = np.array([3, 5, 3, 5, 8, 5, 3, 5, 3])
    assert ((graph.index[:, :6] == i).sum(axis=1) == np.maximum(6 - candidates, 0)).all()
    assert (graph.weight[graph.index == i] == 0).all()
    assert np.allclose(graph.weight.sum(axis=1), (graph.index != i).sum(axis=1))  # mean weight 1 per real edge
    check_graph(graph, guide, 0.3, 1, 1, 6)
    one = losses.nonlocal_graph(np.ones((1, 1)), 1.0, patch=1)  # no neighbour at all: every slot is the pixel
    assert one.neighbors == 2 and (one.index == 0).all() and (one.weight == 0).all()


def test_neighbors_beyond_the_candidates_are_lowered_to_their_count():
    """Slots no pixel can fill would be the pixel itself with weight 0 in every row: dropped, same loss."""
    rng = np.random.default_rng(12)
    guide = rng.random((2, 3))  # every pixel has 5 candidates
    graph = losses.nonlocal_graph(guide, 0.3, search=5, patch=1, neighbors=9)
    assert graph.neighbors == 5 + 2 and not (graph.index[:, :5] == np.arange(6)[:, None]).any()
    check_graph(graph, guide, 0.3, 5, 1, 5)
    big = losses.nonlocal_graph(rng.random((16, 16)), 0.3, neighbors=10**6)  # was 256 MB of slots
    assert big.neighbors == 11 * 11 - 1 + 2
    assert losses.nonlocal_graph(rng.random((1, 7)), 0.3, search=2).neighbors == 4 + 2
    assert losses.nonlocal_graph(rng.random((5, 5)), 0.3, search=0).neighbors == 2  # the forward edges only


def test_a_search_window_beyond_the_image_gives_the_same_graph_quickly():
    from minieye.functional.nonlocal_tv import _offsets
    guide = np.random.default_rng(13).random((2, 8, 8))
    wide = losses.nonlocal_graph(guide, 0.2, search=1000, neighbors=30)
    exact = losses.nonlocal_graph(guide, 0.2, search=7, neighbors=30)
    np.testing.assert_array_equal(wide.index, exact.index)
    np.testing.assert_array_equal(wide.weight, exact.weight)
    assert len(_offsets(1000, 8, 8)[0]) == 15 * 15 - 1  # not 2001**2 - 1 offsets to try
    offsets, searchable = _offsets(4, 1, 30)  # one row: only horizontal offsets can land inside
    assert (offsets[:, 0] == 0).all() and len(offsets) == 8 and searchable.all()
    thin = np.random.default_rng(14).random((1, 30))
    check_graph(losses.nonlocal_graph(thin, 0.2, search=4, patch=1, neighbors=5), thin, 0.2, 4, 1, 5)


def test_a_patch_beyond_the_image_is_refused():
    with pytest.raises(ShapeError, match=r"nonlocal_graph: expected patch at most max\(H, W\) = 8.*"
                                         r"got patch=9 for guide.shape == \(2, 8, 5\)"):
        losses.nonlocal_graph(np.zeros((2, 8, 5)), 0.1, patch=9)
    graph = losses.nonlocal_graph(np.random.default_rng(15).random((3, 5)), 0.2, patch=5, search=2, neighbors=3)
    check_graph(graph, np.random.default_rng(15).random((3, 5)), 0.2, 2, 5, 3)  # the bound itself still works


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
    ({"shape": lambda s: [2, 3.0, 4]}, r"expected graph shape a list of ints; got shape\[1\] == 3.0 in shape=\[2, 3.0, 4\]"),
    ({"shape": lambda s: 24}, r"graph shape a list of ints; got shape=24"),
    ({"weight": lambda a: [list(r) for r in a[:-1]] + [[1.0]]}, r"graph weight a float array.*not a rectangular array"),
    ({"index": lambda a: [list(r) for r in a[:-1]] + [[1]]}, r"graph index an integer array.*not a rectangular array"),
    ({"weight": lambda a: _poke(a, 5, np.nan)}, r"weights finite and >= 0"),
    ({"weight": lambda a: _poke(a, 5, np.inf)}, r"weights finite and >= 0"),
    ({"index": lambda a: _poke(a, a.size - 1, 3)}, r"in the rows of plane 1 \(pixels 12 \.\. 23\)"),  # -> plane 0
])
def test_a_damaged_graph_is_refused(changes, pattern):
    with pytest.raises(ShapeError, match=pattern):
        losses.NonLocalTV(_config_graph(**changes))


def test_a_graph_from_nonlocal_graph_is_used_without_copies_and_others_are_copied():
    graph = losses.nonlocal_graph(np.random.default_rng(8).random((2, 6, 7)).astype(np.float32), 0.2)
    assert losses.NonLocalTV(graph).graph is graph  # read-only arrays that own their memory: no copy
    spec = _config_graph()
    loss = losses.NonLocalTV(spec)
    assert not np.shares_memory(loss.graph.index, spec["index"]) and not loss.graph.index.flags.writeable
    spec["index"][:] = 10**6  # the caller's writable array changes later: the loss has its own copy
    loss.forward(np.zeros((2, 3, 4)))
    view = graph.index[:]  # read-only, but a view: copied (its base might be made writable)
    assert losses.NonLocalTV(losses.NonLocalGraph(graph.shape, view, graph.weight)).graph.index is not view
    wide = losses.NonLocalTV({**_config_graph(), "index": _config_graph()["index"].astype(np.int64)})
    assert wide.graph.index.dtype == np.int32  # one kernel signature


def test_memory_of_building_and_using_a_graph():
    """Peaks (tracemalloc) per pixel: the build holds no float64 copy of a float32 graph's weights,
    NonLocalTV copies nothing and forward + backward allocates only the gradient (and the value)."""
    import tracemalloc
    rng = np.random.default_rng(9)
    guide = rng.random((1, 1, 512, 64)).astype(np.float32)
    losses.NonLocalTV(losses.nonlocal_graph(guide[..., :8, :8], 0.2)).forward(guide[..., :8, :8])  # compiled
    n = guide.size
    tracemalloc.start()
    try:
        graph = losses.nonlocal_graph(guide, 0.2)
        build = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        value, backward = losses.NonLocalTV(graph).forward(guide)
        backward(1.0, DeltaSet())
        use = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    arrays = graph.index.nbytes + graph.weight.nbytes  # 96 B/px (K = 10: 12 slots of int32 + float32)
    padded = 12 * (512 + 4) * (64 + 4)  # the padded guide in float32, then float64
    buffer = max(me.options.get("nonlocal_chunk_bytes"),  # the float64 weights of one chunk of rows
                 me.options.get("nonlocal_parallel_min_rows") * 64 * 12 * 8)
    assert build < arrays + padded + buffer + 256 * 1024, (build / n, arrays / n)
    assert use < 2 * guide.nbytes + 256 * 1024, use / n  # a copy of the graph would add ~100 B/px


def test_float32_weights_built_in_chunks_equal_the_float64_build(monkeypatch):
    from minieye.kernels import _threads
    guide = np.random.default_rng(10).random((3, 1, 13, 9)).astype(np.float32)
    whole = losses.nonlocal_graph(guide.astype(np.float64), 0.3, search=3, neighbors=6)
    monkeypatch.setattr(_threads, "thread_count", lambda: 2)
    # 5 rows per chunk: chunks across planes, a short last one
    with me.options(nonlocal_parallel_min_rows=2, nonlocal_chunk_bytes=5 * 9 * 8 * 8):
        chunked = losses.nonlocal_graph(guide, 0.3, search=3, neighbors=6)
    np.testing.assert_array_equal(chunked.index, whole.index)
    np.testing.assert_array_equal(chunked.weight, whole.weight.astype(np.float32))


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
    from minieye.kernels import _threads
    guide = np.random.default_rng(3).random((2, 1, 23, 17))
    one = losses.nonlocal_graph(guide, h=0.3)
    monkeypatch.setattr(_threads, "thread_count", lambda: 3)  # uneven blocks, one across the plane boundary
    with me.options(nonlocal_parallel_min_rows=1):
        split = losses.nonlocal_graph(guide, h=0.3)
    np.testing.assert_array_equal(split.index, one.index)
    np.testing.assert_array_equal(split.weight, one.weight)
