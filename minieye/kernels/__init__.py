"""Numba kernels: pure functions on contiguous arrays."""
