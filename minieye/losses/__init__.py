"""Loss and regularizer layers: each returns a 0-d array (a scalar) from forward.

``value, backward = losses.MSE().forward(prediction, target)``; ``backward(1.0, deltas)``
returns the input gradient(s).
"""
from .basic import *  # noqa: F401,F403
from .regularizers import *  # noqa: F401,F403
from .nonlocal_tv import *  # noqa: F401,F403
from . import basic, nonlocal_tv, regularizers

__all__ = [*basic.__all__, *regularizers.__all__, *nonlocal_tv.__all__]
