"""Training (in progress)."""
