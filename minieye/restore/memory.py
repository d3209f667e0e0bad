"""Memory: sizes as users write them (``2e9``, ``"2GB"``, ``"512 MiB"``) and the peak of one deconvolution per prior.

``peak_estimate`` is what deconvolve's budget (budget.py) and ``plan_tiles`` (tiled.py) compare
with ``max_memory``. Measured (tracemalloc peak, fresh process per point, float32 default;
``python benchmarks/bench_memory_prior.py``, docs/tiled.md "Memory per prior"):

- hand-made priors ('nonlocal', 'local'): 356 bytes per scene pixel per channel in float32, 544
  in float64 (the local stage, then the non-local graph and its optimizer): ``BYTES_PER_PIXEL``.
- 'learned': two parts, one per scene pixel and one per pixel of the denoiser's window. Half-quadratic
  splitting holds float64 images and half spectra of the estimate (the image plus a ``pad`` ring):
  about 192 bytes per pixel; the network (activations kept for the skip connections, reused
  buffers, Winograd scratch) about 1,070 bytes per pixel of its largest window, which is at most
  ``denoiser.TILE`` plus the network's margins a side (688x688: about 0.5 GB) whatever the image.
  Colour planes run one after the other: each further channel adds only its result.
- 'auto': the automatic choice (a 128x128 proxy), the hand-made prior, then the learned prior
  from its result: the largest of those peaks, the learned one plus what the hand-made part keeps
  (its restoration; the non-local graph is freed first).

The estimate is above every measured peak: by 2-13 % for 'learned' and 'auto', by 50-70 % for the
hand-made priors in float32 (their figure covers float64). A denoiser of another size (``use_weights``)
needs its own figures.
"""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

import numpy as np

from ..checks import fail

__all__ = ["parse_memory", "peak_estimate", "memory_prior", "BYTES_PER_PIXEL", "HQS_BYTES", "NETWORK_BYTES"]

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}

# bytes per scene pixel per channel of the hand-made priors: float64's 544 with some slack
BYTES_PER_PIXEL = 600
# the learned prior, fitted to the measured peaks (192 and 1,070) and rounded up
HQS_BYTES = 200        # per pixel of the HQS estimate (float64 images and half spectra)
NETWORK_BYTES = 1100   # per pixel of the denoiser's largest window
LEARNED_FIXED = 8 * 10**6  # small arrays, the network's weights and plans
CHANNEL_BYTES = 32     # per scene pixel of each further colour channel (its result, its working copy)
AUTO_KEPT_BYTES = 32   # per scene pixel per channel: what prior 'auto' holds beside its learned part (measured 4-17)


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


def memory_prior(prior: str, volume: bool = False, automatic: bool = True, learned_share: float | None = None) -> str:
    """The prior whose memory a run needs: 'handmade', 'learned' or 'auto' (both, one after the other).

    ``automatic``: no tv_weight nor regularizers given (prior 'auto' may then blend in the learned
    prior); a given ``learned_share`` > 0 blends it in any case. Volumes run the hand-made priors only.
    """
    if volume or prior in ("nonlocal", "local", "handmade"):
        return "handmade"
    if prior == "learned":
        return "learned"
    return "auto" if automatic or learned_share not in (None, 0) else "handmade"


def _network_window(sides: Sequence[int]) -> int:
    """Pixels of the largest window apply_denoiser runs the network on, for an (H, W) plane."""
    from .denoiser import largest_window, load_denoiser
    return math.prod(largest_window(load_denoiser(), (sides[0], sides[1])))


def _learned_peak(sides: Sequence[int], kernel: Sequence[int], channels: int) -> int:
    from .learned_prior import MIN_PAD
    hqs = [n + 2 * (max(kernel) + MIN_PAD) for n in sides]
    scene = math.prod(n + k - 1 for n, k in zip(sides, kernel))
    return (HQS_BYTES * math.prod(hqs) + NETWORK_BYTES * _network_window(hqs) + LEARNED_FIXED
            + CHANNEL_BYTES * (channels - 1) * scene)


def peak_estimate(prior: str, sides: Sequence[int], kernel: Sequence[int], channels: int = 1,
                  whole: Sequence[int] | None = None) -> int:
    """Estimated peak bytes of deconvolve_in_memory on an image of ``sides`` ((H, W), or (D, H, W) for
    volumes) with ``channels`` channels, a kernel of shape ``kernel``, and ``prior`` as ``memory_prior`` names it;
    ``whole``: the sides of the image that ``sides`` is a tile of (prior 'auto' chooses on its centre), None: sides.

    Above the measured peaks (module docstring): by 2-13 % for 'learned' and 'auto', 50-70 % for
    'handmade' in float32 (its figure covers float64).
    """
    scene = math.prod(n + k - 1 for n, k in zip(sides, kernel))
    handmade = BYTES_PER_PIXEL * channels * scene
    if prior == "handmade":
        return handmade
    learned = _learned_peak(sides, kernel, channels)
    if prior == "learned":
        return learned
    from .regweight import PROXY_SIDE
    proxy = _learned_peak([min(n, PROXY_SIDE) for n in whole or sides], kernel, channels)  # the choice, on the centre
    return max(handmade, learned + AUTO_KEPT_BYTES * channels * scene, proxy)
