"""Image restoration (in progress)."""
