"""minieye: a from-scratch neural-network engine with explicit forward/backward layers.

    import minieye as me
    from minieye import layers, losses, functional as F

Nothing is compiled at import: Numba kernels compile on first use and are cached.
"""
from . import checks
from .checks import ShapeError
from .options import options
from .core import DeltaSet, Layer, Parameter
from .network import Graph, Node, Sequential
from . import functional, layers, losses, testing
from . import io, restore, train
from .summarize import Summary, summary

__version__ = "0.1.0"

__all__ = [
    "Parameter", "DeltaSet", "options", "Layer", "Sequential", "Graph", "Node", "ShapeError",
    "checks", "functional", "layers", "losses", "testing", "train", "restore", "io", "summary", "Summary",
]
