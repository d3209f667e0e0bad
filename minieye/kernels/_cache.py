"""Numba's on-disk cache for the kernels, invalidated when any source a kernel may call changes.

Numba keys a function's cache on its own file alone (a hash of it, and of the function's bytecode): a
cached kernel keeps the machine code of the kernels it calls from *other* modules, inlined or linked in,
after those change. An edit of ``conv_gemm.py`` (or a ``git pull`` that touches only it) left
``conv_blocks``' cached kernels running the old ``crop_tile``; docs/kernels.md, "Reliability", shows it
with two throwaway modules. Here a kernel's index is stamped with a hash over its module's file and every
module of the same package that it imports, transitively (``from .x import f``, ``from . import x``): a
kernel can only reach other kernels through those imports. A stale index is replaced on the next compile
(Numba's own rule for a changed stamp), so old entries do not pile up.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import os

from numba.core.caching import FunctionCache, IndexDataCacheFile

__all__ = ["KernelCache", "imported_closure", "sources_stamp"]


@functools.lru_cache(maxsize=None)
def _sibling_imports(path: str) -> tuple[str, ...]:
    """Files of the same package that the module at ``path`` imports (relative imports of one level)."""
    folder = os.path.dirname(path)
    with open(path, "rb") as source:
        tree = ast.parse(source.read(), path)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names += [node.module.split(".")[0]] if node.module else [alias.name for alias in node.names]
    found = (os.path.join(folder, name + ".py") for name in names)
    return tuple(sorted({f for f in found if os.path.isfile(f)}))


def imported_closure(path: str) -> list[str]:
    """The module file at ``path`` and the modules of its package that it imports, transitively (sorted)."""
    seen, todo = set(), [os.path.abspath(path)]
    while todo:
        file = todo.pop()
        if file not in seen:
            seen.add(file)
            todo.extend(_sibling_imports(file))
    return sorted(seen)


@functools.lru_cache(maxsize=None)
def sources_stamp(path: str) -> str:
    """sha256 over the names and contents of ``imported_closure(path)``."""
    digest = hashlib.sha256()
    for file in imported_closure(path):
        with open(file, "rb") as source:
            digest.update(os.path.basename(file).encode() + b"\0" + source.read() + b"\0")
    return digest.hexdigest()


class KernelCache(FunctionCache):
    """Numba's per-function cache (same files, same place: ``__pycache__`` or ``NUMBA_CACHE_DIR``), its
    index stamped with ``sources_stamp`` instead of the function's own file alone."""

    def __init__(self, py_func) -> None:
        super().__init__(py_func)
        try:
            stamp = sources_stamp(inspect.getfile(py_func))
        except OSError:  # sources not readable as files (a zipped or frozen install): Numba's own stamp
            return
        self._cache_file = IndexDataCacheFile(cache_path=self._cache_path, filename_base=self._impl.filename_base,
                                              source_stamp=stamp)
