"""Each pass of a convolution layer timed alone: forward, weight gradient, input gradient.

    PYTHONPATH=$PWD python benchmarks/bench_conv_passes.py                       # every case, 'auto'
    PYTHONPATH=$PWD python benchmarks/bench_conv_passes.py --algorithm gemm vgg4 lenet1
    PYTHONPATH=$PWD python benchmarks/bench_conv_passes.py --algorithm winograd --against auto vgg2 wide32
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=$PWD python benchmarks/bench_conv_passes.py

The shapes are the convolutions of ``bench_training.py`` (LeNet-5 at batch 64, the VGG block at
batch 32) and two larger 64-channel planes. One thread (ours and BLAS's), float32, CPU time of
this process (robust to other load), best of 5 blocks; GFLOP/s counts 2 x the forward's
multiply-adds for each pass. The plan (algorithm) is chosen once per case, as a layer does.

``--against B``: both algorithms in one process, blocks alternated (the machine is noisy), each
pass printed as ``A / B ms = ratio`` (best block of 7 each); no products column. ``--set KNOB=VALUE``
and ``--against-set KNOB=VALUE`` (integer knobs of ``minieye.options``, repeatable) give either side
its own knobs, e.g. products per sample against products over blocks of samples:

    PYTHONPATH=$PWD python benchmarks/bench_conv_passes.py --set conv_sample_block=0 --against-set conv_sample_block=1

``--base REV_OR_PATH``: the first side runs another tree of minieye (a git revision, or a folder holding
``minieye/``), imported beside this one as ``bench_plan_ab.py --base`` does, each tree with its own plan:

    PYTHONPATH=$PWD python benchmarks/bench_conv_passes.py --base ac26ebb k32 vgg2 vgg3 vgg4 wide64 den32 den512

The last column is a floor for one pass: the forward's products alone, one per sample
(``(c_out, c_in*kh*kw) @ (c_in*kh*kw, h_out*w_out)``, contiguous operands), through the BLAS the
kernels call (``kernels.conv_blas.library()``). Three passes at that speed are what an
unfolding algorithm could reach with this BLAS, whatever its bookkeeping costs.
"""
from __future__ import annotations

import argparse
import importlib
import time

import numpy as np

CASES = {  # name: (input shape, weight shape, padding)
    "lenet1": ((64, 1, 28, 28), (6, 1, 5, 5), 2), "lenet2": ((64, 6, 14, 14), (16, 6, 5, 5), 0),
    "vgg1": ((32, 3, 32, 32), (32, 3, 3, 3), 1), "vgg2": ((32, 32, 32, 32), (32, 32, 3, 3), 1),
    "vgg3": ((32, 32, 16, 16), (64, 32, 3, 3), 1), "vgg4": ((32, 64, 16, 16), (64, 64, 3, 3), 1),
    "wide32": ((16, 64, 32, 32), (64, 64, 3, 3), 1), "wide64": ((8, 64, 64, 64), (64, 64, 3, 3), 1),
    "k32": ((32, 16, 32, 32), (32, 16, 3, 3), 1),  # bench_kernels.py's 32x16x32x32 -> 32 row
    # the learned prior's denoiser (24 channels): a 512x512 image, and a training batch of patches
    "den512": ((1, 24, 512, 512), (24, 24, 3, 3), 1), "den32": ((16, 24, 32, 32), (24, 24, 3, 3), 1),
}

# Small planes (a fourth entry: the stride): bench_kernels.py's digits row; the convolution its convT
# row is the adjoint of (the transposed layer's forward is this one's input gradient, its input gradient
# this forward); few channels on 8x8 and 16x16 planes; many channels on 8x8 and 4x4 planes.
CASES.update({
    "digits": ((256, 1, 8, 8), (16, 1, 3, 3), 1), "convT": ((32, 16, 32, 32), (32, 16, 4, 4), 1, 2),
    "tiny4": ((256, 4, 8, 8), (8, 4, 3, 3), 1), "tiny32": ((256, 1, 16, 16), (32, 1, 3, 3), 1),
    "taps8": ((128, 32, 8, 8), (32, 32, 3, 3), 1), "taps4": ((256, 64, 4, 4), (64, 64, 3, 3), 1),
})


def case_arrays(name: str, rng: np.random.Generator, package=None):
    """x, w and the Geometry of one case (``package``'s Geometry: another tree's, under ``--base``)."""
    import minieye
    Geometry = (package or minieye).kernels.conv_geometry.Geometry
    x_shape, w_shape, pad, *stride = CASES[name]
    s = stride[0] if stride else 1
    x, w = rng.standard_normal(x_shape, dtype=np.float32), rng.standard_normal(w_shape, dtype=np.float32)
    return x, w, Geometry((s, s), (pad, pad), (1, 1), 1)


def best_seconds_once(run, repeats: int) -> float:
    start = time.process_time()
    for _ in range(repeats):
        run()
    return (time.process_time() - start) / repeats


