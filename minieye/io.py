"""Saving and loading networks (in progress)."""
