"""Validation at the edge: one error type (two for wrong types), one message format, a few checks.

Every public entry point (functional wrappers, layer construction and forward,
networks, losses, restore) validates through these helpers, so that a user sees

    Conv2D 'enc1' forward: expected x.shape[1] == in_channels (3); got x.shape == (8, 4, 32, 32)

instead of a NumPy or Numba traceback. Kernels never validate: they trust what
reaches them. Refusals are ``ShapeError`` (a ValueError); a wrong type (a string for an
array, a float or a class where an int or an instance is expected) is ``ArgumentTypeError``,
both a TypeError and a ShapeError.
"""
from __future__ import annotations

import functools
import math
import os
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "ShapeError",
    "ArgumentTypeError",
    "fail",
    "fail_type",
    "check_allocation",
    "check_shape_tuple",
    "as_float_array",
    "layer_input",
    "layer_gradient",
    "check_ndim",
    "check_dim",
    "check_same_shape",
    "check_positive_int",
    "check_bool",
    "check_kernel_nonempty",
    "check_nonneg_int",
    "check_real",
    "check_optional_real",
    "numbers_only",
    "check_input_count",
    "pair",
    "spatial_tuple",
    "compact",
    "LAYOUTS",
    "TUPLE_NAMES",
    "check_gradient",
    "resolve_dtype",
    "where",
    "generator",
]

LAYOUTS = {1: "N, C, L", 2: "N, C, H, W", 3: "N, C, D, H, W"}
TUPLE_NAMES = {1: "an (l,) tuple", 2: "an (h, w) pair", 3: "a (d, h, w) triple"}  # per-dim values, in messages


class ShapeError(ValueError):
    """Bad shape, rank, dtype or configuration given to a minieye entry point."""


def fail(where: str, expected: str, got: str | None = None, hint: str | None = None) -> ShapeError:
    """Build (not raise) the error: ``"{where}: expected {expected}; got {got}. {hint}"``.

    Callers write ``raise fail(...)`` so that tracebacks point at the caller.
    """
    message = f"{where}: expected {expected}"
    if got is not None:
        message += f"; got {got}"
    if hint:
        message += f". {hint}"
    return ShapeError(message)


class ArgumentTypeError(ShapeError, TypeError):
    """An argument of the wrong type (a string for an array, a class for an instance).

    A TypeError, as Python's convention asks, and still a ValueError (a ShapeError) like
    every other refusal of minieye's checks, so ``except ValueError`` keeps catching it.
    """


def fail_type(where: str, expected: str, got: str, hint: str | None = None, value: Any = None) -> ArgumentTypeError:
    """``fail`` for a wrong type; a class given where an instance is expected gets that hint."""
    if hint is None and isinstance(value, type):
        hint = f"pass an instance, not the class: {value.__name__}(...)"
    return ArgumentTypeError(str(fail(where, expected, got, hint)))


# Kernel sizes, strides, paddings and dilations beyond this are typos, and would overflow
# the kernels' int64 index arithmetic long before they fit in memory.
MAX_GEOMETRY = 2**31 - 1


