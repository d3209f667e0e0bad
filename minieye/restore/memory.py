"""Memory sizes as users write them: ``2e9``, ``"2GB"`` (10^9), ``"512 MiB"`` (2^20)."""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from ..checks import fail

__all__ = ["parse_memory"]

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
