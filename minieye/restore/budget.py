"""``restore.deconvolve``: in memory when the image fits a memory budget, in tiles past it.

An in-memory run's peak depends on the prior (``memory.peak_estimate``; measured with
``python benchmarks/bench_memory_prior.py --model``, docs/tiled.md "Memory per prior"): the
hand-made priors hold about 356 bytes per scene pixel (the image plus the kernel's half-width
on each side) per channel in float32, 544 in float64 (estimated ``tiled.BYTES_PER_PIXEL`` = 600:
a 4096x4096 photo, about 10 GB); the learned prior about 192 bytes per pixel plus about 1,070
per pixel of its network's window, which stops growing at 688x688 (481 MB at 512x512, 594 MB
at 1024x1024); the default, 'auto', the larger (611 MB at 1024x1024 with its learned part).
Past ``max_memory`` (default ``DEFAULT_MAX_MEMORY``, 1 GB) the image is deconvolved in
overlapping tiles whose windows fit the budget by that estimate (``deconvolve_tiled``,
docs/tiled.md), with one noise level, intensity map, box and weight for the whole image, so
the result matches the untiled one within the tiling's tolerance. This module sits above
deconvolve.py (the method) and tiled.py (the tiles), so neither imports the other's caller.
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any

from ..checks import fail_type
from .deconvolve import deconvolve_in_memory
from .tiled import deconvolve_tiled

__all__ = ["deconvolve", "DEFAULT_MAX_MEMORY"]

DEFAULT_MAX_MEMORY = 10**9  # bytes: "about 1 GB", room for a 1280x1280 grey image untiled (any prior)


def deconvolve(blurred: Any, kernel: Any, *, tile: Any = None, max_memory: Any = DEFAULT_MAX_MEMORY,
               out: Any = None, **options: Any) -> Any:
    known = [*_method.parameters, *inspect.signature(deconvolve_tiled).parameters]  # tiled's halo too
    unknown = sorted(set(options) - set(known))
    if unknown:  # else Python names deconvolve_tiled or deconvolve_in_memory, which the user never called
        close = difflib.get_close_matches(unknown[0], known, n=1)
        raise fail_type("deconvolve", "keyword arguments among its parameters (help(restore.deconvolve))",
                        ", ".join(f"{name}=" for name in unknown), f"did you mean {close[0]}=?" if close else None)
    if tile is None and out is None and max_memory is None:
        return deconvolve_in_memory(blurred, kernel, **options)
    return deconvolve_tiled(blurred, kernel, tile=tile, max_memory=max_memory, out=out, **options)


_LARGE = '''
    Large images (this entry point, budget.py):
        max_memory: bytes (or '2GB', '512MiB') the run may use, 1 GB by default; an image
            whose in-memory run would need more is deconvolved in tiles that fit (None:
            always in memory, unless ``tile`` or ``out`` is given).
        tile: tile core size (int or (h, w)); ``out``: an array (e.g. np.memmap) to write
            into. See ``deconvolve_tiled`` (tiled.py) and docs/tiled.md.
'''
_method = inspect.signature(deconvolve_in_memory)
_extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d)
          for n, d in (("tile", None), ("max_memory", DEFAULT_MAX_MEMORY), ("out", None))]
deconvolve.__signature__ = _method.replace(parameters=list(_method.parameters.values()) + _extra)
deconvolve.__doc__ = (deconvolve_in_memory.__doc__ or "").replace(" (all in memory)", "").rstrip() + "\n" + _LARGE
