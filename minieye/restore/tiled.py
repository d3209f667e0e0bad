"""Deconvolving images too large for memory: overlapping tiles with halos.

``deconvolve`` minimises, over the scene ``u`` (the image plus the kernel's half-width
on every side, see deconvolve.py),

    E(u) = (1 / HW) sum_p (k (*) u - y)_p^2 + sum_r w_r (1 / H'W') sum_q R_r(u)_q,
    H' = H + kh - 1, W' = W + kw - 1,

a sum of terms that each see a few neighbouring pixels. A tile is a *core* block of the
output plus a *halo* of ``halo`` pixels on each side that lies inside the image; its
window is deconvolved on its own, with the same sigma and box as the whole image and
the weights rescaled so that the per-pixel balance of fidelity and regulariser is the
untiled one (both terms are means, over windows of different sizes):

    w_r(tile) = w_r * (HW / H'W') * (h'w' / hw),   h, w the window, h' = h + kh - 1, w' = w + kw - 1.

The tile's problem is then the untiled problem with everything outside the window cut
away, so the two optima agree up to the influence of that cut, which decays with the
distance from it; only the core (at least ``halo`` pixels from any cut) is kept. At an
image border the window and the untiled problem end at the same place, so border tiles
need no halo there. Sigma (``estimate_noise``, on the whole image or an even-aligned
sample of 64x64 blocks when it is larger than ``NOISE_SAMPLE_PIXELS``) and the 'auto'
box (from a streaming min/max) are computed once, before the tiles, so tiles agree.

Memory: the image is read a window at a time (a ``np.memmap``, or anything with
``shape``, ``dtype`` and slicing), results go into ``out`` (which may be a memmap), so
the peak is about ``BYTES_PER_PIXEL`` times the window's pixels per channel, whatever
the image size. 2-D grayscale (H, W) and colour (H, W, C) images only; volumes would
need a 3-D convolution.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from ..checks import fail, pair
from ..core import Layer
from .deconvolve import Deconvolution, auto_box, deconvolve, default_tv_weight, regularizer_pairs
from .noise import estimate_noise
from .psf import normalize_kernel

__all__ = ["deconvolve_tiled", "plan_tiles", "TilePlan", "parse_memory", "default_halo", "BYTES_PER_PIXEL"]

BYTES_PER_PIXEL = 400        # measured peak of deconvolve per scene pixel per channel: ~320 (f32) - 365 (f64)
NOISE_SAMPLE_PIXELS = 1 << 18  # images up to 512x512 get the exact untiled sigma; larger ones a sample
DEFAULT_TILE = 512
HALO_TOLERANCE = 1e-4  # default_halo: where the regularised inverse falls below this fraction of its peak
MAX_HALO = 256
_HALO_GRID = 2 * MAX_HALO
_MIN_TILE = 8
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_memory(value: Any, where: str = "deconvolve", name: str = "max_memory") -> int:
    """Bytes from an int or a string such as ``"2GB"`` (10^9), ``"512 MiB"`` (2^20) or ``"1.5e9"``."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = int(value) if math.isfinite(value) else 0  # 2e9 is a natural way to write 2 GB
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]+\.?[0-9]*(?:e[0-9]+)?)\s*([a-z]*)\s*", value.lower())
        if m is None or m.group(2) not in _UNITS:
            raise fail(where, f"{name} in bytes, or a string like '2GB' or '512MiB'", f"{name}={value!r}")
        number = int(float(m.group(1)) * _UNITS[m.group(2)])
    else:
        raise fail(where, f"{name} in bytes, or a string like '2GB' or '512MiB'", f"{name}={value!r}")
    if number <= 0:
        raise fail(where, f"{name} > 0", f"{name}={value!r}")
    return number


