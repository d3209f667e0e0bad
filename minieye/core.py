"""Parameters, gradient sets and the Layer protocol.

A layer's ``forward(*inputs)`` returns ``(output, backward)``. ``backward(dy, deltas)``
turns the output gradient ``dy`` (shape of the output) into the input gradient(s)
and *adds* the gradient of each unfrozen parameter into ``deltas``, a DeltaSet that
the caller owns. Layers keep no per-call state: whatever backward needs is captured
by its closure, so one layer can sit at several places in a network and a line
search can evaluate it many times before any backward runs.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .checks import as_float_array, check_bool, fail, fail_type, resolve_dtype
# re-exported: part of the layer contract (docs/core.md)
from .passes import current_scope, forward_scope, input_grad, input_grad_needed

__all__ = ["Parameter", "DeltaSet", "Layer", "Backward", "forward_scope", "current_scope",
           "input_grad", "input_grad_needed", "unique_parameters", "held_frozen", "walk_layers", "run_forward"]

Backward = Callable[..., Any]

# ids of parameters treated as frozen in this thread's context (held_frozen): a pass can
# leave some parameters out without changing their shared ``frozen`` flags
_HELD: contextvars.ContextVar[frozenset] = contextvars.ContextVar("minieye_held_frozen", default=frozenset())


class Parameter:
    """A trainable array. Identity matters: DeltaSets are keyed by the Parameter object.

    ``value`` is a float32 or float64 ndarray, updated in place by the trainer;
    ``frozen`` parameters receive no gradient (their layers still pass input
    gradients back); inside ``held_frozen(params)`` those count as frozen too, for the
    calling thread only. Equality is identity, so a Parameter can key a dict.
    """

    __slots__ = ("value", "name", "_frozen", "__weakref__")

    def __init__(self, value: Any, name: str | None = None, frozen: bool = False, dtype: Any = None):
        where = f"Parameter {name!r}" if name else "Parameter"
        if dtype is not None:
            dtype = resolve_dtype(dtype, where)
        self.value = np.array(as_float_array(value, where, "value", dtype), copy=True)
        self.name = name or "param"
        self.frozen = check_bool(frozen, where, "frozen")

    @property
    def frozen(self) -> bool:
        """Frozen by its own flag, or held frozen by ``held_frozen`` in this context."""
        return self._frozen or (id(self) in _HELD.get())

    @frozen.setter
    def frozen(self, value: bool) -> None:
        self._frozen = bool(value)

    shape = property(lambda self: self.value.shape, doc="The value's shape.")
    dtype = property(lambda self: self.value.dtype, doc="The value's dtype.")
    size = property(lambda self: self.value.size, doc="The value's number of elements.")

    def __repr__(self) -> str:
        state = ", frozen" if self.frozen else ""
        return f"Parameter({self.name!r}, shape={self.shape}, dtype={self.dtype}{state})"


class DeltaSet:
    """Gradients (or steps) by Parameter, kept apart from the layers. ``add`` accumulates, skipping
    frozen parameters; arithmetic returns new sets. NaN and Inf stay: ``is_finite()`` reports them."""

    def __init__(self, items: Iterable[tuple[Parameter, np.ndarray]] | None = None):
        self._deltas: dict[Parameter, np.ndarray] = {}
        for param, delta in items or ():
            self._deltas[param] = np.array(delta, dtype=param.dtype, copy=True)

    # -- accumulation --------------------------------------------------------
    def add(self, param: Parameter, delta: np.ndarray) -> None:
        """Add ``delta`` (shape of ``param.value``) into this set; ignored for frozen parameters."""
        if not isinstance(param, Parameter):
            raise fail_type("DeltaSet.add", "param a minieye.Parameter", f"param is {type(param).__name__}")
        if param.frozen:
            return
        if np.shape(delta) != param.shape:
            raise fail(f"DeltaSet.add({param.name!r})", f"delta of shape {param.shape}",
                       f"shape {np.shape(delta)}")
        if np.iscomplexobj(delta):  # the copy below would drop the imaginary part with only a warning
            raise fail_type(f"DeltaSet.add({param.name!r})", "a real delta", f"dtype {np.asarray(delta).dtype}")
        current = self._deltas.get(param)
        if current is None:
            self._deltas[param] = np.array(delta, dtype=param.dtype, copy=True)
        else:
            current += delta

    @classmethod
    def zeros(cls, params: Iterable[Parameter]) -> "DeltaSet":
        return cls((p, np.zeros_like(p.value)) for p in params)

    # -- mapping -------------------------------------------------------------
    def __getitem__(self, param: Parameter) -> np.ndarray:
        return self._deltas[param]

    def get(self, param: Parameter, default: Any = None) -> Any:
        return self._deltas.get(param, default)

    def __contains__(self, param: object) -> bool:
        return param in self._deltas

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._deltas)

    def __len__(self) -> int:
        return len(self._deltas)

    def params(self) -> list[Parameter]:
        return list(self._deltas)

    def items(self):
        return self._deltas.items()

    def copy(self) -> "DeltaSet":
        return DeltaSet(self._deltas.items())

    # -- vector arithmetic (the union of parameters; a missing one counts as zero) --
    def _combine(self, other: "DeltaSet", fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> "DeltaSet":
        out = DeltaSet()
        for p in dict.fromkeys(itertools.chain(self._deltas, other._deltas)):
            a = self._deltas.get(p)
            b = other._deltas.get(p)
            out._deltas[p] = fn(np.zeros_like(p.value) if a is None else a,
                                np.zeros_like(p.value) if b is None else b)
        return out

    def __add__(self, other: "DeltaSet") -> "DeltaSet":
        return self._combine(other, np.add)

    def __sub__(self, other: "DeltaSet") -> "DeltaSet":
        return self._combine(other, np.subtract)

    def scale(self, factor: float) -> "DeltaSet":
        out = DeltaSet()
        out._deltas = {p: d * d.dtype.type(factor) for p, d in self._deltas.items()}
        return out

    __mul__ = __rmul__ = scale

    def __neg__(self) -> "DeltaSet":
        return self.scale(-1.0)

    def dot(self, other: "DeltaSet") -> float:
        """Sum over shared parameters of <self[p], other[p]>, accumulated in float64."""
        total = 0.0
        for p, d in self._deltas.items():
            e = other._deltas.get(p)
            if e is not None:
                total += float(np.dot(d.ravel().astype(np.float64, copy=False),
                                      e.ravel().astype(np.float64, copy=False)))
        return total

    def norm(self) -> float:
        return float(np.sqrt(self.dot(self)))

    def is_finite(self) -> bool:
        return all(bool(np.isfinite(d).all()) for d in self._deltas.values())

    def apply(self, step: float = 1.0) -> None:
        """``p.value += step * self[p]`` in place for each unfrozen parameter."""
        for p, d in self._deltas.items():
            if not p.frozen:
                p.value += d.dtype.type(step) * d

    # -- flat vectors, for optimizers that think in R^n (float64) ------------------
    def to_vector(self, params: Iterable[Parameter]) -> np.ndarray:
        parts = [self._deltas[p].ravel() if p in self._deltas else np.zeros(p.size) for p in params]
        return np.concatenate(parts, dtype=np.float64) if parts else np.zeros(0)  # cast while copying: one pass

    @classmethod
    def from_vector(cls, params: Iterable[Parameter], vector: np.ndarray) -> "DeltaSet":
        out, offset = cls(), 0
        for p in params:
            out._deltas[p] = np.asarray(vector[offset:offset + p.size], dtype=p.dtype).reshape(p.shape).copy()
            offset += p.size
        return out

    def __repr__(self) -> str:
        names = ", ".join(f"{p.name}{p.shape}" for p in self._deltas)
        return f"DeltaSet({names})"


_MISSING = object()


def _explained_backward(forward: Callable) -> Callable:
    """``forward`` whose backward, called without ``deltas`` (or without anything), says what
    to pass (Python's own message names the closure's argument but not what it is for)."""
    @functools.wraps(forward)
    def checked_forward(self: "Layer", *inputs: Any, **kwargs: Any) -> Any:
        try:
            result = forward(self, *inputs, **kwargs)
        except TypeError as exc:
            if _binding(exc, self, inputs):
                raise _wrong_arguments(self, inputs, exc) from None
            raise
        if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
            return result
        y, backward = result

        def checked_backward(dy: Any = _MISSING, deltas: Any = _MISSING, *more: Any) -> Any:
            if deltas is _MISSING:
                missing = "dy and deltas are" if dy is _MISSING else "deltas is"
                raise TypeError(f"{self.label()} backward(dy, deltas): {missing} missing; pass the output "
                                f"gradient dy and a minieye.DeltaSet() that parameter gradients are added into")
            if not isinstance(deltas, DeltaSet) and (deltas is not None or self.parameters()):  # None: no parameters
                raise fail_type(f"{self.label()} backward", "deltas a minieye.DeltaSet",
                                f"deltas={deltas!r}", "pass minieye.DeltaSet(): parameter gradients are added into it",
                                value=deltas)
            return backward(dy, deltas, *more)

        return y, checked_backward

    checked_forward.unchecked = forward  # what run_forward calls
    return checked_forward


class Layer:
    """Base class of every layer, loss and network.

    Subclasses implement ``forward(*inputs) -> (output, backward)`` and, when they
    have hyper-parameters, ``config()`` returning the JSON-serialisable keyword
    arguments that rebuild them (``type(layer)(**layer.config())``). Parameters are
    found as attributes holding a Parameter (in attribute order) unless
    ``parameters()`` is overridden.

    ``n_inputs`` is the number of inputs forward takes (None: any number).

    Modes: ``training`` (True until ``eval()``) is read by Dropout and BatchNorm; networks pass
    ``train()``/``eval()`` on through ``sublayers()``. ``buffers()``: non-trainable arrays io saves.
    """

    n_inputs: int | None = 1
    training: bool = True  # class default; train()/eval() set it on the instance

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _explained_backward(cls.__dict__["forward"])

    def __init__(self, name: str | None = None):
        if name is not None and not isinstance(name, str):  # messages, repr and saved configs show it as text
            raise fail_type(type(self).__name__, "name a str or None", f"name={name!r}")
        self.name = name

    # -- the protocol ----------------------------------------------------------
    def forward(self, *inputs: np.ndarray) -> tuple[Any, Backward]:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def __call__(self, *inputs: np.ndarray) -> Any:
        """Inference: the output of ``forward`` without keeping its backward."""
        with forward_scope():
            return self.forward(*inputs)[0]

    def parameters(self) -> list[Parameter]:
        return [v for v in vars(self).values() if isinstance(v, Parameter)]

    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON types only) that rebuild this layer."""
        return {"name": self.name} if self.name is not None else {}

    def sublayers(self) -> list["Layer"]:
        """The layers directly inside this one (a network's children); none for a plain layer."""
        return []

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trainable arrays by name (running statistics), the arrays themselves: io fills them in place."""
        return {}

    def train(self, mode: bool = True) -> "Layer":
        """Training mode (``mode=True``) or evaluation mode, on this layer and every layer inside it."""
        mode = check_bool(mode, f"{self.label()}.train", "mode")
        for layer in walk_layers(self):
            layer.training = mode
        return self

    def eval(self) -> "Layer":
        """``train(False)``: Dropout passes values through, BatchNorm uses its running statistics."""
        return self.train(False)

    # -- conveniences ------------------------------------------------------------
    def freeze(self, frozen: bool = True) -> "Layer":
        """Set every parameter's ``frozen`` flag (``freeze(False)`` is ``unfreeze()``)."""
        frozen = check_bool(frozen, f"{self.label()}.freeze", "frozen")
        for p in self.parameters():
            p.frozen = frozen
        return self

    def unfreeze(self) -> "Layer":
        return self.freeze(False)

    @property
    def trainable(self) -> bool:
        """True when the layer has at least one unfrozen parameter."""
        held = _HELD.get()  # Parameter.frozen inlined: networks ask this of every layer in every pass
        return any(not p._frozen and id(p) not in held for p in self.parameters())

    def label(self) -> str:
        """How error messages name this layer: ``Conv2D 'enc1'`` or ``Dense(5->4)``."""
        base = self.describe()
        return f"{base} {self.name!r}" if self.name else base

    def describe(self) -> str:
        """Short text of the layer's kind and key hyper-parameters; override for detail."""
        return type(self).__name__

    def __repr__(self) -> str:
        return self.label()


