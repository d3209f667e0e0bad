"""Pixel values in any range: the map between an image's own units and deconvolve's working units.

deconvolve's constants (TV's eps, the weight rule, the non-local h, the [0, 1] box) are
stated for images whose values span about [0, 1]. An image in other units is mapped
there, restored, and mapped back: ``working = (value - offset) / scale``. The rules
(``choose_intensity``), from the dtype and the blurred image's extremes ``low``,
``high`` (noise of sd ``sigma`` pushes them out by a few sigma, hence the slack
``0.02 + 4 sigma``, in working units):

- bool: as 0/1, box [0, 1].
- uint8: divided by 255, box [0, 255] (the dtype's range).
- floats in [0, 1] (within the slack): taken as they are, box [0, 1].
- non-negative floats above 1 and up to 255 (within the slack): the 8-bit convention (``image *
  255.0``): divided by 255, box [0, 255]. Exactly the [0, 1] result, times 255.
- anything else (floats in other ranges, signed integers, uint16 and wider):
  ``offset = low``, ``scale = high - low`` (the data's range, so the working image
  spans [0, 1]); the box keeps what the data shows: non-negative data stays
  non-negative (and unsigned integers stay below their dtype's maximum), data with
  negative values has no lower bound, and no upper bound is assumed (a blur lowers
  peaks, so the sharp image may exceed the blurred one's maximum).

``value_range=(a, b)`` overrides the rules: ``offset = a``, ``scale = b - a``, box
[a, b] when the data lies in it (within the slack), [a, inf) when it is above a, else
none. Boxes here are in the image's own units; ``Intensity.box`` is in working units.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..checks import check_real, fail
from .noise import estimate_noise
from .psf import check_channels_last  # noqa: F401 (re-exported: restore's entry points check with it)
from .volume import volume_noise

__all__ = ["Intensity", "choose_intensity", "working_units", "working_box", "check_channels_last", "to_dtype",
           "clip_to_box", "SLACK"]

SLACK = 0.02  # plus 4 sigma: how far outside its range a noisy blurred image may reach (working units)
EIGHT_BIT = 255.0


@dataclass(frozen=True)
class Intensity:
    """``working = (value - offset) / scale``; ``box`` in working units (None: unbounded)."""

    offset: float
    scale: float
    box: tuple[float | None, float | None] | None
    rule: str  # 'bool', 'uint8', 'unit', '8-bit', 'range' or 'value_range'

    def to_working(self, values: Any) -> np.ndarray:
        """Shapes: any -> same, float64."""
        return (np.asarray(values, dtype=np.float64) - self.offset) / self.scale

    def to_data(self, working: np.ndarray) -> np.ndarray:
        """Shapes: any -> same, float64 (cast to the input's dtype by the caller)."""
        return working * self.scale + self.offset

    def working_box(self, box: Any) -> tuple[float | None, float | None]:
        """A (lower, upper) pair in the image's units (None: unbounded) in working units."""
        return tuple(None if b is None else (float(b) - self.offset) / self.scale for b in box)

    def data_box(self, box: tuple | None) -> tuple | None:
        """A box in working units (None: unbounded) in the image's own units."""
        return None if box is None else tuple(None if b is None else b * self.scale + self.offset for b in box)


def _finite(value: Any, where: str, name: str) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and bool(np.isfinite(value))
    if not ok:
        raise fail(where, f"{name} of finite numbers", f"{name} item {value!r}")
    return float(value)


def _bounds(low: float, high: float, a: float, b: float | None, slack: float) -> tuple | None:
    """Box [a, b] (data units) when the data lies inside it within ``slack``, [a, inf) when above a, else None."""
    if low < a - slack:
        return None
    return (a, b) if b is not None and high <= b + slack else (a, None)


def choose_intensity(dtype: Any, low: float, high: float, sigma: float, value_range: Any = None,
                     where: str = "deconvolve") -> Intensity:
    """The map to working units for an image of ``dtype`` whose values lie in [low, high].

    ``sigma``: the noise sd in the image's own units (for the slack). See the module
    docstring for the rules.
    """
    dtype = np.dtype(dtype)
    span = high - low
    if value_range is not None:
        if not (isinstance(value_range, (tuple, list)) and len(value_range) == 2):
            raise fail(where, "value_range as a (low, high) pair", f"value_range={value_range!r}")
        a, b = (_finite(v, where, "value_range") for v in value_range)
        if not b > a:
            raise fail(where, "value_range (low, high) with high > low", f"value_range={value_range!r}")
        box = _bounds(low, high, a, b, (b - a) * SLACK + 4.0 * sigma)
        return _make(a, b - a, box, "value_range")
    if dtype.kind == "b":
        return _make(0.0, 1.0, (0.0, 1.0), "bool")
    if dtype == np.uint8:
        return _make(0.0, EIGHT_BIT, (0.0, EIGHT_BIT), "uint8")
    if dtype.kind == "f":
        unit = SLACK + 4.0 * sigma
        if low >= -unit and high <= 1.0 + unit:
            return _make(0.0, 1.0, (0.0, 1.0), "unit")
        if 1.0 + unit < high <= EIGHT_BIT * (1.0 + SLACK) + 4.0 * sigma and low >= -EIGHT_BIT * SLACK - 4.0 * sigma:
            return _make(0.0, EIGHT_BIT, (0.0, EIGHT_BIT), "8-bit")
    scale = span if span > 0 else max(abs(high), 1.0)
    slack = scale * SLACK + 4.0 * sigma
    upper = float(np.iinfo(dtype).max) if dtype.kind == "u" else None
    return _make(low, scale, _bounds(low, high, 0.0, upper, slack), "range")


def _make(offset: float, scale: float, box: tuple | None, rule: str) -> Intensity:
    working = None if box is None else tuple(None if b is None else (b - offset) / scale for b in box)
    return Intensity(float(offset), float(scale), working, rule)


def working_units(values: np.ndarray, dtype: np.dtype, noise_sigma: Any, box: Any, nonlocal_h: Any,
                  value_range: Any, where: str, volume: bool = False) -> tuple[Intensity, Any, Any, Any]:
    """The intensity map of ``values`` (the rules above), and noise_sigma, box and nonlocal_h in working units.

    ``noise_sigma``, ``box`` and ``nonlocal_h`` come in the image's units (checked here).
    Shapes: values (H, W), (H, W, C) or (D, H, W).
    """
    if noise_sigma is not None:
        noise_sigma = check_real(noise_sigma, where, "noise_sigma")
    sigma = noise_sigma if noise_sigma is not None else (volume_noise(values) if volume else estimate_noise(values))
    intensity = choose_intensity(dtype, float(values.min()), float(values.max()), sigma, value_range, where)
    return (intensity, None if noise_sigma is None else noise_sigma / intensity.scale,
            working_box(intensity, box, where),
            None if nonlocal_h is None else check_real(nonlocal_h, where, "nonlocal_h", positive=True) / intensity.scale)


def working_box(intensity: Intensity, box: Any, where: str) -> tuple | None:
    """``box`` ('auto', a (lower, upper) pair in the image's units, or None) in working units, checked."""
    if isinstance(box, str):
        if box != "auto":
            raise fail(where, "box 'auto', a (lower, upper) pair or None", f"box={box!r}")
        return intensity.box
    if box is None:
        return None
    if not (isinstance(box, (tuple, list)) and len(box) == 2):
        raise fail(where, "box 'auto', a (lower, upper) pair or None", f"box={box!r}")
    return intensity.working_box(None if b is None else _finite(b, where, "box") for b in box)


def clip_to_box(x: np.ndarray, box: tuple | None) -> np.ndarray:
    """``x`` inside ``box`` ((lower, upper), None for an open side; None: unbounded, x as it is)."""
    if box is None:
        return x
    return np.clip(x, -np.inf if box[0] is None else box[0], np.inf if box[1] is None else box[1])


def to_dtype(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``x`` (in the image's own units) as ``dtype``: integers rounded and clipped to the dtype's
    range, floats cast, booleans given as float64 (a restored image is not 0/1)."""
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(x), info.min, info.max).astype(dtype)
    if dtype.kind == "f":
        return x.astype(dtype)
    return x.astype(np.float64)
