"""Every tuning knob of the engine in one place, set for a scope.

    import minieye as me

    with me.options(threads=1, conv_algorithm="gemm"):
        y = net(x)                      # inside: these values; outside: the previous ones

    me.options.set(pool_parallel_min_work=0)    # process-wide default (e.g. a benchmark's setup)
    me.options.get("threads")                    # the value in force here

Kernels and their drivers read knobs with :func:`get` at call time; nothing else in the
package keeps a tuning constant, and tests and benchmarks change knobs only through this
interface (never by assigning a module's attribute). A scope is a context variable, so a
``with options(...)`` in one thread does not change what another thread sees; threads started
inside a scope by minieye's own drivers read the value their caller decided with.

Unknown names and values of the wrong kind are refused with an error that lists the knobs.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .checks import check_bool, check_nonneg_int, check_optional_real, check_positive_int, check_real, fail

__all__ = ["options", "get", "set", "snapshot", "KNOBS", "Knob"]


@dataclass(frozen=True)
class Knob:
    """One tuning knob: its default, a check that returns the normalised value, what it means."""
    default: Any
    check: Callable[[Any, str, str], Any]
    doc: str


def _positive_or_none(value: Any, where: str, name: str) -> int | None:
    """A positive int, or None (the default chosen at run time)."""
    return None if value is None else check_positive_int(value, where, name)


def _positive_number(value: Any, where: str, name: str) -> float:
    return check_real(value, where, name, positive=True)


def _one_of(*choices: str) -> Callable[[Any, str, str], str]:
    def check(value: Any, where: str, name: str) -> str:
        if value not in choices:
            raise fail(where, f"{name} one of {', '.join(map(repr, choices))}", repr(value))
        return value
    return check


KNOBS: dict[str, Knob] = {
    "threads": Knob(None, _positive_or_none,
                    "threads minieye's own kernels may use (None: Numba's thread count)"),
    "conv_algorithm": Knob("auto", _one_of("auto", "direct", "gemm", "winograd", "winograd4", "taps",
                                                        "small"),
                           "convolution algorithm; 'auto' chooses per call from the shapes"),
    "conv_transpose_algorithm": Knob("auto", _one_of("auto", "phases", "adjoint"),
                                     "2-D transposed convolutions: 'phases' as one 3x3 convolution into a channel per "
                                     "output phase and a pixel shuffle (where the kernel's taps fit), 'adjoint' as the "
                                     "adjoint of their convolution; 'auto' chooses per call from the shapes"),
    "conv_direct_parallel_min_work": Knob(4_000_000, check_nonneg_int,
                                          "direct convolution: multiply-adds from which it threads"),
    "conv_gemm_parallel_min_work": Knob(8_000_000, check_nonneg_int,
                                        "GEMM convolution: multiply-adds from which it threads"),
    "conv_gemm_sample_work": Knob(24_000, check_nonneg_int,
                                  "GEMM convolution: multiply-adds one sample's products cost on top of their own "
                                  "(counted toward conv_gemm_parallel_min_work)"),
    "conv_wide_tile": Knob(4096, check_positive_int,
                           "direct convolution of wide planes: output pixels per tile of rows"),
    "conv_tile_bytes": Knob(768 << 10, check_positive_int,
                            "GEMM convolution: bytes of one unfolded tile of rows"),
    "conv_sample_block": Knob(0, check_nonneg_int,
                              "GEMM and per-tap convolution: whole samples per product (0: as many as a quarter "
                              "of conv_tile_bytes holds, where the plan blocks; 1: one sample at a time)"),
    "conv_winograd_min_channels": Knob(None, _positive_or_none,
                                       "'auto' runs 3x3 stride-1 layers by Winograd F(4x4, 3x3) from this many "
                                       "channels in and out (None: 16)"),
    "conv_winograd_min_pixels": Knob(None, _positive_or_none,
                                     "'auto' runs Winograd only on output planes of at least this many pixels "
                                     "(None: 256)"),
    "conv_taps_min_channels": Knob(16, check_positive_int,
                                   "'auto' runs layers without groups as one product per kernel tap from this "
                                   "many input channels"),
    "pool_parallel_min_work": Knob(1 << 18, check_nonneg_int,
                                   "pooling and upsampling: window reads from which they thread"),
    "unpool_parallel_min_cells": Knob(1 << 21, check_nonneg_int,
                                      "max-pool's backward and max-unpool (scatter, gather by switches): cells of "
                                      "the unpooled array from which they thread"),
    "dense_parallel_min_work": Knob(1 << 22, check_nonneg_int,
                                    "Dense layers: multiply-adds of a product from which BLAS may thread"),
    "elementwise_parallel_min_size": Knob(1 << 20, check_nonneg_int,
                                          "fused activations (ReLU, GELU): elements from which they thread"),
    "tv_parallel_min_pixels": Knob(1 << 20, check_nonneg_int,
                                   "total-variation kernels: pixels from which they thread"),
    "nonlocal_parallel_min_rows": Knob(64, check_positive_int,
                                       "non-local TV graph: image rows from which it threads"),
    "nonlocal_chunk_bytes": Knob(1 << 20, check_positive_int,
                                 "non-local TV graph: float64 weight buffer per chunk of rows"),
    "regularizer_kernels": Knob(True, check_bool,
                                "TV regularisers use their fused Numba kernels (False: the NumPy reference)"),
    "worker_wait": Knob(10.0, _positive_number,
                        "seconds a distributed problem waits for a first Dask worker"),
    "rebalance_every": Knob(2.0, check_optional_real,
                            "seconds between a distributed problem's looks for workers that joined, "
                            "which then take partitions (0: every evaluation; None: never)"),
}

_lock = threading.Lock()
_defaults: dict[str, Any] = {name: knob.default for name, knob in KNOBS.items()}
_scope: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("minieye_options", default=None)


def _checked(values: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(values.keys() - KNOBS.keys())
    if unknown:
        raise fail(where, f"knob names among {', '.join(sorted(KNOBS))}", ", ".join(unknown))
    return {name: KNOBS[name].check(value, where, name) for name, value in values.items()}


def get(name: str) -> Any:
    """The value of knob ``name`` in force in this context."""
    scoped = _scope.get()
    if scoped is not None and name in scoped:
        return scoped[name]
    try:
        return _defaults[name]
    except KeyError:
        raise fail("options.get", f"a knob name among {', '.join(sorted(KNOBS))}", repr(name)) from None


def snapshot() -> dict[str, Any]:
    """Every knob's value in force in this context (a copy)."""
    return {name: get(name) for name in KNOBS}


def set(**values: Any) -> None:  # noqa: A001 - `options.set` reads as what it does
    """Change process-wide defaults (every thread, outside any ``with options(...)``)."""
    checked = _checked(values, "options.set")
    with _lock:
        _defaults.update(checked)


@contextlib.contextmanager
def options(**values: Any) -> Iterator[dict[str, Any]]:
    """Set knobs for the ``with`` block in this context; yields the values in force inside."""
    checked = _checked(values, "options")
    token = _scope.set({**(_scope.get() or {}), **checked})
    try:
        yield snapshot()
    finally:
        _scope.reset(token)


def _defaults_reset() -> None:
    """Back to the documented defaults (tests' isolation)."""
    with _lock:
        _defaults.clear()
        _defaults.update({name: knob.default for name, knob in KNOBS.items()})


options.get = get            # type: ignore[attr-defined]
options.set = set            # type: ignore[attr-defined]
options.snapshot = snapshot  # type: ignore[attr-defined]
options.KNOBS = KNOBS        # type: ignore[attr-defined]
