"""Image restoration (in progress)."""
from .inverse import SeparableKernel, separable, separable_network, wiener_inverse_kernel  # noqa: F401
