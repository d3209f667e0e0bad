"""The one on-disk container: a zip holding ``meta.json`` and ``arrays.npz``.

Networks (``minieye.io``) and trainer checkpoints both write through here, so
there is one format to document, one atomic write and one careful reader.

Layout of the zip (stored, not compressed, so arrays can be read without inflating):
    meta.json    UTF-8 JSON object; its ``format`` and ``version`` keys are checked by the caller
    arrays.npz   a NumPy .npz (itself a zip of .npy files), loaded with ``allow_pickle=False``

Writes go to a temporary file in the target's folder, are flushed and fsynced, then
renamed over the target: a crash or a full disk never leaves a truncated file where
a good one was. The new file gets the mode a plain ``open`` would give (the old file's,
or 0o666 minus the umask), and a symbolic link is written through, to its target.

Reads are bounded, because a file may be hostile (a zip bomb): ``meta.json`` may
declare at most ``MAX_META_BYTES``; ``arrays.npz`` must be stored (it is read in place,
never copied into memory); and an array is inflated only when the caller asks for it
(``open_archive``), after its ``.npy`` header (shape, dtype) has been read and checked:
no pickled objects, a size that agrees with the zip entry, at most ``max_bytes`` for all
the arrays read. Arrays the description never names are never inflated. Reads raise
``ValueError`` naming the file and what is wrong (or ``OSError`` when the file is
missing), never a zipfile, JSON or NumPy exception.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import struct
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import numpy as np

from .checks import fail_type

__all__ = ["write_archive", "read_archive", "open_archive", "ArchiveArrays", "array_header",
           "MAX_META_BYTES", "MAX_BYTES", "atomic_file", "check_writable"]

_META = "meta.json"
_ARRAYS = "arrays.npz"
MAX_META_BYTES = 16 << 20   # a description, not data: real ones are a few kB
MAX_BYTES = 16 << 30        # all the arrays one load may inflate (default of ``max_bytes``)
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length


def _file_mode(target: Path) -> int:
    """The mode ``open(target, "w")`` would leave: the existing file's, else 0o666 minus the umask."""
    with contextlib.suppress(OSError):
        return target.stat().st_mode & 0o7777
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask: from /proc on Linux (os.umask can only read it by setting it, which
    another thread could see), else by setting and restoring it."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status") as status:
            return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write that replaces ``path`` only when the block ends without an error.

    The bytes go to a temporary file in the target's folder, flushed and fsynced, then renamed
    over the target, with the mode a plain ``open`` would give; a symbolic link is written
    through. Networks, checkpoints and training logs are all written this way.
    """
    target = check_writable(path)
    path = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    mode = _file_mode(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        _raise_cannot_write(target, exc)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            os.fchmod(handle.fileno(), mode)  # mkstemp made it 0o600
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError) and "cannot write " not in str(exc):
            _raise_cannot_write(target, exc, own_files=(tmp_name, str(path)))
        raise


def _raise_cannot_write(target: str, exc: OSError, own_files: tuple[str, ...] | None = None) -> NoReturn:
    """Raise ``exc`` again (same type and errno, chained as the cause) with a message naming the
    file the caller asked for, not the temporary file it was being written as. When
    ``own_files`` (the temporary file and the target) are given, a failing file that is
    neither, one the writing code itself opened, is named too."""
    message = f"cannot write {target!r}: {exc.strerror or exc}"
    if own_files is not None and exc.filename is not None and str(exc.filename) not in own_files:
        message += f" (on {str(exc.filename)!r})"
    try:
        error = type(exc)(exc.errno, message) if exc.errno is not None else type(exc)(message)
    except TypeError:  # a subclass with its own constructor: keep it as it is
        raise exc from exc.__cause__
    raise error from exc


def check_writable(path: Any, where: str = "save") -> str:
    """``path`` as a string, after refusing, before any work, a path that cannot be written.

    TypeError for a path that is not a str or os.PathLike; IsADirectoryError when it names a
    folder; FileNotFoundError when its folder does not exist; PermissionError when the folder
    is not writable. Each names the path (the monitors that save during training check this
    when a run starts, so that a typo does not cost the training done before the first save).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise fail_type(where, "path a str or os.PathLike", f"path={path!r}")
    target = os.fspath(path)
    if not target:
        raise FileNotFoundError(errno.ENOENT, f"{where}: cannot write to an empty path; give a file name")
    folder = os.path.dirname(os.path.realpath(target)) if os.path.islink(target) else os.path.dirname(target) or "."
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, f"cannot write {target!r}: it is a folder; give a file name in it")
    if not os.path.isdir(folder):
        hint = " ('~' is not expanded: use os.path.expanduser)" if target.startswith("~") else ""
        raise FileNotFoundError(errno.ENOENT, f"cannot write {target!r}: the folder {folder!r} does not exist{hint}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"cannot write {target!r}: the folder {folder!r} is not writable")
    return target


def write_archive(path: str | os.PathLike, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Atomically write ``meta`` (JSON-serialisable) and ``arrays`` (name -> ndarray) to ``path``."""
    meta_bytes = json.dumps(meta, indent=1, sort_keys=False, allow_nan=False).encode("utf-8")
    buffer = io.BytesIO()
    # asarray(order="C"), not ascontiguousarray, which turns 0-d arrays into shape (1,).
    np.savez(buffer, **{name: np.asarray(a, order="C") for name, a in arrays.items()})
    with atomic_file(path) as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(_META, meta_bytes)
            archive.writestr(_ARRAYS, buffer.getvalue())


class _Slice(io.RawIOBase):
    """Bytes ``[start, start + length)`` of an open file, as a seekable file (a stored zip entry in place)."""

    def __init__(self, handle: Any, start: int, length: int):
        super().__init__()
        self._handle, self._start, self._length, self._pos = handle, start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        count = max(0, min(len(buffer), self._length - self._pos))
        self._handle.seek(self._start + self._pos)
        data = self._handle.read(count)
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)


def _header_from(fp: Any) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data bytes) from the .npy header at the start of ``fp``; reads only the header."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
    else:
        raise ValueError(f"unsupported .npy version {version}")
    return tuple(shape), dtype, math.prod(shape) * dtype.itemsize


class ArchiveArrays(Mapping):
    """The arrays of an open archive, read on demand (name -> ndarray, a fresh copy per access).

    ``header(name)`` gives (shape, dtype) from the ``.npy`` header without inflating the
    data, so a caller can compare them with what it expects before asking for the values.
    """

    def __init__(self, inner: zipfile.ZipFile, where: str, max_bytes: int):
        self._inner, self._where, self._budget = inner, where, max_bytes
        self._members = {info.filename[:-4]: info for info in inner.infolist() if info.filename.endswith(".npy")}
        self._headers: dict[str, tuple[tuple[int, ...], np.dtype, int]] = {}

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def _fail(self, name: str, message: str) -> ValueError:
        return ValueError(f"{self._where}: array {name!r} in {_ARRAYS} {message}")

    def header(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) of array ``name`` as its header declares them (checked, not inflated)."""
        if name not in self._headers:
            info = self._members.get(name)
            if info is None:
                raise KeyError(name)
            try:
                with self._inner.open(info) as fp:
                    shape, dtype, nbytes = _header_from(fp)
                    header_bytes = fp.tell()
            except Exception as exc:  # zipfile, zlib and NumPy header errors alike
                raise self._fail(name, f"has no readable .npy header ({type(exc).__name__}: {exc})") from None
            if dtype.hasobject:
                raise self._fail(name, f"holds Python objects (dtype {dtype}); only numeric arrays are read")
            if header_bytes + nbytes != info.file_size:
                raise self._fail(name, f"declares shape {shape} and dtype {dtype} ({nbytes} bytes) but its zip "
                                       f"entry holds {info.file_size - header_bytes} bytes of data")
            self._headers[name] = (shape, dtype, nbytes)
        shape, dtype, _ = self._headers[name]
        return shape, dtype

    def __getitem__(self, name: str) -> np.ndarray:
        shape, dtype = self.header(name)
        nbytes = self._headers[name][2]
        if nbytes > self._budget:
            raise self._fail(name, f"declares shape {shape} and dtype {dtype} ({nbytes:,} bytes), beyond the "
                                   f"{self._budget:,} bytes this load may still read (max_bytes)")
        try:
            with self._inner.open(self._members[name]) as fp:
                array = np.lib.format.read_array(fp, allow_pickle=False)
        except Exception as exc:
            raise self._fail(name, f"is not readable ({type(exc).__name__}: {exc})") from None
        self._budget -= nbytes
        return array


def array_header(arrays: Mapping[str, np.ndarray], name: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of ``arrays[name]``, without inflating it when ``arrays`` is an archive's."""
    if isinstance(arrays, ArchiveArrays):
        return arrays.header(name)
    value = arrays[name]
    return tuple(np.shape(value)), np.asarray(value).dtype


def _open(handle: Any, where: str, max_bytes: int) -> tuple[dict[str, Any], ArchiveArrays]:
    outer = zipfile.ZipFile(handle, "r")
    infos = {info.filename: info for info in outer.infolist()}
    for required in (_META, _ARRAYS):
        if required not in infos:
            raise ValueError(f"{where} is not a complete minieye archive: entry {required!r} is missing")
    meta_info, arrays_info = infos[_META], infos[_ARRAYS]
    if meta_info.file_size > MAX_META_BYTES:
        raise ValueError(f"{where}: {_META} declares {meta_info.file_size:,} bytes, more than the "
                         f"{MAX_META_BYTES:,} a minieye description may hold")
    if arrays_info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{where}: entry {_ARRAYS!r} is compressed; a minieye archive stores it uncompressed")
    meta_bytes = outer.read(_META)
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: also a 5,000-digit number
        raise ValueError(f"{where}: {_META} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: {_META} must hold a JSON object, found {type(meta).__name__}")
    handle.seek(arrays_info.header_offset)
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise ValueError(f"{where}: the local header of {_ARRAYS!r} is damaged")
    start = arrays_info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    inner = zipfile.ZipFile(_Slice(handle, start, arrays_info.compress_size), "r")
    return meta, ArchiveArrays(inner, where, max_bytes)


@contextlib.contextmanager
def open_archive(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> Iterator[tuple[dict[str, Any], ArchiveArrays]]:
    """``with open_archive(path) as (meta, arrays):`` the description and its arrays, read on demand.

    ValueError for anything malformed or beyond the limits (module docstring), OSError if missing.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise fail_type("load", "path a str or os.PathLike", f"path={path!r}")
    path = Path(path)
    where = repr(str(path))
    if not path.exists():
        raise FileNotFoundError(f"minieye archive {where} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"minieye archive {where} is a folder; give the path of the file saved in it")
    if path.stat().st_size == 0:
        raise ValueError(f"{where} is empty: not a minieye archive")
    with open(path, "rb") as handle:
        try:
            meta, arrays = _open(handle, where, max_bytes)
        except (ValueError, FileNotFoundError, PermissionError, IsADirectoryError):
            raise
        except Exception as exc:  # a damaged zip raises BadZipFile, zlib.error, struct.error, EOFError, ...
            raise ValueError(f"{where} is not a valid minieye archive ({type(exc).__name__}: {exc})") from None
        yield meta, arrays


def read_archive(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` with every array read (for inspection; loaders use ``open_archive``)."""
    with open_archive(path, max_bytes) as (meta, arrays):
        return meta, {name: arrays[name] for name in arrays}