def best_seconds(run, repeats: int) -> float:
    return min(best_seconds_once(run, repeats) for _ in range(5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", metavar="CASE", help=f"some of {sorted(CASES)} (default: all)")
    algorithms = ["auto", "direct", "gemm", "winograd", "winograd4", "taps"]
    parser.add_argument("--algorithm", default="auto", choices=algorithms)
    parser.add_argument("--against", choices=algorithms,
                        help="a second algorithm, alternated with the first in this process; prints ratios")
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                        help="an integer knob for the first side (repeatable)")
    parser.add_argument("--against-set", action="append", default=[], metavar="KNOB=VALUE",
                        help="an integer knob for the second side; implies a comparison")
    parser.add_argument("--base", metavar="REV_OR_PATH",
                        help="the first side runs this tree of minieye (bench_plan_ab.py's --base); implies a comparison")
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {sorted(CASES)}")
    import numba
    numba.set_num_threads(1)
    import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS the kernels call, so the limit below holds it)
    from threadpoolctl import threadpool_limits

    import minieye as me
    from bench_kernels import blas_kernels
    from minieye.kernels import conv as K
    from minieye.kernels.conv_plan import plan as make_plan
    from minieye.kernels import conv_blas
    print(f"blas={blas_kernels()} algorithm={args.algorithm} products on {conv_blas.library()}"
          + (f" against {args.against}" if args.against else "") + (f"; first side: {args.base}'s tree" if args.base else ""))
    rng = np.random.default_rng(0)
    first = dict(conv_algorithm=args.algorithm, **knobs(args.set))
    if args.against or args.against_set or args.base:
        second = dict(conv_algorithm=args.against or args.algorithm, **knobs(args.against_set))
        from bench_plan_ab import base_package
        base = base_package(args.base) if args.base else None
        with threadpool_limits(1):
            for name in args.cases or list(CASES):
                compare(name, first, second, rng, base)
        return
    with threadpool_limits(1), me.options(threads=1, **first):
        for name in args.cases or list(CASES):
            x, w, geometry = case_arrays(name, rng)
            x_shape, w_shape = x.shape, w.shape
            plan = make_plan(x.shape, w.shape, geometry)
            y = K.conv2d_forward(x, w, geometry, plan)
            dy = rng.standard_normal(y.shape, dtype=np.float32)
            flops = 2 * y.size * int(np.prod(w_shape[1:]))
            repeats = max(2, int(6e7 / flops))
            passes = {"forward": lambda: K.conv2d_forward(x, w, geometry, plan),
                      "weight grad": lambda: K.conv2d_grad_weight(x, dy, w_shape[2:], geometry, plan),
                      "input grad": lambda: K.conv2d_grad_input(dy, w, x_shape[2:], geometry, plan)}
            cells = [f"{p} {t * 1e3:6.2f} ms {flops / t / 1e9:4.0f} GF/s"
                     for p, t in ((p, best_seconds(run, repeats)) for p, run in passes.items())]
            k = int(np.prod(w_shape[1:]))
            wm = w.reshape(w_shape[0], k)
            cols = rng.standard_normal((k, y.shape[2] * y.shape[3]), dtype=np.float32)
            product = np.empty((w_shape[0], cols.shape[1]), dtype=np.float32)
            floor = best_seconds(lambda: [np.matmul(wm, cols, out=product) for _ in range(x_shape[0])], repeats)
            cells.append(f"products {floor * 1e3:6.2f} ms {flops / floor / 1e9:4.0f} GF/s")
            print(f"{name:7s} {plan.algorithm.name:8s} " + " | ".join(cells), flush=True)


def knobs(settings: list[str]) -> dict[str, int]:
    """``["conv_sample_block=1", ...]`` as knob values."""
    return {name: int(value) for name, value in (item.split("=", 1) for item in settings)}


def compare(name: str, first: dict, second: dict, rng: np.random.Generator, base=None) -> None:
    """One case, each pass under two sets of knobs (algorithm and others), blocks alternated; prints
    first / second = ratio. ``base``: the first side runs that package (another tree of minieye)."""
    import minieye
    x, w, _ = case_arrays(name, rng)
    x_shape, w_shape = x.shape, w.shape
    runs, names = {}, []
    for side, (settings, me) in enumerate(((first, base or minieye), (second, minieye))):
        K = importlib.import_module(f"{me.__name__}.kernels.conv")
        g = case_arrays(name, np.random.default_rng(0), me)[2]  # this side's own Geometry
        with me.options(threads=1, **settings):
            plan = importlib.import_module(f"{me.__name__}.kernels.conv_plan").plan(x.shape, w.shape, g)
        dy = rng.standard_normal(K.conv2d_forward(x, w, g, plan).shape, dtype=np.float32)
        runs[side] = {"forward": lambda K=K, g=g, p=plan: K.conv2d_forward(x, w, g, p),
                      "weight grad": lambda K=K, g=g, p=plan, dy=dy: K.conv2d_grad_weight(x, dy, w_shape[2:], g, p),
                      "input grad": lambda K=K, g=g, p=plan, dy=dy: K.conv2d_grad_input(dy, w, x_shape[2:], g, p)}
        if max(g.stride) > 1:  # the up-sampler's backward (dx and dw from one padding of its dy, here x)
            runs[side]["transposed backward"] = (lambda K=K, g=g, p=plan, dy=dy:
                                                 K.conv2d_backward_transposed(x, w, dy, g, p))
        names.append(plan.algorithm.name + (" per shift" if getattr(plan, "shifts", False) else ""))
    repeats = max(2, int(6e7 / (2 * dy.size * int(np.prod(w_shape[1:])))))
    best = {(a, p): float("inf") for a in runs for p in runs[a]}
    for _ in range(7):
        for side, passes in runs.items():
            for p, run in passes.items():
                best[side, p] = min(best[side, p], best_seconds_once(run, repeats))
    cells = [f"{p} {best[0, p] * 1e3:6.2f} / {best[1, p] * 1e3:6.2f} ms = {best[0, p] / best[1, p]:.2f}"
             for p in runs[0]]
    print(f"{name:7s} {names[0]} / {names[1]} " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
