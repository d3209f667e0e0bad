"""Saving and loading layers and networks: one versioned file, no pickle.

    me.io.save(net, "net.minieye")      # atomic: a crash never leaves a half-written file
    net2 = me.io.load("net.minieye")    # same outputs, bit for bit; its own parameters

A file is a zip holding ``meta.json`` (format name and version, one record per
distinct layer: registered class name, constructor config, parameter descriptions;
a Sequential's children; a Graph's nodes and links) and ``arrays.npz`` (each
parameter at its own dtype). Classes are looked up in a registry, never imported
from a path found in the file, so loading runs no code the file chooses. Your own
layers take part once registered with ``@me.io.register``. docs/io.md is the full
specification.
"""
from __future__ import annotations

import json
import os

from ..archive import MAX_BYTES, check_writable, open_archive, write_archive
from ..core import Layer
from .decode import decode
from .encode import FORMAT, VERSION, encode
from .registry import register, register_layer, registered, unregister

__all__ = ["save", "load", "register", "register_layer", "unregister", "registered",
           "encode", "decode", "FORMAT", "VERSION"]


def save(layer: Layer, path: str | os.PathLike) -> None:
    """Write ``layer`` (any layer, loss or network) to ``path``, replacing it atomically.

    Before anything is written the description is rebuilt in memory, so a layer whose
    ``config()`` would not rebuild it is refused here (ValueError naming it) instead of
    producing a file that cannot be loaded.
    """
    if isinstance(layer, Layer):  # (encode names a non-layer first: the arguments may be swapped)
        check_writable(path, "minieye.io.save")  # a typo in the path fails before the work of encoding
    meta, arrays = encode(layer)
    # Round-trip through JSON exactly as a reader will see it, then build it once.
    try:
        decode(json.loads(json.dumps(meta, allow_nan=False)), arrays, where=f"minieye.io.save({layer.label()})")
    except ValueError as exc:
        raise ValueError(f"{exc} -- nothing was written to {os.fspath(path)!r}") from None
    write_archive(path, meta, arrays)


def load(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> Layer:
    """The layer or network saved at ``path``.

    Raises OSError when the file is missing and ValueError, naming the file and the
    problem, when it is not a valid minieye network file. Only the arrays the description
    names are read, each after its shape and dtype were checked against the description
    and the rebuilt layer, and at most ``max_bytes`` of them (16 GiB by default; a
    hostile file cannot make the loader inflate more, see docs/io.md "Limits").
    """
    with open_archive(path, max_bytes) as (meta, arrays):
        return decode(meta, arrays, where=repr(os.fspath(path)))