@contextlib.contextmanager
def held_frozen(params: Iterable[Parameter]) -> Iterator[None]:
    """Treat ``params`` as frozen inside the block, in this thread (context) only.

    Their own ``frozen`` flags do not change, so another thread using the same network
    with other parameters held, or none, is unaffected (``train.Problem(params=subset)``).
    """
    token = _HELD.set(_HELD.get() | {id(p) for p in params})
    try:
        yield
    finally:
        _HELD.reset(token)


def run_forward(layer: "Layer", inputs: tuple) -> tuple[Any, Backward]:
    """``layer.forward(*inputs)`` without the wrapper explaining a missing ``deltas`` (for networks, which pass it)."""
    if "forward" in layer.__dict__:  # replaced on the instance: honour it
        return layer.forward(*inputs)
    forward = type(layer).forward  # the wrapper, unless the class attribute was replaced since
    try:
        return getattr(forward, "unchecked", forward)(layer, *inputs)
    except TypeError as exc:
        if _binding(exc, layer, inputs):
            raise _wrong_arguments(layer, inputs, exc) from None
        raise


def _binding(exc: TypeError, layer: "Layer", inputs: tuple) -> bool:
    """Whether Python raised ``exc`` binding the arguments of a call given another number of inputs
    than the layer takes: the calling frame is the last of its traceback (an error raised inside
    the called function has that function's frame after it)."""
    return (exc.__traceback__ is not None and exc.__traceback__.tb_next is None
            and layer.n_inputs is not None and len(inputs) != layer.n_inputs)


