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
def _package_sources(folder: str) -> dict[str, bytes]:
    """The bytes of each module file in ``folder`` by module name, read once per process, when its first kernel is
    imported: a stamp computed later, at a kernel's first compile, then describes the sources that were imported
    (not an edit made since, which would label the old code with the new sources' stamp). Only reading happens
    at import: parsing waits for the first compile."""
    sources = {}
    for entry in os.scandir(folder):
        if entry.name.endswith(".py") and entry.is_file():
            with open(entry.path, "rb") as source:
                sources[entry.name[:-3]] = source.read()
    return sources


@functools.lru_cache(maxsize=None)
def _sibling_imports(folder: str, name: str) -> tuple[str, ...]:
    """Modules of the package in ``folder`` that its module ``name`` imports (relative imports of one level)."""
    sources = _package_sources(folder)
    names = []
    for node in ast.walk(ast.parse(sources[name], os.path.join(folder, name + ".py"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names += [node.module.split(".")[0]] if node.module else [alias.name for alias in node.names]
    return tuple(sorted({n for n in names if n in sources}))


def imported_closure(path: str) -> list[str]:
    """The module file at ``path`` and the modules of its package that it imports, transitively (sorted)."""
    folder, name = os.path.split(os.path.abspath(path))
    seen, todo = set(), [name[:-3]]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(_sibling_imports(folder, module))
    return sorted(os.path.join(folder, module + ".py") for module in seen)


@functools.lru_cache(maxsize=None)
def sources_stamp(path: str) -> str:
    """sha256 over the names and contents (as first read, ``_package_sources``) of ``imported_closure(path)``."""
    sources = _package_sources(os.path.dirname(os.path.abspath(path)))
    digest = hashlib.sha256()
    for file in imported_closure(path):
        name = os.path.basename(file)
        digest.update(name.encode() + b"\0" + sources[name[:-3]] + b"\0")
    return digest.hexdigest()


class KernelCache(FunctionCache):
    """Numba's per-function cache (same files, same place: ``__pycache__`` or ``NUMBA_CACHE_DIR``), its
    index stamped with ``sources_stamp`` instead of the function's own file alone. The sources are read at
    import; the stamp is computed on the first load or save."""

    def __init__(self, py_func) -> None:
        self._stamped: IndexDataCacheFile | None = None
        super().__init__(py_func)  # sets Numba's own index file (``_cache_file``'s setter)
        try:
            path = os.path.abspath(inspect.getfile(py_func))
            found = os.path.basename(path)[:-3] in _package_sources(os.path.dirname(path))
        except OSError:  # sources not readable as files (a zipped or frozen install): Numba's own stamp
            found = False
        self._stamp_path = path if found else None

    @property
    def _cache_file(self) -> IndexDataCacheFile:
        if self._stamped is None and self._stamp_path is not None:
            self._stamped = IndexDataCacheFile(cache_path=self._cache_path, filename_base=self._impl.filename_base,
                                               source_stamp=sources_stamp(self._stamp_path))
        return self._stamped or self._numba_file

    @_cache_file.setter
    def _cache_file(self, value: IndexDataCacheFile) -> None:
        self._numba_file = value
