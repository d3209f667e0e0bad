"""Non-local TV benchmark: graph construction and one forward + backward, minieye vs plain NumPy.

    .venv/bin/python benchmarks/bench_nonlocal_tv.py                  # (1, 1, 516, 516) float32, 2 threads
    .venv/bin/python benchmarks/bench_nonlocal_tv.py --size 256 --threads 1 --repeat 20
    .venv/bin/python benchmarks/bench_nonlocal_tv.py --memory --size 192   # peak bytes per pixel instead

The NumPy column is the vectorised formulation minieye replaced: per offset a squared
difference image box-filtered with scipy's uniform_filter, then argpartition over the
stacked distances; and the value/gradient with fancy indexing and np.bincount. Times are
medians of ``--repeat`` runs after a warm-up, both sides in one process (the machine
is shared: compare the ratio more than the absolute times). The guide is a natural
image (scikit-image's camera, tiled to the size) plus a little noise.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np

from minieye import losses
from minieye.core import DeltaSet


def numpy_graph(guide: np.ndarray, h: float, search: int, patch: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The same candidates, distances and top-K for one plane in vectorised NumPy (borders as the
    prototype: neighbour indices clipped, not skipped; enough for timing)."""
    from scipy.ndimage import uniform_filter

    height, width = guide.shape
    pad = np.pad(guide, search, mode="reflect")
    offsets, dists = [], []
    for dy in range(-search, search + 1):
        for dx in range(-search, search + 1):
            if (dy, dx) != (0, 0):
                shifted = pad[search + dy:search + dy + height, search + dx:search + dx + width]
                dists.append(uniform_filter((guide - shifted) ** 2, 2 * patch + 1, mode="reflect"))
                offsets.append((dy, dx))
    d_all = np.stack(dists, -1).reshape(height * width, -1)
    keep = np.argpartition(d_all, k, axis=1)[:, :k]
    d = np.take_along_axis(d_all, keep, 1)
    offsets = np.array(offsets)
    yy, xx = np.divmod(np.arange(height * width), width)
    index = np.clip(yy[:, None] + offsets[keep, 0], 0, height - 1) * width + \
        np.clip(xx[:, None] + offsets[keep, 1], 0, width - 1)
    w = np.exp(-(d - d.min(1, keepdims=True)) / h ** 2)
    return index, w * k / w.sum(1, keepdims=True)


def numpy_value_grad(u: np.ndarray, index: np.ndarray, w: np.ndarray, eps: float) -> tuple[float, np.ndarray]:
    diff = u[:, None] - u[index]
    m = np.sqrt(diff ** 2 + eps ** 2)
    g = w * diff / m
    return float((w * (m - eps)).sum()), g.sum(1) - np.bincount(index.ravel(), weights=g.ravel(), minlength=u.size)


def median_time(fn, repeat: int) -> float:
    fn()  # warm-up (Numba compiles or loads its cache here)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_bytes_per_pixel(guide: np.ndarray, h: float, search: int, patch: int, k: int) -> tuple[float, float]:
    """tracemalloc peaks per pixel: (nonlocal_graph alone, graph + NonLocalTV + forward + backward).

    Numba's own work arrays are not traced (they are per block of rows, not per pixel)."""
    import tracemalloc

    small = guide[..., :8, :8]
    losses.NonLocalTV(losses.nonlocal_graph(small, h)).forward(small)  # compile outside the trace
    x = np.random.default_rng(1).random(guide.shape).astype(guide.dtype)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        graph = losses.nonlocal_graph(guide, h, search=search, patch=patch, neighbors=k)
        build = tracemalloc.get_traced_memory()[1] - start
        value, backward = losses.NonLocalTV(graph).forward(x)
        backward(1.0, DeltaSet())
        total = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    return build / guide.size, total / guide.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=516)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--memory", action="store_true", help="print peak traced bytes per pixel (both dtypes)")
    args = parser.parse_args()
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))

    from skimage import data
    camera = data.camera().astype(np.float64) / 255
    reps = -(-args.size // camera.shape[0])
    tiled = np.tile(camera, (reps, reps))[:args.size, :args.size]
    rng = np.random.default_rng(0)
    guide = (tiled + 0.02 * rng.standard_normal(tiled.shape)).astype(args.dtype)[None, None]
    h, search, patch, k, eps = 0.05, 5, 2, 10, 1e-2
    if args.memory:
        for dtype in ("float32", "float64"):
            build, total = peak_bytes_per_pixel(guide.astype(dtype), h, search, patch, k)
            print(f"{dtype} {guide.shape}: peak {build:.0f} B/pixel for nonlocal_graph, "
                  f"{total:.0f} B/pixel with NonLocalTV forward + backward")
        return

    t_graph = median_time(lambda: losses.nonlocal_graph(guide, h, search=search, patch=patch, neighbors=k),
                          args.repeat)
    t_graph_np = median_time(lambda: numpy_graph(guide[0, 0], h, search, patch, k), max(1, args.repeat // 3))
    loss = losses.NonLocalTV(losses.nonlocal_graph(guide, h, search=search, patch=patch, neighbors=k), eps=eps)
    x = rng.random(guide.shape).astype(args.dtype)

    def step():
        value, backward = loss.forward(x)
        return value, backward(1.0, DeltaSet())

    index, weight = loss.graph.index, loss.graph.weight
    t_step = median_time(step, args.repeat * 3)
    t_step_np = median_time(lambda: numpy_value_grad(x.ravel(), index, weight, eps), args.repeat)
    print(f"non-local TV, guide {guide.shape} {args.dtype}, search {search}, patch {patch}, K {k}, "
          f"{args.threads} thread(s)")
    print(f"{'':28}{'minieye':>10}{'NumPy':>10}{'ratio':>8}")
    for label, ours, ref in (("graph (nonlocal_graph)", t_graph, t_graph_np),
                             ("forward + backward", t_step, t_step_np)):
        print(f"{label:28}{ours * 1e3:>8.1f}ms{ref * 1e3:>8.1f}ms{ours / ref:>8.2f}")


if __name__ == "__main__":
    main()
