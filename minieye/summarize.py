"""``summary(net, input_shape)``: a table of a network's layers, output shapes and parameter counts.

The output shapes come from a dry forward pass on zeros of ``input_shape``, layer by layer
(into nested Sequentials and Graphs), in evaluation mode so that nothing changes: no
running statistics move and no dropout mask is drawn; every layer's mode is restored
afterwards. Parameters shared by several layers are counted once, where they first
appear; the total is over the network's distinct parameters, as ``net.parameters()``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .checks import fail
from .core import Layer, forward_scope, unique_parameters, walk_layers
from .network import Graph, Sequential

__all__ = ["summary", "Summary", "SummaryRow"]


@dataclass
class SummaryRow:
    """One layer application: its place and label, its output shape(s), its parameter count (a
    network's row: everything inside it; a layer's: its own, 0 where shared ones were counted
    already), and how deep it is nested."""

    layer: str
    output_shape: tuple
    params: int
    depth: int
    shared: bool = False  # a layer whose parameters an earlier row counted


@dataclass
class Summary:
    """What ``summary`` found; ``str()`` (or ``print``) gives the table."""

    title: str
    rows: list[SummaryRow]
    total_params: int
    trainable_params: int
    input_shapes: list[tuple[int, ...]]

    def __str__(self) -> str:
        names = ["  " * row.depth + row.layer for row in self.rows]
        shapes = [_shape_text(row.output_shape) for row in self.rows]
        counts = ["shared" if row.shared else f"{row.params:,}" if row.params else "-" for row in self.rows]
        header = ("Layer", "Output shape", "Param #")
        width = [max(len(header[0]), *map(len, names)), max(len(header[1]), *map(len, shapes)),
                 max(len(header[2]), *map(len, counts))]
        line = "-" * (sum(width) + 4)
        out = [f"{self.title}, input {', '.join(map(str, self.input_shapes)) or 'none'}", line,
               f"{header[0]:<{width[0]}}  {header[1]:<{width[1]}}  {header[2]:>{width[2]}}", line]
        out += [f"{n:<{width[0]}}  {s:<{width[1]}}  {c:>{width[2]}}" for n, s, c in zip(names, shapes, counts)]
        frozen = self.total_params - self.trainable_params
        out += [line, f"Total parameters: {self.total_params:,}", f"Trainable parameters: {self.trainable_params:,}",
                f"Non-trainable parameters: {frozen:,}"]
        return "\n".join(out)

    __repr__ = __str__


def _shape_text(shape: Any) -> str:
    if shape and isinstance(shape[0], tuple):  # several outputs
        return ", ".join(map(str, shape))
    return str(shape)


def _shapes(y: Any) -> tuple:
    return tuple(np.shape(a) for a in y) if isinstance(y, tuple) else np.shape(y)


class _Tracer:
    """Runs the network layer by layer, one row per layer application."""

    def __init__(self) -> None:
        self.rows: list[SummaryRow] = []
        self.counted: set[int] = set()  # ids of parameters already shown

    def own_count(self, layer: Layer) -> int:
        fresh = [p for p in unique_parameters(layer) if id(p) not in self.counted]
        self.counted.update(id(p) for p in fresh)
        return sum(p.size for p in fresh)

    def run(self, layer: Layer, inputs: tuple, key: str, depth: int) -> Any:
        label = f"{key} {layer.label()}".strip()
        if isinstance(layer, Sequential):
            row = self.open_row(label, layer, depth)
            values = inputs
            for i, child in enumerate(layer.layers):
                values = (self.run(child, values, f"({i})", depth + 1),)
            y = values[0]
        elif isinstance(layer, Graph):
            row = self.open_row(label, layer, depth)
            y = self.run_graph(layer, inputs, depth)
        else:
            y = layer.forward(*inputs)[0]
            count = self.own_count(layer)
            row = SummaryRow(label, (), count, depth, shared=count == 0 and bool(layer.parameters()))
            self.rows.append(row)
        row.output_shape = _shapes(y)
        return y

    def open_row(self, label: str, network: Layer, depth: int) -> SummaryRow:
        """A network's row, placed above its children; its count is everything inside."""
        row = SummaryRow(label, (), sum(p.size for p in unique_parameters(network)), depth)
        self.rows.append(row)
        return row

    def run_graph(self, graph: Graph, inputs: tuple, depth: int) -> Any:
        structure = graph.structure()
        layers = graph.layers
        values: list[Any] = [None] * len(structure["nodes"])
        for index, x in zip(structure["inputs"], inputs):
            values[index] = x
        for index, node in enumerate(structure["nodes"]):
            if node is not None:
                position, sources = node
                key = f"(n{index} <- {', '.join(f'n{i}' for i in sources)})" if sources else f"(n{index})"
                values[index] = self.run(layers[position], tuple(values[i] for i in sources), key, depth + 1)
        outputs = tuple(values[i] for i in structure["outputs"])
        return outputs[0] if len(outputs) == 1 else outputs


def _input_shapes(input_shape: Any, where: str) -> list[tuple[int, ...]]:
    def is_shape(s: Any) -> bool:
        return isinstance(s, (tuple, list)) and all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                                                    and d >= 0 for d in s)

    if input_shape is None:
        return []
    if is_shape(input_shape) and (len(input_shape) == 0 or not isinstance(input_shape[0], (tuple, list))):
        return [tuple(int(d) for d in input_shape)] if len(input_shape) else []
    if isinstance(input_shape, (tuple, list)) and all(is_shape(s) for s in input_shape):
        return [tuple(int(d) for d in s) for s in input_shape]
    raise fail(where, "input_shape a tuple of ints (batch axis included), a list of them for several "
                      "inputs, or None for a network without inputs", f"input_shape={input_shape!r}")


def summary(net: Layer, input_shape: Sequence[int] | Sequence[Sequence[int]] | None, dtype: Any = None) -> Summary:
    """The layers of ``net`` with their output shapes and parameter counts, and the totals.

    ``input_shape``: the shape of one input batch, batch axis included, e.g. ``(1, 1, 28, 28)``;
    a list of shapes for a network with several inputs; None for one without (a Source first).
    ``dtype``: of the zeros fed in (default: the dtype of the network's first parameter, else
    float32). ``print(summary(net, shape))`` shows the table; the result also has ``rows``,
    ``total_params`` and ``trainable_params``. A shape the network cannot take raises the
    ValueError of the layer that refuses it.
    """
    where = "summary"
    if not isinstance(net, Layer):
        raise TypeError(f"{where}: expected a Layer or network; got {type(net).__name__}")
    shapes = _input_shapes(input_shape, where)
    if net.n_inputs is not None and len(shapes) != net.n_inputs:
        raise fail(f"{where}({net.label()})", f"{net.n_inputs} input shape(s), as the network takes",
                   f"{len(shapes)}: input_shape={input_shape!r}")
    params = net.parameters()
    dtype = np.dtype(dtype) if dtype is not None else (params[0].dtype if params else np.dtype(np.float32))
    inputs = tuple(np.zeros(s, dtype=dtype) for s in shapes)
    modes = [(layer, layer.training) for layer in walk_layers(net)]
    tracer = _Tracer()
    try:
        for layer, _ in modes:
            layer.training = False
        with forward_scope():
            tracer.run(net, inputs, "", 0)
    finally:
        for layer, mode in modes:
            layer.training = mode
    total = unique_parameters(net)
    return Summary(net.label(), tracer.rows, sum(p.size for p in total),
                   sum(p.size for p in total if not p.frozen), shapes)
