"""Reading the blurred source and writing ``out`` for deconvolve_tiled, one block at a time.

A block is given as (a0, a1, b0, b1, ...): a start and an end per axis. The source is anything
with ``shape``, ``dtype`` and slicing (an array, a ``np.memmap``), so an image larger than
memory is only ever read a window at a time.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from ..checks import fail
from .intensity import check_channels_last, to_dtype
from .noise import estimate_noise


def slices(box: Sequence[int]) -> tuple[slice, ...]:
    """(a0, a1, b0, b1, ...) -> (slice(a0, a1), slice(b0, b1), ...)."""
    return tuple(slice(box[i], box[i + 1]) for i in range(0, len(box), 2))


def check_source(blurred: Any, volume: bool, where: str) -> Any:
    """``blurred`` as deconvolve_tiled reads it: anything with shape, dtype and slicing (a list: an array).

    Shapes: (H, W), (H, W, C), or (D, H, W) when ``volume``."""
    if not (hasattr(blurred, "shape") and hasattr(blurred, "dtype") and hasattr(blurred, "__getitem__")):
        blurred = np.asarray(blurred)  # a list: small by nature
    kind = np.dtype(blurred.dtype).kind
    if kind not in "fiub":
        raise fail(where, "blurred with real (float, int or bool) pixels", f"dtype {blurred.dtype}")
    if volume and len(blurred.shape) != 3:
        raise fail(where, "blurred a (D, H, W) grayscale volume, as the kernel is 3-D",
                   f"blurred.shape == {tuple(blurred.shape)}")
    if not volume:
        check_channels_last(tuple(blurred.shape), where)
    if len(blurred.shape) not in (2, 3):
        raise fail(where, "blurred of shape (H, W) grayscale or (H, W, C) colour, or a (D, H, W) volume with a "
                   "3-D kernel", f"blurred.shape == {tuple(blurred.shape)}")
    return blurred


def read_box(blurred: Any, box: Sequence[int]) -> np.ndarray:
    """The block (a0, a1, b0, b1, ...) of ``blurred``, read into memory as float64."""
    return np.asarray(blurred[slices(box)], dtype=np.float64)


def scan_range(blurred: Any, cores: Iterable[Sequence[int]], where: str) -> tuple[float, float]:
    """Min and max over the image, one core (a0, a1, b0, b1, ...) at a time; refuses NaN/Inf."""
    lo, hi = math.inf, -math.inf
    for core in cores:
        x = read_box(blurred, core)
        if not np.isfinite(x).all():
            at = ", ".join(f"{a}:{b}" for a, b in zip(core[::2], core[1::2]))
            raise fail(where, "finite pixel values", f"NaN or Inf in blurred[{at}]")
        lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
    return lo, hi


def sample_noise(blurred: Any, budget: int, volume: bool = False, kernel: Any = None) -> float:
    """``estimate_noise`` on the whole image when small (kernel-aware, as untiled), else on a mosaic of blocks
    (Haar). Volumes: the median over D of each (H, W) slice's estimate, as ``deconvolve`` does."""
    if volume:
        return float(np.median([sample_noise(blurred[d], budget) for d in range(blurred.shape[0])]))
    h, w = blurred.shape[:2]
    if h * w <= budget:
        return estimate_noise(read_box(blurred, (0, h, 0, w)), kernel=kernel)
    if min(h, w) < 4:  # no 4x4 block to sample (as estimate_noise refuses such an image whole)
        raise fail("deconvolve", "blurred at least 4 pixels on each side to estimate its noise (or noise_sigma "
                   "given)", f"blurred.shape == {tuple(blurred.shape)}")
    # even sides, so no 2x2 Haar block straddles two sampled blocks; small, so many places are seen
    bh, bw = min(64, h - h % 2), min(64, w - w % 2)
    per_side = max(1, int(math.sqrt(max(1, budget // (bh * bw)))))
    rows = sorted({2 * (round(i * (h - bh) / max(per_side - 1, 1)) // 2) for i in range(per_side)})
    cols = sorted({2 * (round(j * (w - bw) / max(per_side - 1, 1)) // 2) for j in range(per_side)})
    blocks = [read_box(blurred, (r, r + bh, c, c + bw)) for r in rows for c in cols]
    return estimate_noise(np.concatenate(blocks, axis=1))


def check_out(out: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    """``out`` a writeable float or integer array (or memmap) of ``shape``."""
    if not isinstance(out, np.ndarray):
        raise fail(where, "out a numpy array or np.memmap", f"out of type {type(out).__name__}")
    if out.shape != tuple(shape):
        raise fail(where, f"out.shape == blurred.shape {tuple(shape)}", f"out.shape == {out.shape}")
    if not out.flags.writeable or out.dtype.kind not in "fiu":
        raise fail(where, "a writeable out with a float or integer dtype", f"out.dtype {out.dtype}, "
                   f"writeable={out.flags.writeable}")
    return out


def store(out: np.ndarray, core: Sequence[int], values: np.ndarray) -> None:
    """Write ``values`` into the block ``core`` of ``out``."""
    out[slices(core)] = to_dtype(values, out.dtype)  # integers rounded and clipped