@functools.cache  # read once: the layers' forward asks on every call
def memory_limit() -> int:
    """Bytes one array may need: this machine's physical memory (1 TiB where it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def check_allocation(shape: Sequence[int], dtype: Any, where: str, what: str) -> None:
    """Refuse, before allocating it, an array (``what``: "the output", ...) larger than this machine's memory.

    A MemoryError (or NumPy's "Maximum allowed dimension exceeded") names no argument;
    this message gives the shape and size, so the absurd padding or scale is found.
    """
    nbytes = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
    limit = memory_limit()
    if nbytes > limit:
        raise fail(where, f"{what} to fit in this machine's memory ({limit / 2**30:.1f} GiB)",
                   f"{what} of shape {tuple(int(n) for n in shape)} would need {nbytes / 2**30:.3g} GiB",
                   "check the padding, stride, scale or size arguments")


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def resolve_dtype(dtype: Any, where: str) -> np.dtype:
    """The float dtype a layer computes in: float32 (default) or float64."""
    if dtype is None:
        return np.dtype(np.float32)
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise fail(where, "dtype float32 or float64", f"dtype={dtype!r}") from None
    resolved = resolved.newbyteorder("=")  # '>f8' is float64: the byte order is the file's, not the precision
    if resolved not in _FLOAT_DTYPES:
        raise fail(where, "dtype float32 or float64", f"dtype={resolved}")
    return resolved


def as_float_array(x: Any, where: str, name: str = "x", dtype: Any = None) -> np.ndarray:
    """``x`` as a C-contiguous float array.

    Integers and booleans are converted (to ``dtype``, or float32 when ``dtype`` is
    None); a float array of the other precision is cast to ``dtype`` when one is
    given and kept as it is otherwise. Non-native byte order (``'>f8'`` on x86) is
    converted to native order at the same precision. Complex, object and string data are refused.
    Nothing is copied when ``x`` already fits.
    """
    if not isinstance(x, np.ndarray):
        if x is None:
            raise fail_type(where, f"{name} an array of numbers", f"{name}=None")
        try:
            x = np.asarray(x)
        except (ValueError, TypeError, RuntimeError) as exc:  # RuntimeError: a torch tensor that requires grad
            raise fail(where, f"{name} convertible to a numeric array", f"{type(x).__name__} ({exc})") from None
    kind = x.dtype.kind
    if kind not in "fiub":
        raise fail_type(where, f"{name} of a real numeric dtype", f"{name}.dtype == {x.dtype}",
                        "complex, object and string arrays are not supported" if kind != "U" or x.ndim else
                        f"{name} is the string {x.item()!r}; pass an array of numbers")
    native = x.dtype.newbyteorder("=")  # big-endian float64 keeps its precision (and becomes native)
    if dtype is not None:
        target = np.dtype(dtype).newbyteorder("=")
    elif kind == "f" and native in _FLOAT_DTYPES:
        target = native
    elif kind == "f":  # float16, longdouble
        target = np.dtype(np.float64) if x.dtype.itemsize > 8 else np.dtype(np.float32)
    else:
        target = np.dtype(np.float32)
    return np.asarray(x, dtype=target, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)


def _shape_text(name: str, x: np.ndarray) -> str:
    return f"{name}.shape == {tuple(x.shape)}"


def check_ndim(x: np.ndarray, ndim: int | Iterable[int], where: str, name: str = "x",
               layout: str | None = None) -> None:
    """Refuse an array whose rank is not ``ndim`` (an int or a set of allowed ranks)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim in allowed:
        return
    ranks = " or ".join(str(r) for r in allowed)
    expected = f"{name} with {ranks} dimensions" + (f" ({layout})" if layout else "")
    batched = layout is not None and layout.startswith("N,")  # a weight or kernel has no batch axis to add
    hint = f"for one sample add the batch axis: {name}[None]" if batched and x.ndim + 1 in allowed else None
    raise fail(where, expected, _shape_text(name, x), hint)


def check_dim(x: np.ndarray, axis: int, size: int, where: str, name: str = "x",
              what: str | None = None, hint: str | None = None) -> None:
    """Refuse ``x`` unless ``x.shape[axis] == size``; ``what`` names the size (e.g. 'in_channels')."""
    if x.shape[axis] == size:
        return
    label = f"{what} ({size})" if what else str(size)
    raise fail(where, f"{name}.shape[{axis}] == {label}", _shape_text(name, x), hint)


def check_same_shape(a: np.ndarray, b: np.ndarray, where: str, names: tuple[str, str] = ("x", "y")) -> None:
    """Refuse two arrays of different shapes."""
    if a.shape != b.shape:
        raise fail(where, f"{names[0]} and {names[1]} of the same shape",
                   f"{names[0]}.shape == {tuple(a.shape)}, {names[1]}.shape == {tuple(b.shape)}")


def where(kind: str, name: str | None = None) -> str:
    """How a message names a layer or function: ``"Conv2D 'enc1'"`` or ``"Conv2D"`` when unnamed."""
    return f"{kind} {name!r}" if name else kind


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _refusal(items: Any) -> Any:
    """``fail_type`` when ``items`` (a value or its entries) are not all ints, else ``fail``."""
    try:
        ints = all(_is_int(v) for v in (items if isinstance(items, (tuple, list, np.ndarray)) else (items,)))
    except TypeError:
        ints = False
    return fail if ints else fail_type


def check_positive_int(value: Any, where: str, name: str) -> int:
    if not _is_int(value) or value < 1:
        raise _refusal(value)(where, f"{name} a positive integer", f"{name}={value!r}")
    return int(value)


def check_kernel_nonempty(kernel: Sequence[int], where: str, name: str = "w") -> None:
    """Refuse a kernel with a zero-size spatial dim (it would convolve to the bias alone)."""
    if min(kernel, default=1) < 1:
        raise fail(where, f"a kernel of at least 1 element per spatial dim ({name}.shape[2:])",
                   f"kernel size {tuple(int(k) for k in kernel)}")


def check_bool(value: Any, where: str, name: str) -> bool:
    """True or False (NumPy's bool too); a string such as "no" is refused, not read as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise fail_type(where, f"{name} True or False", f"{name}={value!r}")
    return bool(value)


def check_real(value: Any, where: str, name: str, *, positive: bool = False, signed: bool = False) -> float:
    """A finite real number (not a bool), >= 0, or > 0 with ``positive``, of any sign with ``signed``; as a float."""
    bound = "" if signed else " > 0" if positive else " >= 0"
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        raise fail_type(where, f"{name} a finite number{bound}", f"{name}={value!r}", value=value)
    if not (np.isfinite(value) and (signed or (value > 0 if positive else value >= 0))):
        raise fail(where, f"{name} a finite number{bound}", f"{name}={value!r}")
    return float(value)


def check_optional_real(value: Any, where: str, name: str, *, positive: bool = False,
                        signed: bool = False) -> float | None:
    """None (a setting left off), or ``check_real`` of ``value``."""
    return None if value is None else check_real(value, where, name, positive=positive, signed=signed)


def check_nonneg_int(value: Any, where: str, name: str) -> int:
    if not _is_int(value) or value < 0:
        raise _refusal(value)(where, f"{name} a non-negative integer", f"{name}={value!r}")
    return int(value)


def pair(value: Any, where: str, name: str, minimum: int = 0) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each at least ``minimum``, as a tuple."""
    items: Sequence[Any] = (value, value) if _is_int(value) else value
    try:
        ok = len(items) == 2 and all(_is_int(v) and v >= minimum for v in items)
    except TypeError:
        ok = False
    if not ok:
        raise _refusal(items)(where, f"{name} an int >= {minimum} or an (h, w) pair of them", f"{name}={value!r}")
    _check_geometry(items, where, name, value)
    return int(items[0]), int(items[1])


def _check_geometry(items: Sequence[Any], where: str, name: str, value: Any) -> None:
    if any(v > MAX_GEOMETRY for v in items):
        raise fail(where, f"{name} at most {MAX_GEOMETRY} (2**31 - 1)", f"{name}={value!r}")


def spatial_tuple(value: Any, nd: int, where: str, name: str, minimum: int = 0) -> tuple[int, ...]:
    """An int, or ``nd`` ints (one per spatial dim), each at least ``minimum``, as a tuple.

    The 2-D case goes through ``pair``, whose messages name an "(h, w) pair".
    """
    if nd == 2:
        return pair(value, where, name, minimum)
    items = (value,) * nd if _is_int(value) else value
    try:
        ok = len(items) == nd and all(_is_int(v) and v >= minimum for v in items)
    except TypeError:
        ok = False
    if not ok:
        raise _refusal(items)(where, f"{name} an int >= {minimum} or {TUPLE_NAMES[nd]} of them", f"{name}={value!r}")
    _check_geometry(items, where, name, value)
    return tuple(int(v) for v in items)


def check_shape_tuple(value: Any, ndim: int, where: str, name: str) -> tuple[int, ...]:
    """``ndim`` non-negative ints (an array shape given as an argument), as a tuple."""
    try:
        ok = len(value) == ndim and all(_is_int(v) and 0 <= v <= MAX_GEOMETRY for v in value)
    except TypeError:
        ok = False
    if not ok:
        raise _refusal(value)(where, f"{name} a tuple of {ndim} non-negative ints", f"{name}={value!r}")
    return tuple(int(v) for v in value)


def compact(value: tuple[int, ...]) -> int | list[int]:
    """The inverse of ``spatial_tuple`` for configs: one int when all sides agree, else a list (JSON)."""
    return value[0] if len(set(value)) == 1 else list(value)


def check_gradient(dy: Any, shape: tuple[int, ...], dtype: Any, where: str, name: str = "dy") -> np.ndarray:
    """``dy`` (an output gradient reaching a backward) as a contiguous array of ``dtype`` and exactly ``shape``.

    Backward closures call this first: kernels trust their arguments, so a wrong-shaped
    dy would otherwise give wrong gradients or read past an array. No copy when dy fits.
    """
    dy = as_float_array(dy, where, name, dtype)
    if dy.shape != tuple(shape):
        raise fail(where, f"{name} of shape {tuple(shape)}", f"{name}.shape == {dy.shape}")
    return dy



def check_out(out: Any, shape: tuple[int, ...], dtype: Any, where: str, *inputs: np.ndarray,
              in_place: np.ndarray | None = None) -> np.ndarray:
    """An ``out=`` array a kernel writes its result into: a C-contiguous ndarray of exactly the
    result's ``shape`` and ``dtype`` that shares no memory with ``inputs`` (kernels read them
    while writing out), or is exactly ``in_place`` (element-by-element kernels only)."""
    if type(out) is not np.ndarray:
        raise fail_type(where, "out a NumPy array (or None)", f"out is {type(out).__name__}")
    if out.dtype != dtype or out.shape != tuple(shape):
        raise (fail_type if out.dtype != dtype else fail)(
            where, f"out of shape {tuple(shape)} and dtype {np.dtype(dtype)} (the result's)",
            f"out.shape == {out.shape}, out.dtype == {out.dtype}")
    if not out.flags.c_contiguous:
        raise fail(where, "a C-contiguous out", "a strided view", "pass np.empty(shape, dtype) or None")
    same = in_place is not None and (out is in_place or (out.ctypes.data == in_place.ctypes.data
                                                         and out.strides == in_place.strides))
    if not same and any(a is not None and np.may_share_memory(out, a) for a in (*inputs, in_place)):
        raise fail(where, "an out that shares no memory with the inputs", "an out overlapping an input",
                   "the kernel would read values it has already overwritten")
    return out

# -- the hot path of layers: the same checks, with the message's text built only on failure --
def _ready(x: Any, dtype: Any) -> bool:
    """Whether ``as_float_array(x, ..., dtype)`` would return ``x`` itself."""
    return (type(x) is np.ndarray and x.flags.c_contiguous
            and (x.dtype in _FLOAT_DTYPES if dtype is None else x.dtype == dtype))


def layer_input(x: Any, layer: Any, name: str = "x", dtype: Any = None) -> np.ndarray:
    """``as_float_array(x, f"{layer.label()} forward", name, dtype)``, without building the
    label when ``x`` already fits (a forward pass checks every layer's input)."""
    return x if _ready(x, dtype) else as_float_array(x, f"{layer.label()} forward", name, dtype)


def layer_gradient(dy: Any, shape: tuple[int, ...], dtype: Any, layer: Any) -> np.ndarray:
    """``check_gradient(dy, shape, dtype, f"{layer.label()} backward")``, without building the
    label when ``dy`` already fits (``shape`` a tuple)."""
    if _ready(dy, dtype) and dy.shape == shape:
        return dy
    return check_gradient(dy, shape, dtype, f"{layer.label()} backward")


def numbers_only(value: Any) -> bool:
    """Whether ``value`` is a non-empty list or tuple of plain numbers (labels such as
    ``[0, 2, 1]``): one array, where a tuple or list of arrays means one array per input."""
    return isinstance(value, (tuple, list)) and len(value) > 0 and all(np.ndim(v) == 0 for v in value)


def check_input_count(layer: Any, count: int, where: str, what: str = "input arrays",
                      hint: str = "a tuple or list is read as one array per input: give a single input as one array",
                      ) -> None:
    """Refuse ``count`` arrays for a layer or network that takes another number of inputs."""
    if layer.n_inputs is not None and count != layer.n_inputs:
        raise fail(where, f"{layer.n_inputs} {what}, as {layer.label()} takes", str(count), hint)


def generator(rng: Any, seed: Any, where: str) -> np.random.Generator:
    """The random generator a layer draws its initial values from.

    ``rng`` may be a ``np.random.Generator`` (used as it is) or an int seed; ``seed`` an int
    >= 0 or None. Giving both is refused (one would be silently ignored); giving neither
    draws fresh entropy.
    """
    if rng is not None and seed is not None:
        raise fail(where, "rng or seed, not both", f"rng={rng!r}, seed={seed!r}")
    if isinstance(rng, np.random.Generator):
        return rng
    value, name = (rng, "rng") if rng is not None else (seed, "seed")
    if value is None:
        return np.random.default_rng()
    if not _is_int(value) or value < 0:
        raise fail(where, f"{name} a np.random.Generator or an int seed >= 0" if name == "rng"
                   else "seed an int >= 0 or None", f"{name}={value!r}")
    return np.random.default_rng(int(value))
