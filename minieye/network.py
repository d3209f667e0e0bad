"""Networks: Sequential (a chain) and Graph (a DAG with fan-out and shared layers).

Both are Layers, so they nest. Forward runs the layers and keeps their backward
closures; backward runs them in reverse. In a Graph a node that feeds several
others receives the sum of their gradients, and a layer object placed at several
nodes shares its parameters (its gradients add up in the DeltaSet).

A node is *alive* when some input of the network or some unfrozen parameter reaches
it. Dead nodes (a frozen source, a constant branch) keep no backward and are never
asked for an input gradient.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator, NoReturn

import numpy as np

from .checks import check_input_count, fail, fail_type
from .core import (Backward, DeltaSet, Layer, Parameter, current_scope, forward_scope, input_grad,
                   input_grad_needed, run_forward, unique_parameters, walk_layers)

__all__ = ["Sequential", "Graph", "Node", "evaluation_mode"]


_TRAINABLE = "network.trainable"  # forward-scope key: id(layer) -> whether it has an unfrozen parameter


def _trainable(layer: Layer) -> bool:
    """``layer.trainable``, computed once per forward pass (outermost call) for each layer.

    Networks ask it of every child in forward, and nested networks would otherwise walk
    their parameters again at each level: this memo (in the pass's scope) makes it one
    walk per pass. Frozen flags are read when the pass starts using a layer; freezing a
    parameter in the middle of one pass is not seen until the next.
    """
    scope = current_scope()
    memo = scope.setdefault(_TRAINABLE, {}) if scope is not None else {}
    hit = memo.get(id(layer))  # the layer lives at least as long as the pass
    if hit is None:
        if isinstance(layer, (Sequential, Graph)):
            hit = any(_trainable(child) for child in layer.sublayers())
        else:
            hit = layer.trainable
        memo[id(layer)] = hit
    return hit


def _check_gradient_shape(where: str, dy: Any, y: Any) -> Any:
    """``dy`` checked against the output ``y``: one array, or (for several outputs) a tuple
    holding an array or None (zero) per output."""
    if isinstance(y, tuple):
        if not isinstance(dy, (tuple, list)) or len(dy) != len(y):
            got = f"a {type(dy).__name__} of length {len(dy)}" if isinstance(dy, (tuple, list)) \
                else f"one {type(dy).__name__} of shape {np.shape(dy)}"
            raise fail(where, f"a tuple of {len(y)} output gradients (None for an unused output)", got)
        return tuple(None if g is None else _check_gradient_shape(where, g, out) for g, out in zip(dy, y))
    dy = np.asarray(dy)
    if dy.shape != np.shape(y):
        raise fail(where, f"dy of the output's shape {np.shape(y)}", f"dy.shape == {dy.shape}")
    return dy


class Sequential(Layer):
    """Layers applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    Shapes: whatever the first layer takes, to whatever the last layer gives.
    """

    def __init__(self, *layers: Layer, name: str | None = None):
        super().__init__(name)
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        where = f"Sequential {name!r}" if name else "Sequential"  # no layers yet: describe() would say [0]
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise fail_type(where, "Layer instances", f"item {i} is {type(layer).__name__}", value=layer)
            if i > 0 and layer.n_inputs not in (1, None):
                raise fail(where, "single-input layers after the first",
                           f"item {i} ({layer.label()}) takes {layer.n_inputs} inputs", "use a Graph")
        self.layers = list(layers)

    @property
    def n_inputs(self) -> int | None:  # type: ignore[override]  # read each time: `layers` may change
        try:
            return self.layers[0].n_inputs if self.layers else 1
        except RecursionError as exc:  # the first layer is this network, or holds it first
            _refuse_loop(self, exc)

    def parameters(self) -> list[Parameter]:
        try:
            return unique_parameters(*self.layers)
        except RecursionError as exc:
            _refuse_loop(self, exc)

    @property
    def trainable(self) -> bool:
        try:
            return any(layer.trainable for layer in self.layers)
        except RecursionError as exc:
            _refuse_loop(self, exc)

    def describe(self) -> str:
        return f"Sequential[{len(self.layers)}]"

    def sublayers(self) -> list[Layer]:
        return list(self.layers)

    def __repr__(self) -> str:
        return _tree(self, [(f"({i})", layer) for i, layer in enumerate(self.layers)], [])

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def forward(self, *inputs: Any) -> tuple[Any, Backward]:
        steps: list[Backward | None] = []
        trainable: list[bool] = []
        alive = len(inputs) > 0  # the network's inputs may need a gradient; a source chain starts dead
        try:  # free unless raised: a network put inside itself recurses without end
            if self.layers and len(inputs) != self.n_inputs and self.n_inputs is not None:
                check_input_count(self, len(inputs), f"{self.label()} forward",
                                  hint="a layer takes its inputs as separate arguments; a Source takes none")
            with forward_scope():
                values: tuple = inputs
                for layer in self.layers:
                    y, backward = run_forward(layer, values)
                    trainable.append(_trainable(layer))
                    alive = alive or trainable[-1]
                    steps.append(backward if alive else None)
                    values = (y,)
        except RecursionError as exc:
            _refuse_loop(self, exc)
        output = values[0] if len(values) == 1 else values

        def backward(dy: Any, deltas: DeltaSet) -> Any:
            grad = _check_gradient_shape(f"{self.label()} backward", dy, output)
            wanted_by_caller = input_grad_needed()
            # when our input is data, layers before the first trainable one need no backward
            start = 0 if wanted_by_caller else next((i for i, t in enumerate(trainable) if t), len(steps))
            for index in range(len(steps) - 1, start - 1, -1):
                step = steps[index]
                if step is None:  # everything before this point is dead
                    return None
                needed = wanted_by_caller if index == 0 else index > start and steps[index - 1] is not None
                with input_grad(needed):
                    grad = step(grad, deltas)
            return grad if start == 0 else None

        return output, backward


def _refuse_loop(network: Layer, exc: RecursionError) -> NoReturn:
    """A ValueError naming the loop when the network holds itself (at any depth), else ``exc``."""
    loop = None if getattr(exc, "minieye_no_loop", False) else _find_loop(network)
    if loop is None:
        exc.minieye_no_loop = True  # type: ignore[attr-defined]  # the outer networks need not look
        raise exc
    chain = " -> ".join(layer.label() for layer in loop)
    raise fail(network.label(), "no network inside itself", f"{chain} (each inside the one before)",
               "a layer may be used twice, but a network cannot contain itself") from None


def _find_loop(root: Layer) -> list[Layer] | None:
    """Layers ``[X, ..., X]``, each a child (``sublayers()``) of the one before, when some
    network under ``root`` contains itself; else None. Depth first, without recursion."""
    path, on_path, finished = [root], {id(root)}, set()
    children = [iter(root.sublayers())]
    while children:
        child = next(children[-1], None)
        if child is None:
            children.pop()
            on_path.discard(id(path[-1]))
            finished.add(id(path.pop()))
        elif id(child) in on_path:
            return path[[id(layer) for layer in path].index(id(child)):] + [child]
        elif id(child) not in finished:
            path.append(child)
            on_path.add(id(child))
            children.append(iter(child.sublayers()))
    return None


def _tree(network: Layer, rows: list[tuple[str, "Layer | str"]], footer: list[str]) -> str:
    """PyTorch-like nested text: the network's label, then one indented line per child
    (a nested network opens its own block), then ``footer`` lines."""
    head = type(network).__name__ + (f" {network.name!r}" if network.name else "")
    lines = [f"{head}("]
    for key, item in rows:
        text = item if isinstance(item, str) else repr(item)
        lines.append(f"  {key}: " + text.replace("\n", "\n  "))
    lines += [f"  {line}" for line in footer]
    return "\n".join(lines) + "\n)" if len(lines) > 1 else f"{head}()"


@dataclass(frozen=True)
class Node:
    """A value in a Graph: a graph input or the output of one layer application."""

    graph: "Graph"
    index: int

    def __repr__(self) -> str:
        return f"Node({self.index})"


@dataclass
class _Step:
    layer: Layer | None  # None for a graph input
    inputs: tuple[int, ...]


class Graph(Layer):
    """A directed acyclic network built node by node.

    >>> g = Graph(); x = g.input()
    >>> h = g.add(layers.Dense(3, 3), x); g.output(g.add(layers.Add(), x, h))

    Forward takes one array per ``input()`` (in the order they were made) and
    returns one array per ``output()`` node (a tuple when there are several).
    Backward takes the output gradient(s), ``None`` standing for zero on an output
    the loss does not use, and returns one input gradient per input (a tuple when
    there are several).

    Shapes: whatever its layers take and give; one array per input node in, one per output node out.
    """

    def __init__(self, name: str | None = None):
        super().__init__(name)
        self._steps: list[_Step] = []
        self._inputs: list[int] = []
        self._outputs: list[int] = []
        self._layers: list[Layer] | None = None  # distinct layers, rebuilt after add()

    # -- building -----------------------------------------------------------------
    def input(self) -> Node:
        self._steps.append(_Step(None, ()))
        self._inputs.append(len(self._steps) - 1)
        return Node(self, len(self._steps) - 1)

    def add(self, layer: Layer, *inputs: Node) -> Node:
        where = f"{self.label()}.add({layer.label() if isinstance(layer, Layer) else layer!r})"
        if not isinstance(layer, Layer):
            raise fail_type(where, "a Layer", type(layer).__name__, value=layer)
        if any(inner is self for inner in walk_layers(layer)):  # forward would recurse without end
            raise fail(where, "a layer other than the graph itself or a network holding it",
                       "the graph" if layer is self else f"{layer.label()}, which holds this graph")
        for node in inputs:
            if not isinstance(node, Node) or node.graph is not self:
                raise fail(where, "input nodes made by this graph's input() or add()", f"{node!r:.60}")
        if layer.n_inputs is not None and len(inputs) != layer.n_inputs:
            raise fail(where, f"{layer.n_inputs} input node(s)", f"{len(inputs)}")
        self._steps.append(_Step(layer, tuple(n.index for n in inputs)))
        self._layers = None
        return Node(self, len(self._steps) - 1)

    def output(self, *nodes: Node) -> None:
        """Declare the output node(s); may be called once, with all of them."""
        for node in nodes:
            if not isinstance(node, Node) or node.graph is not self:
                raise fail(f"{self.label()}.output", "nodes made by this graph", f"{node!r:.60}")
        if not nodes:
            raise fail(f"{self.label()}.output", "at least one node", "none")
        self._outputs = [n.index for n in nodes]

    # -- introspection (used by io and by users) ----------------------------------
    @property
    def n_inputs(self) -> int:  # type: ignore[override]
        return len(self._inputs)

    @property
    def layers(self) -> list[Layer]:
        """Distinct layers in the order they were first added (a new list each time)."""
        return list(self._distinct_layers())

    def _distinct_layers(self) -> list[Layer]:
        # cached: parameters() and trainable ask for it often; add() clears it
        if self._layers is None:
            self._layers = list({id(s.layer): s.layer for s in self._steps if s.layer is not None}.values())
        return self._layers

    def structure(self) -> dict[str, Any]:
        """Nodes as (layer position in ``layers``, input node indices); inputs; outputs."""
        order = {id(layer): i for i, layer in enumerate(self.layers)}
        return {
            "nodes": [None if s.layer is None else [order[id(s.layer)], list(s.inputs)] for s in self._steps],
            "inputs": list(self._inputs),
            "outputs": list(self._outputs),
        }

    def parameters(self) -> list[Parameter]:
        return unique_parameters(*self.layers)

    @property
    def trainable(self) -> bool:
        return any(layer.trainable for layer in self._distinct_layers())

    def describe(self) -> str:
        return f"Graph[{len(self._steps)} nodes]"

    def sublayers(self) -> list[Layer]:
        return self.layers

    def __repr__(self) -> str:
        rows: list[tuple[str, Layer | str]] = []
        for index, step in enumerate(self._steps):
            if step.layer is None:
                rows.append((f"(n{index})", "input"))
            else:
                sources = ", ".join(f"n{i}" for i in step.inputs)
                rows.append((f"(n{index}) <- ({sources})" if sources else f"(n{index})", step.layer))
        return _tree(self, rows, [f"outputs: {', '.join(f'n{i}' for i in self._outputs) or 'none yet'}"])

    # -- running ---------------------------------------------------------------------
    def forward(self, *inputs: Any) -> tuple[Any, Backward]:
        where = f"{self.label()} forward"
        if not self._outputs:
            raise fail(where, "output nodes declared with g.output(...)", "none")
        if len(inputs) != len(self._inputs):  # (a, b) given as one tuple is the usual slip
            raise fail(where, f"{len(self._inputs)} input array(s)", str(len(inputs)), "give them as separate arguments")
        values: list[Any] = [None] * len(self._steps)
        backwards: list[Backward | None] = [None] * len(self._steps)
        alive = [False] * len(self._steps)
        trainable = [False] * len(self._steps)
        for index, x in zip(self._inputs, inputs):
            values[index], alive[index] = x, True
        with forward_scope():
            for index, step in enumerate(self._steps):
                if step.layer is None:
                    continue
                y, backward = run_forward(step.layer, tuple(values[i] for i in step.inputs))
                values[index] = y
                trainable[index] = _trainable(step.layer)
                alive[index] = trainable[index] or any(alive[i] for i in step.inputs)
                if alive[index]:
                    backwards[index] = backward
        outputs = tuple(values[i] for i in self._outputs)

        def backward(dy: Any, deltas: DeltaSet) -> Any:
            if len(outputs) == 1:
                dys: tuple = (dy,)
            elif not isinstance(dy, (tuple, list)):  # tuple(array) would iterate its first axis
                raise fail(f"{self.label()} backward",
                           f"a tuple of {len(outputs)} output gradients (None for an output the loss does not use)",
                           f"one {type(dy).__name__}" + (f" of shape {np.shape(dy)}" if dy is not None else ""))
            else:
                dys = tuple(dy)
            if len(dys) != len(outputs):
                raise fail(f"{self.label()} backward", f"{len(outputs)} output gradients", f"{len(dys)}")
            grads: list[Any] = [None] * len(self._steps)
            # a node's gradient is wanted if it is alive; graph inputs only if our caller wants them
            wanted = list(alive)
            if not input_grad_needed():
                for index in self._inputs:
                    wanted[index] = False
                for index, step in enumerate(self._steps):
                    if step.layer is not None:
                        wanted[index] = alive[index] and (trainable[index] or any(wanted[i] for i in step.inputs))

            def accumulate(index: int, g: Any) -> None:
                if g is None or not wanted[index]:
                    return
                grads[index] = g if grads[index] is None else grads[index] + g

            for index, g, y in zip(self._outputs, dys, outputs):
                if g is not None:
                    accumulate(index, _check_gradient_shape(f"{self.label()} backward", g, y))
            for index in range(len(self._steps) - 1, -1, -1):
                step, g = self._steps[index], grads[index]
                if step.layer is None or g is None or backwards[index] is None:
                    continue
                grads[index] = None  # free memory as we go
                with input_grad(any(wanted[i] for i in step.inputs)):
                    dx = backwards[index](g, deltas)
                if len(step.inputs) == 1:
                    dx = (dx,)
                for i, d in zip(step.inputs, dx):
                    accumulate(i, d)
            if not input_grad_needed():
                return None if len(self._inputs) == 1 else (None,) * len(self._inputs)
            dxs = tuple(grads[i] if grads[i] is not None else np.zeros_like(values[i]) for i in self._inputs)
            return dxs[0] if len(dxs) == 1 else dxs

        return (outputs[0] if len(outputs) == 1 else outputs), backward


@contextlib.contextmanager
def evaluation_mode(net: Layer) -> Iterator[None]:
    """Put ``net`` in evaluation mode for the block (``net.eval()``), then every layer inside back
    in the mode it was in (a network with some layers held in evaluation mode stays so)."""
    modes = [(layer, layer.training) for layer in walk_layers(net)]
    net.eval()
    try:
        yield
    finally:
        for layer, mode in modes:
            layer.training = mode