def default_halo(kernel: Any, sigma: float) -> tuple[int, int]:
    """Halo used when none is given: the reach of the regularised inverse of ``kernel``, plus 8.

    The Wiener inverse g = F^-1[conj(K) / (|K|^2 + lam)], lam = clip(100 sigma^2, 1e-4, 0.1)
    (the balance of deconvolve's Wiener start), is how far one observed pixel's
    influence spreads; per axis, the reach is the largest offset where |g| exceeds
    ``HALO_TOLERANCE`` times its peak. Kernels with spectral zeros (box, disk, motion)
    reach much further than Gaussians, and low noise further than high noise (measured
    in docs/tiled.md). Clipped to [k - 1 + 8, ``MAX_HALO``].
    Shapes: kernel (kh, kw) -> (halo_h, halo_w).
    """
    k = normalize_kernel(kernel, "default_halo")
    n = _HALO_GRID
    centred = np.zeros((n, n))
    centred[:k.shape[0], :k.shape[1]] = k
    centred = np.roll(centred, (-(k.shape[0] // 2), -(k.shape[1] // 2)), axis=(0, 1))  # centre at the origin
    spectrum = np.fft.rfft2(centred)
    lam = float(np.clip(100.0 * sigma * sigma, 1e-4, 0.1))
    g = np.abs(np.fft.fftshift(np.fft.irfft2(np.conj(spectrum) / (np.abs(spectrum) ** 2 + lam), (n, n))))
    big = g > HALO_TOLERANCE * g.max()
    reach = [int(np.abs(np.nonzero(big.any(axis=1 - a))[0] - n // 2).max()) for a in (0, 1)]
    return tuple(int(np.clip(r + 8, s - 1 + 8, MAX_HALO)) for r, s in zip(reach, k.shape))  # type: ignore


def _splits(n: int, size: int) -> list[int]:
    """Boundaries of ceil(n / size) near-equal blocks covering [0, n) (no sliver at the end)."""
    count = max(1, math.ceil(n / size))
    return [round(i * n / count) for i in range(count + 1)]


def _grow(a: int, b: int, n: int, least: int) -> tuple[int, int]:
    """[a, b) clipped to [0, n), then widened to hold at least ``least`` pixels (a short last core)."""
    a, b = max(a, 0), min(b, n)
    while b - a < least:
        a, b = max(a - 1, 0), min(b + 1, n)
    return a, b


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of an (H, W) image lie. Shapes: cores tile (H, W) exactly once."""

    shape: tuple[int, int]
    tile: tuple[int, int]
    halo: tuple[int, int]
    kernel: tuple[int, int]
    channels: int = 1

    def cores(self) -> Iterator[tuple[int, int, int, int]]:
        """(r0, r1, c0, c1) of every core, row by row."""
        rows, cols = _splits(self.shape[0], self.tile[0]), _splits(self.shape[1], self.tile[1])
        for r0, r1 in zip(rows[:-1], rows[1:]):
            for c0, c1 in zip(cols[:-1], cols[1:]):
                yield r0, r1, c0, c1

    def window(self, core: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """The core grown by the halo, clipped to the image."""
        r0, r1, c0, c1 = core
        (hh, hw), (h, w) = self.halo, self.shape
        return _grow(r0 - hh, r1 + hh, h, self.kernel[0]) + _grow(c0 - hw, c1 + hw, w, self.kernel[1])

    @property
    def count(self) -> int:
        return (len(_splits(self.shape[0], self.tile[0])) - 1) * (len(_splits(self.shape[1], self.tile[1])) - 1)

    @property
    def peak_bytes(self) -> int:
        """Estimated peak memory of one tile's deconvolution (the largest window)."""
        return _footprint(min(self.tile[0], self.shape[0]) + 2 * self.halo[0],
                          min(self.tile[1], self.shape[1]) + 2 * self.halo[1], self.kernel, self.channels)


def _footprint(h: int, w: int, kernel: tuple[int, int], channels: int) -> int:
    return BYTES_PER_PIXEL * channels * (h + kernel[0] - 1) * (w + kernel[1] - 1)


def plan_tiles(shape: tuple[int, ...], kernel: Any, *, tile: Any = None, halo: Any = None, sigma: float = 0.01,
               max_memory: Any = None, where: str = "deconvolve") -> TilePlan | None:
    """Choose tiles for an (H, W) or (H, W, C) image; None when it fits ``max_memory`` untiled.

    ``tile`` given: used as it is (checked against the kernel and ``max_memory``).
    Otherwise the largest square tile whose window fits ``max_memory`` (or 512).
    ``halo`` None: ``default_halo(kernel, sigma)``.
    Shapes: shape (H, W) or (H, W, C), kernel (kh, kw) PSF -> cores covering (H, W).
    """
    h, w = int(shape[0]), int(shape[1])
    channels = int(shape[2]) if len(shape) == 3 else 1
    halo = default_halo(kernel, sigma) if halo is None else pair(halo, where, "halo", minimum=0)
    kernel = normalize_kernel(kernel, where).shape
    budget = None if max_memory is None else parse_memory(max_memory, where)
    if tile is not None:
        tile = pair(tile, where, "tile", minimum=1)
        if tile[0] < kernel[0] or tile[1] < kernel[1]:
            raise fail(where, f"tile at least the kernel's size {kernel}", f"tile={tile}",
                       "a tile must hold the kernel; pass a larger tile")
        plan = TilePlan((h, w), tile, halo, kernel, channels)
        if budget is not None and plan.peak_bytes > budget:
            raise fail(where, f"max_memory >= {plan.peak_bytes} bytes for tile={tile}, halo={halo}",
                       f"max_memory={max_memory!r} ({budget} bytes)", "pass a smaller tile or more memory")
        return plan
    if budget is None:
        return TilePlan((h, w), (DEFAULT_TILE, DEFAULT_TILE), halo, kernel, channels)
    if _footprint(h, w, kernel, channels) <= budget:
        return None
    side = max(kernel[0], kernel[1], _MIN_TILE)
    smallest = _footprint(side + 2 * halo[0], side + 2 * halo[1], kernel, channels)
    if smallest > budget:
        raise fail(where, f"max_memory >= {smallest} bytes (a {side}-pixel tile with halo {halo} and kernel "
                   f"{kernel})", f"max_memory={max_memory!r} ({budget} bytes)",
                   "give more memory or a smaller halo")
    while _footprint(2 * side + 2 * halo[0], 2 * side + 2 * halo[1], kernel, channels) <= budget:
        side *= 2  # coarse doubling, then refine linearly: the footprint is monotone in side
    step = max(side // 16, 1)
    while _footprint(side + step + 2 * halo[0], side + step + 2 * halo[1], kernel, channels) <= budget:
        side += step
    return TilePlan((h, w), (side, side), halo, kernel, channels)


def _check_source(blurred: Any, where: str) -> Any:
    if not (hasattr(blurred, "shape") and hasattr(blurred, "dtype") and hasattr(blurred, "__getitem__")):
        blurred = np.asarray(blurred)  # a list: small by nature
    kind = np.dtype(blurred.dtype).kind
    if kind not in "fiub":
        raise fail(where, "blurred with real (float, int or bool) pixels", f"dtype {blurred.dtype}")
    if len(blurred.shape) not in (2, 3):
        raise fail(where, "blurred of shape (H, W) grayscale or (H, W, C) colour (tiling is 2-D only)",
                   f"blurred.shape == {tuple(blurred.shape)}")
    return blurred


def _read(blurred: Any, window: tuple[int, int, int, int], scale: float) -> np.ndarray:
    r0, r1, c0, c1 = window
    return np.asarray(blurred[r0:r1, c0:c1], dtype=np.float64) / scale


def _scan(blurred: Any, plan: TilePlan, scale: float, where: str) -> tuple[float, float]:
    """Min and max over the image, one core at a time; refuses NaN/Inf."""
    lo, hi = math.inf, -math.inf
    for core in plan.cores():
        x = _read(blurred, core, scale)
        if not np.isfinite(x).all():
            raise fail(where, "finite pixel values", f"NaN or Inf in blurred[{core[0]}:{core[1]}, {core[2]}:{core[3]}]")
        lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
    return lo, hi


def _noise(blurred: Any, scale: float, budget: int) -> float:
    """``estimate_noise`` on the whole image when small, else on a mosaic of sampled blocks."""
    h, w = blurred.shape[:2]
    if h * w <= budget:
        return estimate_noise(_read(blurred, (0, h, 0, w), scale))
    # even sides, so no 2x2 Haar block straddles two sampled blocks; small, so many places are seen
    bh, bw = min(64, h - h % 2), min(64, w - w % 2)
    per_side = max(1, int(math.sqrt(max(1, budget // (bh * bw)))))
    rows = sorted({2 * (round(i * (h - bh) / max(per_side - 1, 1)) // 2) for i in range(per_side)})
    cols = sorted({2 * (round(j * (w - bw) / max(per_side - 1, 1)) // 2) for j in range(per_side)})
    blocks = [_read(blurred, (r, r + bh, c, c + bw), scale) for r in rows for c in cols]
    return estimate_noise(np.concatenate(blocks, axis=1))


def _check_out(out: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise fail(where, "out a numpy array or np.memmap", f"out of type {type(out).__name__}")
    if out.shape != tuple(shape):
        raise fail(where, f"out.shape == blurred.shape {tuple(shape)}", f"out.shape == {out.shape}")
    if not out.flags.writeable or out.dtype.kind not in "fiu":
        raise fail(where, "a writeable out with a float or integer dtype", f"out.dtype {out.dtype}, "
                   f"writeable={out.flags.writeable}")
    return out


def _store(out: np.ndarray, core: tuple[int, int, int, int], values: np.ndarray) -> None:
    r0, r1, c0, c1 = core
    if out.dtype.kind in "ui":
        info = np.iinfo(out.dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    out[r0:r1, c0:c1] = values


def _bar(total: int, progress: bool) -> Any:
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("progress=True needs tqdm: pip install 'minieye[demo]' (or pip install tqdm)") from None
    return tqdm(total=total, desc="deconvolve tiles", unit="tile")


def deconvolve_tiled(blurred: Any, kernel: Any, *, tile: Any = None, halo: Any = None, max_memory: Any = None,
                     out: np.ndarray | None = None, noise_sigma: float | None = None, tv_weight: float | None = None,
                     regularizers: Sequence[tuple[float, Layer]] | None = None, box: Any = "auto",
                     iterations: int | None = None, timeout: float | None = None, init: str = "wiener",
                     progress: bool = False, dtype: Any = np.float32, full: bool = False) -> Any:
    """``deconvolve`` one overlapping tile at a time, in memory bounded by the tile size.

    Args:
        blurred: (H, W) or (H, W, C) image: an array, a ``np.memmap`` or anything with
            ``shape``, ``dtype`` and 2-D slicing; it is read one window at a time.
        kernel: the PSF, as for ``deconvolve``.
        tile: core size in pixels, int or (h, w), at least the kernel's size; None: the
            largest square that fits ``max_memory`` (512 without it).
        halo: pixels of context on each side of a core, int or (h, w); None:
            ``default_halo(kernel, sigma)``, the reach of the regularised inverse (25 for
            gaussian(1.6) at sigma 0.01, (58, 93) for motion(9, 30)): seams below 1e-3.
        max_memory: bytes (or '2GB', '512MiB') one tile may use; with ``tile=None`` an
            image that fits is deconvolved untiled. Too small for the kernel: ValueError.
        out: array (e.g. ``np.memmap``) of blurred's shape to write into; None: a new
            array of blurred's dtype. Integer ``out`` is rounded and clipped.
        progress: a tqdm bar over the tiles.
        others: as for ``deconvolve``, the same for every tile (``timeout`` is per tile).
            ``regularizers`` weights are taken as mean-normalised, like the defaults.

    Returns ``out`` (or ``(out, Deconvolution)`` when ``full``; its ``result`` is the
    list of per-tile training results).
    Shapes: (H, W) -> (H, W); (H, W, C) -> (H, W, C).
    """
    where = "deconvolve"
    started = time.perf_counter()
    if np.ndim(kernel) == 3:  # volumes: tiles over (D, H, W) are not implemented yet
        raise fail(where, "a 2-D (kh, kw) kernel: tiled deconvolution (tile, max_memory, out) handles images only",
                   f"a 3-D kernel of shape {np.shape(kernel)}",
                   "deconvolve the volume without tile/max_memory/out, or slab by slab along D yourself")
    blurred = _check_source(blurred, where)
    shape = tuple(int(s) for s in blurred.shape)
    k = normalize_kernel(kernel, where)
    if k.shape[0] > shape[0] or k.shape[1] > shape[1]:
        raise fail(where, "a kernel no larger than the image", f"kernel.shape == {k.shape}, blurred.shape == {shape}")
    out = None if out is None else _check_out(out, shape, where)
    # checks tile, halo and max_memory before reading anything (with a zero halo if none is given yet)
    plan = plan_tiles(shape, k, tile=tile, halo=0 if halo is None else halo, max_memory=max_memory, where=where)
    settings = dict(noise_sigma=noise_sigma, tv_weight=tv_weight, regularizers=regularizers, box=box,
                    iterations=iterations, timeout=timeout, init=init, dtype=dtype)
    if plan is None:  # fits max_memory untiled
        restored = deconvolve(np.asarray(blurred), kernel, progress=progress, full=full, **settings)
        image, info = restored if full else (restored, None)
        if out is None:
            return restored
        _store(out, (0, shape[0], 0, shape[1]), image)
        return (out, info) if full else out

    kind = np.dtype(blurred.dtype).kind
    scale = float(np.iinfo(blurred.dtype).max) if kind in "ui" else 1.0
    lo, hi = _scan(blurred, TilePlan(plan.shape, (DEFAULT_TILE, DEFAULT_TILE), (0, 0), plan.kernel), scale, where)
    budget = NOISE_SAMPLE_PIXELS if max_memory is None else \
        max(1 << 16, min(NOISE_SAMPLE_PIXELS, parse_memory(max_memory, where) // (40 * plan.channels)))
    sigma = _noise(blurred, scale, budget) if noise_sigma is None else float(noise_sigma)
    if not sigma >= 0:
        raise fail(where, "noise_sigma >= 0", f"noise_sigma={noise_sigma!r}")
    if halo is None:  # the default halo depends on sigma
        plan = plan_tiles(shape, k, tile=tile, sigma=sigma, max_memory=max_memory, where=where)
    if isinstance(box, str) and box == "auto":
        box = auto_box(lo, hi, sigma)
    weight = default_tv_weight(sigma) if tv_weight is None else float(tv_weight)
    if out is None:
        out = np.empty(shape, dtype=blurred.dtype if kind in "fiu" else np.float64)

    kh, kw = k.shape
    untiled = shape[0] * shape[1] / ((shape[0] + kh - 1) * (shape[1] + kw - 1))
    results, bar = [], _bar(plan.count, progress)
    try:
        for core in plan.cores():
            r0, r1, c0, c1 = win = plan.window(core)
            h, w = r1 - r0, c1 - c0
            factor = untiled * (h + kh - 1) * (w + kw - 1) / (h * w)
            if regularizers is None:
                extra = dict(tv_weight=weight * factor, regularizers=None)
            else:
                extra = dict(tv_weight=None, regularizers=regularizer_pairs(regularizers, where, factor))
            restored, info = deconvolve(_read(blurred, win, scale), kernel, **{
                **settings, **extra, "noise_sigma": sigma, "box": box, "full": True})
            inner = restored[core[0] - r0:core[1] - r0, core[2] - c0:core[3] - c0]
            _store(out, core, inner * scale)
            results.append(info.result)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if not full:
        return out
    labels = [(weight, "TotalVariation (default)")] if regularizers is None else \
        [(float(wt), layer.label()) for wt, layer in regularizers]
    return out, Deconvolution(out, sigma, labels, results, time.perf_counter() - started)
