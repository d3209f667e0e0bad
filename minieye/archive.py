"""The one on-disk container: a zip holding ``meta.json`` and ``arrays.npz``.

Networks (``minieye.io``) and trainer checkpoints both write through here, so
there is one format to document, one atomic write and one careful reader.

Layout of the zip (stored, not compressed, so arrays can be read without inflating):
    meta.json    UTF-8 JSON object; its ``format`` and ``version`` keys are checked by the caller
    arrays.npz   a NumPy .npz (itself a zip of .npy files), loaded with ``allow_pickle=False``

Writes go to a temporary file in the target's folder, are flushed and fsynced, then
renamed over the target: a crash or a full disk never leaves a truncated file where
a good one was. Reads raise ``ValueError`` naming the file and what is wrong (or
``OSError`` when the file is missing), never a zipfile or JSON exception.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["write_archive", "read_archive"]

_META = "meta.json"
_ARRAYS = "arrays.npz"


def write_archive(path: str | os.PathLike, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Atomically write ``meta`` (JSON-serialisable) and ``arrays`` (name -> ndarray) to ``path``."""
    path = Path(path)
    meta_bytes = json.dumps(meta, indent=1, sort_keys=False, allow_nan=False).encode("utf-8")
    buffer = io.BytesIO()
    # asarray(order="C"), not ascontiguousarray, which turns 0-d arrays into shape (1,).
    np.savez(buffer, **{name: np.asarray(a, order="C") for name, a in arrays.items()})
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
                archive.writestr(_META, meta_bytes)
                archive.writestr(_ARRAYS, buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def read_archive(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read ``(meta, arrays)`` back; ``ValueError`` for anything malformed, ``OSError`` if missing."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"minieye archive {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"{str(path)!r} is empty: not a minieye archive")
    try:
        with zipfile.ZipFile(path, "r") as archive:
            names = set(archive.namelist())
            for required in (_META, _ARRAYS):
                if required not in names:
                    raise ValueError(f"{str(path)!r} is not a complete minieye archive: entry {required!r} is missing")
            meta_bytes = archive.read(_META)
            array_bytes = archive.read(_ARRAYS)
    except ValueError:
        raise
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as exc:  # a damaged zip raises BadZipFile, zlib.error, struct.error, EOFError, ...
        raise ValueError(f"{str(path)!r} is not a valid minieye archive ({type(exc).__name__}: {exc})") from None
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: absurd nesting
        raise ValueError(f"{str(path)!r}: {_META} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{str(path)!r}: {_META} must hold a JSON object, found {type(meta).__name__}")
    try:
        with np.load(io.BytesIO(array_bytes), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception as exc:  # np.load raises many types on corrupt data; all mean the same here
        raise ValueError(f"{str(path)!r}: {_ARRAYS} is not a readable .npz ({type(exc).__name__}: {exc})") from None
    return meta, arrays
