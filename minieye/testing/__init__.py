"""Gradient checks and hypothesis strategies (in progress)."""
