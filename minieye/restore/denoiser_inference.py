"""The denoiser's forward for inference only: values freed after their last reader, ReLU and Add in place.

apply_denoiser runs the network a dozen times per learned-prior restoration on planes of a
few hundred pixels a side. The ordinary forward (``net(x)``) keeps every node's value and a
backward closure until it returns, and writes each ReLU and each Add into a fresh array: at
24 channels and 600x600 pixels that is a 35 MB array per node, fresh pages and an extra pass
each time. ``infer(net, x)`` walks the same nodes with the layers' own forward, but

- drops each value after its last reader (a few full-size arrays live at once, not all),
- runs a ReLU whose input nobody else reads in place (the same kernel, one pass),
- adds into the first input of a two-input Add when nobody else reads it,
- with ``buffers`` (a dict the caller keeps between calls), writes the 2-D convolutions into
  arrays of earlier calls and of dead values: the same shapes come back at every call, and
  arrays of more than 32 MiB (glibc's largest reused heap block) are otherwise fresh pages,
  faulted in (and zeroed by the system) at every call.

Only arrays a convolution made (or an in-place step made from one) are overwritten or
reused, and only while no live value is a view of them (a Reshape's): never the caller's
input, nor a value another layer may have returned as a view, nor the output. The convolutions run the layers' kernels with the layers' plans, so the
output equals ``net(x)`` bit for bit (up to the sign of a zero sum;
tests/test_restore_denoiser_inference.py).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..checks import fail
from ..core import Layer, forward_scope, run_forward
from ..functional import conv as fconv
from ..functional.activation import relu
from ..network import Graph, Sequential

__all__ = ["infer", "inference_steps", "Step"]


class Step(NamedTuple):
    """One node of a network's forward: ``layer`` applied to the values of the nodes ``inputs``
    (None and no inputs: the network's input)."""
    layer: Layer | None
    inputs: tuple[int, ...]


def inference_steps(net: Layer) -> tuple[list[Step], int]:
    """The nodes of a Sequential or one-input, one-output Graph in order, and the output node's index."""
    if isinstance(net, Sequential):
        return [Step(None, ())] + [Step(layer, (i,)) for i, layer in enumerate(net.layers)], len(net.layers)
    if not isinstance(net, Graph):
        raise fail("denoiser inference", "a Sequential or Graph network", type(net).__name__)
    structure, layers = net.structure(), net.layers
    if len(structure["inputs"]) != 1 or len(structure["outputs"]) != 1:
        raise fail("denoiser inference", "a network of one input and one output",
                   f"{len(structure['inputs'])} inputs, {len(structure['outputs'])} outputs")
    steps = [Step(None, ()) if node is None else Step(layers[node[0]], tuple(node[1]))
             for node in structure["nodes"]]
    return steps, structure["outputs"][0]


def _last_reads(steps: list[Step], output: int) -> list[int]:
    """For each node, the index of the last node that reads its value (the output: past the end)."""
    last = [-1] * len(steps)
    for index, step in enumerate(steps):
        for i in step.inputs:
            last[i] = index
    last[output] = len(steps)
    return last


def _makes_fresh_arrays(layer: Layer) -> bool:
    """Layers whose forward returns a new array of its own (never a view of an input)."""
    from .. import layers
    return type(layer) in (layers.Conv2D, layers.ConvTranspose2D)


def _take(buffers: dict, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A free array of ``buffers`` of that shape and dtype, or a new one."""
    free = buffers.get((shape, dtype))
    return free.pop() if free else np.empty(shape, dtype=dtype)


def _pooled_conv(layer: Layer, x: np.ndarray, buffers: dict) -> np.ndarray | None:
    """A Conv2D's or ConvTranspose2D's forward written into an array of ``buffers``, as the layer
    computes it (its plan, its kernels); None where the input is not what the layer takes as it is
    (the layer's own forward then runs, and checks)."""
    from .. import layers
    if x.ndim != 4 or x.shape[1] != layer.in_channels or x.dtype != layer.dtype or not x.flags.c_contiguous:
        return None
    w, bias = layer.checked_parameters()  # as its forward reads them (a weight replaced by hand: refused)
    geometry = layer.geometry
    if type(layer) is layers.Conv2D:
        out = fconv.check_kernel_fits(x.shape[2:], layer.kernel_size, geometry, layer.label())
        plan = fconv.conv_plan(x.shape, w.shape, geometry)
        return fconv.conv_forward(x, w, geometry, bias, plan, out=_take(buffers, (len(x), w.shape[0]) + out, x.dtype))
    out = fconv.transpose_output_size(x.shape[2:], layer.kernel_size, geometry, layer.output_padding, layer.label())
    shape = (len(x), w.shape[1] * layer.groups) + out
    road = fconv.transpose_plan(x.shape, w.shape, geometry, out, layer.label())
    return fconv.transpose_forward(x, w, bias, geometry, road, out, out=_take(buffers, shape, x.dtype))


def _alone(values: list, i: int) -> bool:
    """Whether no other live value may share memory with ``values[i]`` (a view made of it by a later
    node: overwriting or reusing it would change that value too)."""
    return not any(v is not None and j != i and np.may_share_memory(v, values[i]) for j, v in enumerate(values))


def _give_back(buffers: dict, array: np.ndarray) -> None:
    buffers.setdefault((array.shape, array.dtype), []).append(array)


def infer(net: Layer, x: np.ndarray, buffers: dict | None = None) -> np.ndarray:
    """``net(x)`` for a Sequential or one-input Graph network, with less memory and fewer passes.

    ``buffers``: a dict (empty at first) that keeps the convolutions' arrays from one call to the
    next (same shapes: e.g. the tiles of apply_denoiser); None: none kept.
    Shapes: x as the network takes it (e.g. (N, 2, H, W)) -> the network's output.
    """
    from .. import layers
    steps, output = inference_steps(net)
    last = _last_reads(steps, output)
    values: list[Any] = [None] * len(steps)
    owned = [False] * len(steps)  # the value is an array this function may overwrite
    values[0] = x
    with forward_scope():
        for index, step in enumerate(steps):
            if step.layer is None:
                continue
            args = [values[i] for i in step.inputs]
            # an input nobody reads after this step may be overwritten (not into the output: the caller keeps it),
            # unless a live value is a view of it (a Reshape's)
            free = [owned[i] and last[i] == index and step.inputs.count(i) == 1 and index != output
                    and _alone(values, i) for i in step.inputs]
            kind = type(step.layer)
            if kind is layers.ReLU and free[0] and args[0].flags.c_contiguous:
                values[index], owned[index] = relu(args[0], out=args[0]), True
            elif (kind is layers.Add and len(args) == 2 and free[0] and args[0].shape == args[1].shape
                  and args[0].dtype == args[1].dtype):
                values[index], owned[index] = np.add(args[0], args[1], out=args[0]), True
            else:
                pooled = (None if buffers is None or index == output or not _makes_fresh_arrays(step.layer)
                          else _pooled_conv(step.layer, args[0], buffers))
                values[index] = run_forward(step.layer, tuple(args))[0] if pooled is None else pooled
                owned[index] = _makes_fresh_arrays(step.layer)
            for i in step.inputs:
                if last[i] == index:
                    if buffers is not None and owned[i] and values[i] is not values[index] and _alone(values, i):
                        _give_back(buffers, values[i])
                    values[i] = None
    return values[output]