def _wrong_arguments(layer: "Layer", inputs: tuple, exc: TypeError) -> TypeError:
    """The layer's count of inputs, instead of Python's ``forward() takes 2 positional arguments
    but 3 were given``, which counts ``self`` and names no layer."""
    takes = str(layer.n_inputs)
    return fail_type(f"{layer.label()} forward", f"{takes} input array(s)", f"{len(inputs)} ({exc})",
                     "a layer takes its inputs as separate arguments; a Source takes none")


def walk_layers(root: "Layer") -> list["Layer"]:
    """``root`` and every layer inside it (through ``sublayers()``), each once, parents first."""
    order, seen = [root], {id(root)}
    for layer in order:  # the list grows while it is walked: breadth first
        for child in layer.sublayers():
            if id(child) not in seen:
                seen.add(id(child))
                order.append(child)
    return order


def unique_parameters(*sources: "Layer | Iterable[Parameter]") -> list[Parameter]:
    """The Parameters of ``sources`` (layers, or iterables of Parameters), each once, in
    first-seen order, frozen ones included. A Parameter shared by several layers (or
    listed twice) appears once: identity, not value, decides."""
    seen: dict[int, Parameter] = {}
    for source in sources:
        for p in source.parameters() if isinstance(source, Layer) else source:
            seen.setdefault(id(p), p)
    return list(seen.values())
