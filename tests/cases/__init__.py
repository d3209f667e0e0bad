"""The layer test table: every module here defines ``CASES: list[LayerCase]``.

Adding a layer means adding a row to the module of its family; tests/test_layer_table.py
runs every row through the gradient-check harness and fails if an exported layer or
loss has no row.
"""
import importlib
import pkgutil

from minieye.testing.case import LayerCase


def all_cases() -> list[LayerCase]:
    cases: list[LayerCase] = []
    for module in pkgutil.iter_modules(__path__):
        cases.extend(importlib.import_module(f"{__name__}.{module.name}").CASES)
    return cases
