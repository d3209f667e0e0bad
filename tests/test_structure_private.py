"""No private reach-ins across the package's modules: a module uses another module's public
names (``problem.named_arrays()``, ``trainer.complete_gradient()``), never its ``_private``
functions or the ``_private`` attributes of its objects, so a module's private parts can
change without breaking another's.
"""
from __future__ import annotations

import ast
from pathlib import Path

from tests.allow_list import check_allow_list

ROOT = Path(__file__).resolve().parent.parent / "minieye"

# module path -> why it still reaches in; each entry names work under way elsewhere.
ALLOWED: dict[str, str] = {}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def reach_ins(source: str) -> list[tuple[int, str]]:
    """``(line, text)`` of each private name this module takes from elsewhere: ``from m import
    _x``, and ``obj._x`` on anything but ``self``/``cls`` when no code of this module defines
    ``_x`` (a class reading its own private attribute on another instance is fine)."""
    tree = ast.parse(source)
    defined = {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    defined |= {node.attr for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)}
    defined |= {target.id for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(target, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module is None:
                continue  # `from . import _jit`: a package's own private module
            found += [(node.lineno, f"from {'.' * node.level}{node.module} import {a.name}")
                      for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in defined:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_module_reaches_into_another_modules_private_names():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        name = str(path.relative_to(ROOT))
        found += [(name, f"minieye/{name}:{line}: {text}") for line, text in reach_ins(path.read_text())]
    check_allow_list(found, ALLOWED, "ALLOWED", "use or add a public name instead of", "they no longer reach in")


def test_the_reach_in_finder_sees_imports_and_attributes_but_not_a_class_own():
    source = ("from .problem import _arrays, Problem\nfrom . import _jit\nfrom ..kernels import _jit\n"
              "class Box:\n    def __init__(self):\n        self._lo = 1\n"
              "    def same(self, other):\n        return other._lo + self._hi\n"
              "def f(trainer, problem):\n    trainer._complete()\n    return problem.__class__, _jit.kernel\n")
    assert reach_ins(source) == [(1, "from .problem import _arrays"), (3, "from ..kernels import _jit"),
                                 (10, "trainer._complete")]
