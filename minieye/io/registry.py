"""The registry of layer classes that files may name.

A saved file names each layer's class by a registered name (``"Conv2D"``), never by
an import path, so loading imports and executes nothing the file chooses: it can only
build classes that this process registered. Every class exported by
``minieye.layers`` and ``minieye.losses`` is registered under its class name, along
with ``Sequential`` and ``Graph``; users register their own subclasses with
``@minieye.io.register``.

Lookup is by exact class: an unregistered subclass of ``Conv2D`` is refused on save
rather than silently saved (and loaded) as a plain ``Conv2D``.
"""
from __future__ import annotations

from typing import Callable, TypeVar, overload

from ..core import Layer

__all__ = ["register", "register_layer", "unregister", "registered", "class_for", "name_for"]

L = TypeVar("L", bound=type)

_BY_NAME: dict[str, type] = {}
_BY_CLASS: dict[type, str] = {}
_BUILTIN_NAMES: set[str] = set()


def _builtin_classes() -> list[type]:
    # Imported here, not at module import, so that layer modules may import minieye.io.
    from .. import layers, losses
    from ..network import Graph, Sequential

    classes: list[type] = [Sequential, Graph]
    for module in (layers, losses):
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if isinstance(obj, type) and issubclass(obj, Layer):
                classes.append(obj)
    return classes


def _ensure_builtins() -> None:
    """Register every exported built-in layer (cheap; repeated on each save, load and register)."""
    for cls in _builtin_classes():
        if cls in _BY_CLASS:
            continue
        name = cls.__name__
        other = _BY_NAME.get(name)
        if other is not None and other is not cls:
            raise ValueError(f"minieye.io: the built-in layer name {name!r} is already registered "
                             f"for {other.__module__}.{other.__qualname__}; register that class under another name")
        _BY_NAME[name] = cls
        _BY_CLASS[cls] = name
        _BUILTIN_NAMES.add(name)


def register_layer(cls: type, name: str | None = None) -> type:
    """Register ``cls`` (a Layer subclass) under ``name`` (default: its class name); returns ``cls``.

    Registering the same class under the same name again does nothing. A name held by
    another class, or a second name for a registered class, is refused with ValueError.
    """
    _ensure_builtins()
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise ValueError(f"minieye.io.register: expected a subclass of minieye.Layer; got {cls!r}")
    name = cls.__name__ if name is None else name
    if not isinstance(name, str) or not name or name.startswith("$"):
        raise ValueError(f"minieye.io.register: expected a non-empty name not starting with '$'; got {name!r}")
    holder = _BY_NAME.get(name)
    if holder is cls:
        return cls
    if holder is not None:
        kind = "a built-in layer" if name in _BUILTIN_NAMES else f"{holder.__module__}.{holder.__qualname__}"
        raise ValueError(f"minieye.io.register({cls.__qualname__}): the name {name!r} is already taken by {kind}; "
                         f"pass another one, e.g. register(name='mypackage.{cls.__name__}')")
    if cls in _BY_CLASS:
        raise ValueError(f"minieye.io.register({cls.__qualname__}): already registered as {_BY_CLASS[cls]!r}")
    _BY_NAME[name] = cls
    _BY_CLASS[cls] = name
    return cls


@overload
def register(cls: L) -> L: ...
@overload
def register(cls: None = None, *, name: str | None = None) -> Callable[[L], L]: ...


def register(cls=None, *, name=None):
    """Class decorator: ``@register`` or ``@register(name="mylib.Blur")``.

    The class must rebuild from ``cls(**layer.config())``: its ``config()`` returns the
    constructor's keyword arguments (JSON values, NumPy arrays, or other layers).
    """
    if cls is None:
        return lambda c: register_layer(c, name)
    return register_layer(cls, name)


def unregister(name: str) -> None:
    """Forget a user registration (built-in names cannot be removed)."""
    _ensure_builtins()
    if name in _BUILTIN_NAMES:
        raise ValueError(f"minieye.io.unregister: {name!r} is a built-in layer")
    cls = _BY_NAME.pop(name, None)
    if cls is not None:
        _BY_CLASS.pop(cls, None)


def registered() -> dict[str, type]:
    """A copy of the registry: name -> class."""
    _ensure_builtins()
    return dict(_BY_NAME)


def name_for(layer: Layer) -> str:
    """The registered name of ``type(layer)``; ValueError with the fix when it has none."""
    cls = type(layer)
    name = _BY_CLASS.get(cls)
    if name is None:  # built-ins register on first need
        _ensure_builtins()
        name = _BY_CLASS.get(cls)
    if name is None:
        raise ValueError(f"minieye.io.save: layer {layer.label()} has class {cls.__module__}.{cls.__qualname__}, "
                         f"which is not registered; decorate it with @minieye.io.register "
                         f"(see docs/io.md)")
    return name


def class_for(name: str, where: str) -> type:
    """The class registered as ``name``; ValueError naming the unknown class otherwise."""
    cls = _BY_NAME.get(name)
    if cls is None:
        _ensure_builtins()
        cls = _BY_NAME.get(name)
    if cls is None:
        raise ValueError(f"{where}: unknown layer class {name!r}; register it with @minieye.io.register "
                         f"before loading (known: {', '.join(sorted(_BY_NAME)) or 'none'})")
    return cls
