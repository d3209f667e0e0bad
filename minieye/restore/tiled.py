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
need no halo there. Sigma (``estimate_noise`` on the whole image, or past ``NOISE_SAMPLE_PIXELS``
on an even-aligned sample of 64x64 blocks), the intensity map and the 'auto' box (intensity.py,
from a streaming min/max) are computed once, before the tiles, so tiles agree.

Memory: windows are read one at a time (from a memmap, or anything with ``shape``, ``dtype`` and
slicing) and written into ``out`` (a memmap too): the peak is one window's deconvolution, whatever
the image size, as ``memory.peak_estimate`` models it for the prior that runs (measured there).

Volumes: a (kd, kh, kw) kernel runs the same plan over the three axes of a (D, H, W)
volume: a halo per axis, the weight factor a product over them, sigma the median of the
slices' estimates, the default halo the 3-D inverse's reach (capped at ``MAX_HALO_3D``).
The automatic weight, non-local verdict and learned share (regweight.py): once, on the untiled centre.
"""
from __future__ import annotations

import inspect
import itertools
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from ..checks import check_optional_real, check_real, fail, spatial_tuple
from ..core import Layer
from ..progress import progress_bar
from .deconvolve import (Deconvolution, central_choice, deconvolve_in_memory, default_nonlocal_h,
                         default_tv_weight, regularizer_pairs)
from .memory import BYTES_PER_PIXEL, memory_prior, parse_memory, peak_estimate
from .intensity import choose_intensity, working_box
from .psf import normalize_kernel
from .tile_source import check_out, check_source, read_box, sample_noise, scan_range, slices, store

__all__ = ["deconvolve_tiled", "plan_tiles", "TilePlan", "parse_memory", "default_halo", "BYTES_PER_PIXEL"]

NOISE_SAMPLE_PIXELS = 1 << 18  # images up to 512x512 get the exact untiled sigma; larger ones a sample
DEFAULT_TILE = 512
DEFAULT_TILE_3D = 64   # a 64^3 core with a 20-voxel halo: ~0.7 GB at BYTES_PER_PIXEL
HALO_TOLERANCE = 1e-4  # default_halo: where the regularised inverse falls below this fraction of its peak
MAX_HALO = 256
MAX_HALO_3D = 64       # keeps default_halo's 3-D FFT grid at 128^3
_MIN_TILE = 8
def default_halo(kernel: Any, sigma: float) -> tuple[int, ...]:
    """Halo used when none is given: the reach of the regularised inverse of ``kernel``, plus 8.

    The Wiener inverse g = F^-1[conj(K) / (|K|^2 + lam)], lam = clip(100 sigma^2, 1e-4, 0.1)
    (the balance of deconvolve's Wiener start), is how far one observed pixel's
    influence spreads; per axis, the reach is the largest offset where |g| exceeds
    ``HALO_TOLERANCE`` times its peak. Kernels with spectral zeros (box, disk, motion)
    reach much further than Gaussians, and low noise further than high noise (measured
    in docs/tiled.md). Clipped to [k - 1 + 8, ``MAX_HALO``] (``MAX_HALO_3D`` for volumes).
    Shapes: kernel (kh, kw) -> (halo_h, halo_w); (kd, kh, kw) -> (halo_d, halo_h, halo_w).
    """
    k = normalize_kernel(kernel, "default_halo", ndim=(2, 3))
    cap = MAX_HALO if k.ndim == 2 else MAX_HALO_3D
    n = 2 * cap
    centred = np.zeros((n,) * k.ndim)
    centred[tuple(slice(0, s) for s in k.shape)] = k
    axes = tuple(range(k.ndim))
    centred = np.roll(centred, [-(s // 2) for s in k.shape], axis=axes)  # centre at the origin
    spectrum = np.fft.rfftn(centred)
    lam = float(np.clip(100.0 * sigma * sigma, 1e-4, 0.1))
    g = np.abs(np.fft.fftshift(np.fft.irfftn(np.conj(spectrum) / (np.abs(spectrum) ** 2 + lam), (n,) * k.ndim, axes)))
    big = g > HALO_TOLERANCE * g.max()
    reach = [int(np.abs(np.nonzero(big.any(axis=tuple(b for b in axes if b != a)))[0] - n // 2).max()) for a in axes]
    return tuple(int(np.clip(r + 8, s - 1 + 8, cap)) for r, s in zip(reach, k.shape))


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
    """Where the tiles of an (H, W) image or a (D, H, W) volume lie.

    A box (core or window) is flat: (r0, r1, c0, c1) for images, (d0, d1, r0, r1, c0, c1)
    for volumes. Shapes: cores tile ``shape`` (the spatial axes) exactly once.
    """

    shape: tuple[int, ...]
    tile: tuple[int, ...]
    halo: tuple[int, ...]
    kernel: tuple[int, ...]
    channels: int = 1
    prior: str = "auto"  # deconvolve's prior, or memory_prior's 'handmade': what peak_bytes estimates

    def _bounds(self) -> list[list[int]]:
        return [_splits(n, t) for n, t in zip(self.shape, self.tile)]

    def cores(self) -> Iterator[tuple[int, ...]]:
        """Every core, the last axis fastest (row by row for images)."""
        for cell in itertools.product(*[list(zip(b[:-1], b[1:])) for b in self._bounds()]):
            yield tuple(v for pair_ in cell for v in pair_)

    def window(self, core: Sequence[int]) -> tuple[int, ...]:
        """The core grown by the halo, clipped to the image."""
        grown = [_grow(core[2 * a] - m, core[2 * a + 1] + m, n, k)
                 for a, (m, n, k) in enumerate(zip(self.halo, self.shape, self.kernel))]
        return tuple(v for span in grown for v in span)

    @property
    def count(self) -> int:
        return math.prod(len(b) - 1 for b in self._bounds())

    @property
    def peak_bytes(self) -> int:
        """Estimated peak memory of one tile's deconvolution (the largest window)."""
        return _footprint([min(t, n) + 2 * m for t, n, m in zip(self.tile, self.shape, self.halo)],
                          self.kernel, self.channels, self.prior, self.shape)


def _footprint(sides: Sequence[int], kernel: Sequence[int], channels: int, prior: str, whole: Any = None) -> int:
    return peak_estimate(memory_prior(prior, len(kernel) == 3), sides, kernel, channels, whole)


def plan_tiles(shape: tuple[int, ...], kernel: Any, *, tile: Any = None, halo: Any = None, sigma: float = 0.01,
               max_memory: Any = None, prior: str = "auto", where: str = "deconvolve") -> TilePlan | None:
    """Choose tiles for an (H, W) or (H, W, C) image, or a (D, H, W) volume with a 3-D kernel.

    ``tile`` given: used as it is (checked against the kernel and ``max_memory``).
    Otherwise the largest square (cubic) tile whose window fits ``max_memory`` (or
    ``DEFAULT_TILE``, ``DEFAULT_TILE_3D`` for volumes); None when the whole input fits.
    ``halo`` None: ``default_halo(kernel, sigma)``. ``tile`` and ``halo``: an int or one per axis.
    ``prior``: deconvolve's (or 'handmade'), whose memory model (``memory.peak_estimate``) sizes the windows.
    Shapes: shape (H, W), (H, W, C) or (D, H, W), kernel (kh, kw) or (kd, kh, kw) -> cores covering the axes.
    """
    kernel = normalize_kernel(kernel, where, ndim=(2, 3))
    nd = kernel.ndim
    spatial = tuple(int(s) for s in shape[:nd])
    channels = int(shape[2]) if nd == 2 and len(shape) == 3 else 1
    halo = default_halo(kernel, sigma) if halo is None else spatial_tuple(halo, nd, where, "halo", minimum=0)
    kernel = kernel.shape
    budget = None if max_memory is None else parse_memory(max_memory, where)
    if tile is not None:
        tile = spatial_tuple(tile, nd, where, "tile", minimum=1)
        if any(t < k for t, k in zip(tile, kernel)):
            raise fail(where, f"tile at least the kernel's size {kernel}", f"tile={tile}",
                       "a tile must hold the kernel; pass a larger tile")
        plan = TilePlan(spatial, tile, halo, kernel, channels, prior)
        if budget is not None and plan.peak_bytes > budget:
            raise fail(where, f"max_memory >= {plan.peak_bytes} bytes for tile={tile}, halo={halo}",
                       f"max_memory={max_memory!r} ({budget} bytes)", "pass a smaller tile or more memory")
        return plan
    if budget is None:
        return TilePlan(spatial, (DEFAULT_TILE if nd == 2 else DEFAULT_TILE_3D,) * nd, halo, kernel, channels, prior)
    if _footprint(spatial, kernel, channels, prior) <= budget:
        return None

    def need(side: int) -> int:  # not monotone for the learned prior (its network's pieces): stop at the first miss
        return _footprint([side + 2 * m for m in halo], kernel, channels, prior, spatial)

    side = max(*kernel, _MIN_TILE)
    if need(side) > budget:
        raise fail(where, f"max_memory >= {need(side)} bytes (a {side}-pixel tile with halo {halo} and kernel "
                   f"{kernel}, {'a hand-made prior' if prior == 'handmade' else f'prior {prior!r}'})",
                   f"max_memory={max_memory!r} ({budget} bytes)",
                   "give more memory or a smaller halo" + ("" if memory_prior(prior, nd == 3) == "handmade" else
                   ", or prior='nonlocal' (the learned prior's network alone needs tens of MB)"))
    while need(2 * side) <= budget:
        side *= 2  # coarse doubling, then refine linearly
    step = max(side // 16, 1)
    while need(side + step) <= budget:
        side += step
    return TilePlan(spatial, (side,) * nd, halo, kernel, channels, prior)


def _plan_within_budget(plan_for: Any, prior: str, runs: str, learned_share: Any, level: int) -> tuple[Any, str]:
    """The first plan, and the prior to run: the default 'auto' falls back to the hand-made 'nonlocal' (warned)
    when ``max_memory`` cannot hold its learned part; a prior or share the user chose is never swapped."""
    try:
        return plan_for(runs), prior
    except ValueError as refused:
        if prior != "auto" or runs != "auto" or learned_share is not None:
            raise
        try:
            plan = plan_for("nonlocal")
        except ValueError as too_small:  # not even the hand-made prior fits: its (smaller) need, without the first
            raise type(too_small)(f"{too_small} (the least prior='auto' can run in: 'nonlocal' alone)") from None
        warnings.warn(f"deconvolve: max_memory is too small for the learned part of prior='auto', so the hand-made "
                      "prior 'nonlocal' runs alone (info.learned_share == 0); pass prior='nonlocal' to choose it "
                      f"without this warning. The learned part's need: {refused}", RuntimeWarning, stacklevel=level + 1)
        return plan, "nonlocal"


def deconvolve_tiled(blurred: Any, kernel: Any, *, tile: Any = None, halo: Any = None, max_memory: Any = None,
                     out: np.ndarray | None = None, noise_sigma: float | None = None, tv_weight: float | None = None,
                     regularizers: Sequence[tuple[float, Layer]] | None = None, box: Any = "auto",
                     iterations: int | None = None, timeout: float | None = None, init: str = "wiener",
                     progress: bool = False, dtype: Any = np.float32, full: bool = False, prior: str = "auto",
                     nonlocal_h: float | None = None, value_range: Any = None,
                     learned_share: float | None = None) -> Any:
    """``deconvolve`` one overlapping tile at a time, in memory bounded by the tile size.

    Args:
        blurred: (H, W) or (H, W, C) image, or a (D, H, W) volume when ``kernel`` is 3-D:
            an array, a ``np.memmap`` or anything with ``shape``, ``dtype`` and slicing;
            it is read one window at a time.
        kernel: the PSF, as for ``deconvolve``: (kh, kw), or (kd, kh, kw) for volumes.
        tile: core size, an int or one per spatial axis ((h, w) or (d, h, w)), at least
            the kernel's size; None: the largest square (cube) that fits ``max_memory``
            (512, or 64 for volumes, without it).
        halo: context on each side of a core, an int or one per axis; None:
            ``default_halo(kernel, sigma)``, the reach of the regularised inverse (25 for
            gaussian(1.6) at sigma 0.01, (58, 93) for motion(9, 30)): seams below 1e-3.
        max_memory: bytes (or '2GB', '512MiB') one tile may use; with ``tile=None`` an
            input that fits is deconvolved untiled. Too small for the kernel: ValueError.
        out: array (e.g. ``np.memmap``) of blurred's shape to write into; None: a new
            array of blurred's dtype. Integer ``out`` is rounded and clipped.
        others: as for ``deconvolve``, the same for every tile (``timeout`` is per tile;
            ``progress``: a bar over the tiles); ``regularizers`` are taken as means, like the defaults;
            ``learned_share`` None: prior 'auto''s share, chosen once on the untiled centre.

    Returns ``out`` (or ``(out, Deconvolution)`` when ``full``; its ``result`` is the
    list of per-tile training results).
    Shapes: (H, W) -> (H, W); (H, W, C) -> (H, W, C); with a 3-D kernel (D, H, W) -> (D, H, W).
    """
    where, started = "deconvolve", time.perf_counter()
    caller = getattr(inspect.currentframe(), "f_back", None)  # so that the warning points at the user's call
    level = 3 if caller is not None and caller.f_globals.get("__name__") == f"{__package__}.budget" else 2
    k = normalize_kernel(kernel, where, ndim=(2, 3))
    nd = k.ndim
    blurred = check_source(blurred, nd == 3, where)
    shape = tuple(int(s) for s in blurred.shape)
    if any(a > b for a, b in zip(k.shape, shape)):
        raise fail(where, f"a kernel no larger than the {'volume' if nd == 3 else 'image'}",
                   f"kernel.shape == {k.shape}, blurred.shape == {shape}")
    out = None if out is None else check_out(out, shape, where)
    # checks tile, halo and max_memory before reading anything (with a zero halo if none is given yet)
    runs = memory_prior(prior, nd == 3, tv_weight is None and regularizers is None, learned_share)  # for the budget
    plan, prior = _plan_within_budget(
        lambda model: plan_tiles(shape, k, tile=tile, halo=0 if halo is None else halo, max_memory=max_memory,
                                 prior=model), prior, runs, learned_share, level)
    settings = dict(noise_sigma=noise_sigma, tv_weight=tv_weight, regularizers=regularizers, box=box,
                    iterations=iterations, timeout=timeout, init=init, dtype=dtype, prior=prior, nonlocal_h=nonlocal_h,
                    value_range=value_range,
                    learned_share=check_optional_real(learned_share, where, "learned_share"))
    if plan is None:  # fits max_memory untiled
        restored = deconvolve_in_memory(np.asarray(blurred), kernel, progress=progress, full=full, **settings)
        image, info = restored if full else (restored, None)
        if out is None:
            return restored
        store(out, (), image)
        return (out, info) if full else out

    scan = (8,) * (nd - 2) + (DEFAULT_TILE, DEFAULT_TILE)  # blocks of at most 8 x 512 x 512 values
    lo, hi = scan_range(blurred, TilePlan(plan.shape, scan, (0,) * nd, plan.kernel).cores(), where)
    budget = NOISE_SAMPLE_PIXELS if max_memory is None else \
        max(1 << 16, min(NOISE_SAMPLE_PIXELS, parse_memory(max_memory, where) // (40 * plan.channels)))
    # one intensity map, sigma, box, weight and h for every tile (in the image's units for the tiles)
    noisy = check_real(noise_sigma, where, "noise_sigma") if noise_sigma is not None else \
        sample_noise(blurred, budget, nd == 3, None if nd == 3 else k)
    units = choose_intensity(blurred.dtype, lo, hi, noisy, value_range, where)
    sigma = noisy / units.scale
    box = working_box(units, box, where)
    weight = default_tv_weight(sigma) if tv_weight is None else check_real(tv_weight, where, "tv_weight")
    h = default_nonlocal_h(box, *units.to_working(np.array([lo, hi]))) if nonlocal_h is None else \
        check_real(nonlocal_h, where, "nonlocal_h", positive=True) / units.scale
    settings.update(noise_sigma=noisy, nonlocal_h=h * units.scale, value_range=(units.offset, units.offset + units.scale))
    if tv_weight is None and regularizers is None and nd == 2:  # one automatic choice, on the centre (as untiled)
        weight, settings["prior"], regularizers, share = central_choice(
            lambda at: units.to_working(read_box(blurred, at)), shape, k, sigma, box, {**settings, "nonlocal_h": h})
        if settings["prior"] == "learned" and prior != "learned":  # iterations cap the hand-made prior's L-BFGS
            settings["iterations"] = None
        if settings["prior"] == "learned":
            settings["learned_share"] = None
        elif learned_share is None and share:  # prior 'auto': every tile blended as untiled (deconvolve.py)
            settings["learned_share"] = share
    # the tiles fit the prior that runs, now known (the default halo depends on sigma)
    runs = "auto" if settings["learned_share"] else memory_prior(settings["prior"], nd == 3, False)
    plan = plan_tiles(shape, k, tile=tile, halo=halo, sigma=sigma, max_memory=max_memory, prior=runs) \
        or TilePlan(plan.shape, plan.shape, plan.halo, plan.kernel, plan.channels, runs)  # it fits untiled: one tile
    if out is None:
        out = np.empty(shape, dtype=blurred.dtype if np.dtype(blurred.dtype).kind in "fiu" else np.float64)

    # both terms are means: over the observed pixels, and over the scene (larger by k - 1 per axis)
    untiled = math.prod(n / (n + s - 1) for n, s in zip(plan.shape, k.shape))
    results, stages, shares, bar = [], [], [], progress_bar("progress=True", total=plan.count, desc="deconvolve tiles", unit="tile") \
        if progress else None
    cores, stopped_in = list(plan.cores()), 0  # the tile (1-based) where Ctrl-C came; 0: none
    try:
        for core in cores:
            win = plan.window(core)
            sides = [b - a for a, b in zip(win[::2], win[1::2])]
            factor = untiled * math.prod((n + s - 1) / n for n, s in zip(sides, k.shape))
            if regularizers is None:
                extra = dict(tv_weight=weight * factor, regularizers=None)
            else:
                extra = dict(tv_weight=None, regularizers=regularizer_pairs(regularizers, where, factor))
            restored, info = deconvolve_in_memory(read_box(blurred, win), kernel, **{
                **settings, **extra, "box": units.data_box(box), "full": True})
            inner = restored[slices([c - win[2 * (i // 2)] for i, c in enumerate(core)])]
            store(out, core, inner)
            shares.append(info.learned_share)  # 0 for a tile whose hand-made part was stopped (timeout, ...)
            stages.extend(info.stages)
            results.append(info.result)  # last: len(results) counts the tiles stored and recorded
            if bar is not None:
                bar.update(1)
            if info.interrupted:  # Ctrl-C stops the whole run, not one tile
                stopped_in = len(results)
                break
    except KeyboardInterrupt:  # outside the trainer and the learned loop (which stop by themselves): this tile
        stopped_in = min(len(results) + 1, len(cores))  # and the rest keep the input, even if partly stored
    finally:
        if bar is not None:
            bar.close()
    if stopped_in:  # the restored tiles are kept; the rest hold the input rather than np.empty's leftovers
        for core in cores[len(results):]:
            store(out, core, read_box(blurred, core))
        rest = "the tiles after it" if len(results) == stopped_in else "it and the tiles after it"
        warnings.warn(f"{where}: interrupted by the user in tile {stopped_in} of {len(cores)}; {rest} hold the "
                      "blurred input (info.interrupted)", RuntimeWarning, stacklevel=level)
    if not full:
        return out
    labels = [(weight, f"TV weight of the default prior '{prior}'")] if regularizers is None else [
        (float(wt), layer.label()) for wt, layer in regularizers]
    return out, Deconvolution(out, sigma, labels, results, time.perf_counter() - started, stages=stages,
                              intensity=units, learned_share=float(np.mean(shares)) if shares else 0.0,
                              interrupted=bool(stopped_in))
