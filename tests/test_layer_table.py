"""Every row of the layer table through the whole harness, and every exported layer in the table.

Rows live in tests/cases/<family>.py (each module defines CASES); a new module there is
picked up automatically.
"""
import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

import minieye as me
from minieye import layers, losses
from minieye.testing import check_layer
from minieye.testing import strategies as ms
from tests.cases import all_cases

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@given(data=st.data())
def test_layer_case(case, data):
    layer, inputs = data.draw(case.strategy, label="layer, inputs")
    seed = data.draw(ms.seeds(), label="harness seed")
    check_layer(layer, *inputs, batch_invariant=case.batch_invariant, rng=seed, **case.options)


def _concrete_layers(module) -> dict[str, type]:
    """Exported Layer subclasses that implement forward themselves (abstract bases excluded)."""
    found = {}
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) and issubclass(obj, me.Layer) and obj.forward is not me.Layer.forward:
            found[name] = obj
    return found


@pytest.mark.parametrize("module", [layers, losses], ids=["layers", "losses"])
def test_every_exported_layer_has_a_row(module):
    covered = {case.covers for case in CASES}
    missing = sorted(name for name, cls in _concrete_layers(module).items() if cls not in covered)
    assert not missing, f"exported by minieye.{module.__name__.split('.')[-1]} with no row in tests/cases: {missing}"


def test_table_rows_are_well_formed():
    assert CASES, "the layer table is empty"
    for case in CASES:
        assert inspect.isclass(case.covers) and issubclass(case.covers, me.Layer), case
        assert set(case.options) <= set(inspect.signature(check_layer).parameters), case.options


@pytest.mark.parametrize("module", [layers, losses], ids=["layers", "losses"])
def test_every_exported_layer_documents_its_shapes(module):
    undocumented = sorted(name for name, cls in _concrete_layers(module).items()
                          if "Shapes:" not in (cls.__doc__ or ""))
    assert not undocumented, f"add a 'Shapes: ...' line to the docstrings of {undocumented}"
