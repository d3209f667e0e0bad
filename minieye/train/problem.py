"""The objective a trainer minimises: ``loss(net(*inputs), targets)`` over chosen parameters.

A Problem evaluates the loss value and its gradient, a DeltaSet over the chosen
parameters, in one forward and one backward pass:

    prediction, back_net = net.forward(*inputs)
    value, back_loss     = loss.forward(*outputs, *targets)      # loss.forward(prediction) without targets
    dprediction          = back_loss(1, deltas)[0];  back_net(dprediction, deltas)

With ``batch_size`` the same rows of every input and of the targets (first axis)
are drawn in epochs: each epoch is a fresh permutation of the rows from the
problem's Generator, cut into batches of ``batch_size`` rows (the last one shorter
when ``batch_size`` does not divide the number of rows), so every row is seen once
per epoch.

For optimizers the parameters are also seen as one flat float64 vector, the
concatenation of ``p.value.ravel()`` in ``problem.params`` order (``get_vector``,
``set_vector``, ``slices``).
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Sequence

import numpy as np

from ..checks import as_float_array, check_input_count, check_positive_int, fail, fail_type, generator, numbers_only
from ..core import DeltaSet, Layer, Parameter, forward_scope, held_frozen, input_grad, unique_parameters, walk_layers
from ..functional.optim import box_clip, box_reduce
from .constraints import Box, Constraint

__all__ = ["Problem"]


def _as_data(value: Any, where: str, name: str) -> np.ndarray:
    """Inputs become float arrays (ints converted); targets keep integer labels as they are."""
    array = np.asarray(value) if not isinstance(value, np.ndarray) else value
    if array.dtype.kind in "iu" and name.startswith("targets"):
        return array
    return as_float_array(array, where, name)


class Problem:
    """``loss(net(*inputs), targets)`` as a function of ``params``.

    Args:
        net: any Layer (a Sequential, a Graph, a single layer).
        loss: a loss layer returning a 0-d array, called as ``loss(*outputs, *targets)``:
            ``loss(prediction, targets)``, ``loss(prediction)`` when ``targets`` is None, and
            one argument per output for a network with several outputs.
        inputs: an array, a tuple of arrays (one per network input), or ``()`` / None for
            a network whose first layer is a source (learning an image).
        targets: an array (or a tuple of arrays) or None; a list of plain numbers (labels) is one array.
        batch_size: rows per mini-batch (first axis of every input and target); None: full batch.
        rng: np.random.Generator (or an int seed) for drawing batches; None means seed 0.
        params: the Parameters to optimise (default: every unfrozen one of net and loss).
        constraints: Box / Simplex constraints on some of those parameters (one per parameter).

    Shapes: inputs (N, ...) each, targets (N, ...) when batching; the gradient has one
    entry per parameter in ``params``, of that parameter's shape.
    """

    def __init__(self, net: Layer, loss: Layer, inputs: Any = (), targets: Any = None,
                 batch_size: int | None = None, rng: np.random.Generator | int | None = None,
                 params: Sequence[Parameter] | None = None, constraints: Sequence[Constraint] = ()):
        where = "Problem"
        if not isinstance(net, Layer):
            raise fail_type(where, "net a minieye Layer (Sequential, Graph or a layer)", type(net).__name__, value=net)
        if not isinstance(loss, Layer):
            raise fail_type(where, "loss a minieye Layer returning a 0-d array", type(loss).__name__, value=loss)
        self.net, self.loss = net, loss
        if inputs is None:
            inputs = ()
        if not isinstance(inputs, (tuple, list)) or numbers_only(inputs):
            inputs = (inputs,)
        self.inputs = tuple(_as_data(x, where, f"inputs[{i}]") for i, x in enumerate(inputs))
        if self.inputs:  # none: a source network, or a DistributedProblem whose workers hold the rows
            check_input_count(net, len(self.inputs), where, "inputs")
        if isinstance(targets, (tuple, list)) and not numbers_only(targets):
            self.targets: Any = tuple(_as_data(t, where, f"targets[{i}]") for i, t in enumerate(targets))
        else:
            self.targets = None if targets is None else _as_data(targets, where, "targets")
        for name, array in self.named_arrays():
            if array.ndim and not array.shape[0]:
                raise fail(where, f"{name} with at least one row", f"{name}.shape == {array.shape}")
        # a fixed default seed: the same problem draws the same batches unless told otherwise
        self.rng = generator(0 if rng is None else rng, None, where)
        self.batch_size = None if batch_size is None else check_positive_int(batch_size, where, "batch_size")
        self.n_samples = self._count_samples()
        self._order: np.ndarray | None = None  # this epoch's permutation of the rows
        self._cursor = 0  # rows of _order already drawn
        self.params = self._choose(params)
        self._everything = unique_parameters(net, loss)
        self._chosen_ids = {id(p) for p in self.params}
        sizes = [p.size for p in self.params]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.slices = [slice(int(a), int(b)) for a, b in zip(offsets[:-1], offsets[1:])]
        self.size = int(offsets[-1])
        self.constraints = self._check_constraints(constraints)

    # -- construction helpers ------------------------------------------------------
    def named_arrays(self) -> list[tuple[str, np.ndarray]]:
        """``[(name, array)]`` of the inputs and targets, named as in messages ("inputs[0]", "targets")."""
        named = [(f"inputs[{i}]", x) for i, x in enumerate(self.inputs)]
        if isinstance(self.targets, tuple):
            named += [(f"targets[{i}]", t) for i, t in enumerate(self.targets)]
        elif self.targets is not None:
            named.append(("targets", self.targets))
        return named

    def layers(self) -> list[Layer]:
        """Every layer of the network, then those of the loss not already in it, each once, in
        ``walk_layers`` order: the order checkpoints and the distributed workers use for
        modes and buffers."""
        layers = walk_layers(self.net)
        seen = {id(layer) for layer in layers}
        return layers + [layer for layer in walk_layers(self.loss) if id(layer) not in seen]

    def row_counts(self) -> dict[str, int]:
        """``{name: rows}`` (the first axis; 0 for a scalar) of each input and target."""
        return {name: (a.shape[0] if a.ndim else 0) for name, a in self.named_arrays()}

    def _count_samples(self) -> int | None:
        if self.batch_size is None:
            return None
        counts = self.row_counts()
        if not counts:
            raise fail("Problem", "inputs or targets to draw mini-batches from when batch_size is set",
                       "no data", "leave batch_size=None for a source-only network")
        n = next(iter(counts.values()))
        if any(c != n for c in counts.values()):
            raise fail("Problem", "the same number of rows (first axis) in every input and target",
                       ", ".join(f"{k}: {v}" for k, v in counts.items()))
        if self.batch_size > n:
            raise fail("Problem", f"batch_size <= the number of samples ({n})", f"batch_size={self.batch_size}")
        return n

    def _choose(self, params: Sequence[Parameter] | None) -> list[Parameter]:
        where = "Problem"
        if params is None:
            unfrozen = [p for p in unique_parameters(self.net, self.loss) if not p.frozen]
            if not unfrozen:
                raise fail(where, "at least one unfrozen parameter in net or loss", "none",
                           "unfreeze a layer or pass params=[...]")
            return unfrozen
        chosen: list[Parameter] = []
        known = {id(p) for p in unique_parameters(self.net, self.loss)}
        for i, p in enumerate((params,) if isinstance(params, Parameter) else params):
            if not isinstance(p, Parameter):
                raise fail(where, "params a list of Parameters", f"params[{i}] is {type(p).__name__}")
            if id(p) not in known:
                raise fail(where, "params of the network or the loss", f"params[{i}] ({p.name!r}) is in neither",
                           "its gradient would always be zero")
            if p.frozen:
                raise fail(where, "unfrozen parameters in params", f"params[{i}] ({p.name!r}) is frozen",
                           "unfreeze it or leave it out")
            if any(p is q for q in chosen):
                raise fail(where, "each parameter once in params", f"params[{i}] ({p.name!r}) repeated")
            chosen.append(p)
        if not chosen:
            raise fail(where, "at least one parameter in params", "an empty list")
        return chosen

    def _check_constraints(self, constraints: Sequence[Constraint]) -> list[Constraint]:
        out: list[Constraint] = []
        self._constrained: list[tuple[Constraint, slice]] = []
        for i, c in enumerate(constraints):
            if not isinstance(c, Constraint):
                raise fail("Problem", "constraints a list of train.Box or train.Simplex",
                           f"constraints[{i}] is {type(c).__name__}")
            index = self.index_of(c.param, f"Problem constraints[{i}]")
            if any(other.param is c.param for other in out):
                raise fail("Problem", "at most one constraint per parameter",
                           f"constraints[{i}] constrains {c.param.name!r} again", "combine the bounds in one Box")
            out.append(c)
            self._constrained.append((c, self.slices[index]))
        self._bounds = self._box_bounds(out)
        return out

    @property
    def box_bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(lower, upper) flat bound vectors when every constraint is a Box (the fused fast
        paths use them), else None. Shapes: (size,), (size,)."""
        return self._bounds

    def _box_bounds(self, constraints: list[Constraint]) -> tuple[np.ndarray, np.ndarray] | None:
        """(lower, upper) over the whole flat vector when every constraint is a Box (+-inf where
        none applies), so projections run as one fused pass; None without constraints or with a Simplex."""
        if not constraints or not all(type(c) is Box for c in constraints):
            return None
        lower, upper = np.full(self.size, -np.inf), np.full(self.size, np.inf)
        for c, s in self._constrained:
            lower[s], upper[s] = c.lower.ravel(), c.upper.ravel()
        return lower, upper

    # -- the flat view ----------------------------------------------------------------
    def index_of(self, param: Parameter, where: str = "Problem") -> int:
        """Position of ``param`` in ``params`` (ValueError naming it when absent)."""
        for i, p in enumerate(self.params):
            if p is param:
                return i
        raise fail(where, "a parameter that the problem optimises", repr(param),
                   "add it to Problem(params=...) or unfreeze it")

    def get_vector(self) -> np.ndarray:
        """The chosen parameters' values as one float64 vector."""
        if not self.params:
            return np.zeros(0)
        return np.concatenate([p.value.ravel() for p in self.params]).astype(np.float64)

    def set_vector(self, x: np.ndarray) -> None:
        """Write ``x`` into the parameters, in place (cast to each parameter's dtype)."""
        for p, s in zip(self.params, self.slices):
            p.value[...] = x[s].reshape(p.shape)

    # -- constraints on the flat view (identity without constraints) ---------------------
    def project(self, z: np.ndarray) -> np.ndarray:
        """The feasible point nearest to ``z`` (each constraint on its parameter's slice)."""
        if not self._constrained:
            return z
        if self._bounds is not None:  # one fused pass, no copies
            z = np.ascontiguousarray(z, dtype=np.float64)
            return box_clip(z, *self._bounds, np.empty_like(z))
        out = z.copy()
        for c, s in self._constrained:
            out[s] = c.project(z[s])
        return out

    def project_tangent(self, z: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Derivative of ``project`` at ``z`` along ``v``."""
        if not self._constrained:
            return v
        out = v.copy()
        for c, s in self._constrained:
            out[s] = c.tangent(z[s], v[s])
        return out

    def projected_slope(self, z: np.ndarray, v: np.ndarray, g: np.ndarray) -> float:
        """``<g, project_tangent(z, v)>``, without forming the tangent where a constraint can avoid it."""
        total = 0.0
        constrained = {s.start: c for c, s in self._constrained}
        for s in self.slices:
            c = constrained.get(s.start)
            total += float(np.einsum("i,i->", g[s], v[s])) if c is None else c.tangent_dot(z[s], v[s], g[s])
        return total

    def reduce_gradient(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The gradient at the feasible ``x`` restricted to feasible directions (``g`` itself if none)."""
        if not self._constrained:
            return g
        if self._bounds is not None:
            x, g = np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(g, dtype=np.float64)
            return box_reduce(x, g, *self._bounds, np.empty_like(g))
        out = g.copy()
        for c, s in self._constrained:
            out[s] = c.reduce(x[s], g[s])
        return out

    # -- evaluation ---------------------------------------------------------------------
    def draw_batch(self) -> np.ndarray | None:
        """Row indices of the next mini-batch of the epoch (None for full batch).

        A new epoch starts with ``rng.permutation(n_samples)``; its batches are consecutive
        slices of ``batch_size`` rows, the last one holding what remains."""
        if self.batch_size is None:
            return None
        if self._order is None or self._cursor >= self.n_samples:
            self._order, self._cursor = self.rng.permutation(self.n_samples), 0
        batch = self._order[self._cursor:self._cursor + self.batch_size]
        self._cursor += batch.size
        return batch

    @property
    def epoch_ended(self) -> bool:
        """Whether the batch drawn last was the last of its epoch (always True for full batch)."""
        return self.batch_size is None or (self._order is not None and self._cursor >= self.n_samples)

    @property
    def batches_per_epoch(self) -> int:
        """Mini-batches in one epoch: ceil(n_samples / batch_size); 1 for full batch."""
        return 1 if self.batch_size is None else -(-self.n_samples // self.batch_size)

    def sampler_state(self) -> dict[str, Any]:
        """Where the epoch stands (for checkpoints; the RNG's state is saved separately)."""
        return {"cursor": self._cursor} if self._order is None else {"cursor": self._cursor, "order": self._order}

    def load_sampler_state(self, state: dict[str, Any]) -> None:
        order = state.get("order")
        self._order = None if order is None else np.array(order, dtype=np.int64)
        self._cursor = int(state.get("cursor", 0))

    @staticmethod
    def _checked_batch(batch: Any, rows: int | None) -> np.ndarray:
        """``batch`` as an array of row indices: non-empty, 1-D, integers in [0, rows)."""
        batch = np.asarray(batch)
        if batch.ndim != 1 or batch.size == 0 or not np.issubdtype(batch.dtype, np.integer):
            raise fail("Problem batch", "a non-empty 1-D array of integer row indices",
                       f"shape {batch.shape}, dtype {batch.dtype}")
        if rows is not None and (batch.min() < 0 or batch.max() >= rows):
            raise fail("Problem batch", f"row indices in [0, {rows})",
                       f"indices from {batch.min()} to {batch.max()}")
        return batch

    def _select(self, batch: np.ndarray | None) -> tuple[tuple, Any]:
        if batch is None:
            return self.inputs, self.targets
        batch = self._checked_batch(batch, min(self.row_counts().values(), default=None))
        inputs = tuple(x[batch] for x in self.inputs)
        if isinstance(self.targets, tuple):
            return inputs, tuple(t[batch] for t in self.targets)
        return inputs, None if self.targets is None else self.targets[batch]

    def _only_chosen(self) -> contextlib.AbstractContextManager:
        """Hold frozen, for the duration, every unfrozen parameter that is not in ``params``.

        Layers skip the gradient work of frozen parameters, and networks skip the backward
        of layers with none unfrozen (a frozen feature extractor in front of a trained
        head costs no backward at all), so ``Problem(params=subset)`` pays only for the
        subset. ``core.held_frozen`` changes no flag: other threads using the same network
        see their own selection.
        """
        return held_frozen(p for p in self._everything if id(p) not in self._chosen_ids)

    def forward(self, batch: np.ndarray | None = None) -> tuple[float, Callable[[], DeltaSet]]:
        """Loss value on ``batch`` (None: all rows) and a function that runs the backward pass.

        ``gradient()`` returns the DeltaSet over ``params``; call it before the parameter
        values change (layers read their parameters during backward). A line search that
        needs only values skips the backward pass of the steps it rejects.
        """
        inputs, targets = self._select(batch)
        check_input_count(self.net, len(inputs), "Problem", "inputs",  # none given to a network that takes some
                          "pass the data as inputs: only a network that starts with a Source takes none")
        with self._only_chosen(), forward_scope():
            prediction, back_net = self.net.forward(*inputs)
            outputs = prediction if isinstance(prediction, tuple) else (prediction,)
            extra = () if targets is None else targets if isinstance(targets, tuple) else (targets,)
            check_input_count(self.loss, len(outputs) + len(extra), "Problem",
                              "arrays for the loss (the network's outputs, then the targets)",
                              "targets=None gives the loss the prediction alone; a loss layer takes "
                              "(prediction, target) or, as a regularizer, (prediction)")
            value, back_loss = self.loss.forward(*outputs, *extra)
        value = np.asarray(value)
        if value.ndim:
            raise fail("Problem", f"the loss {self.loss.label()} to return a 0-d array (a scalar)",
                       f"an array of shape {value.shape}", "use a loss from minieye.losses, or reduce to one value")

        def gradient() -> DeltaSet:
            deltas = DeltaSet()
            with self._only_chosen():
                dgrads = back_loss(np.ones((), dtype=value.dtype if value.dtype.kind == "f" else np.float64), deltas)
                if not isinstance(dgrads, tuple):
                    dgrads = (dgrads,)
                # one gradient per network output (a Graph with several outputs takes a tuple);
                # the inputs are data, so the first layers need not compute input gradients
                with input_grad(False):
                    back_net(dgrads[:len(outputs)] if len(outputs) > 1 else dgrads[0], deltas)
            return deltas

        return float(value), gradient

    def evaluate(self, batch: np.ndarray | None = None) -> tuple[float, DeltaSet]:
        """Loss value (a float) and gradient (a DeltaSet over ``params``) on ``batch`` (None: all rows)."""
        value, gradient = self.forward(batch)
        return value, gradient()

    def evaluate_vector(self, batch: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """``evaluate`` with the gradient as a flat float64 vector (zeros where none flowed)."""
        value, deltas = self.evaluate(batch)
        return value, deltas.to_vector(self.params)

    def forward_vector(self, batch: np.ndarray | None = None) -> tuple[float, Callable[[], np.ndarray]]:
        """What the Trainer calls: the loss value and a function returning the flat gradient.

        A subclass that computes somewhere else (``minieye.distributed``) overrides
        ``evaluate_vector``; then this runs it at once, so the override is always used.
        """
        if type(self).evaluate_vector is not Problem.evaluate_vector:
            value, grad = self.evaluate_vector(batch)
            return value, lambda: grad
        value, gradient = self.forward(batch)
        return value, lambda: gradient().to_vector(self.params)

    def nonfinite_data(self) -> list[str]:
        """Names of inputs or targets holding NaN or Inf (used to explain a non-finite loss)."""
        return [name for name, a in self.named_arrays() if a.dtype.kind == "f" and not np.isfinite(a).all()]

    def __repr__(self) -> str:
        batch = "full batch" if self.batch_size is None else f"batch_size={self.batch_size}"
        return f"Problem({self.net.label()}, {self.loss.label()}, {len(self.params)} params, {batch})"
