"""Layers, one module per family. Every name in ``__all__`` is covered by the test case table."""
from .activation import *  # noqa: F401,F403
from .combine import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .dense import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .source import *  # noqa: F401,F403
from . import activation, combine, conv, dense, dropout, norm, pool, shape, source

_MODULES = (activation, combine, conv, dense, dropout, norm, pool, shape, source)
__all__ = [name for module in _MODULES for name in module.__all__]
