"""Progress bars for long runs: tqdm, an optional dependency (the 'demo' extra)."""
from __future__ import annotations

from typing import Any


def progress_bar(asked_by: str, **options: Any) -> Any:
    """A tqdm text bar (``options``: tqdm's, e.g. total, desc, unit, initial, leave).

    ``asked_by`` names the option that wants the bar, for the ImportError a missing tqdm raises.
    """
    try:
        from tqdm import tqdm  # plain text bar: works in scripts and notebooks without ipywidgets
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(f"{asked_by} needs tqdm: pip install 'minieye[demo]' (or pip install tqdm)") from None
    return tqdm(**options)
