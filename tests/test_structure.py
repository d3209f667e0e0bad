"""The package's shape: imports flow one way, files stay small (package, tests, demos, benchmarks),
`import minieye` stays light."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.allow_list import check_allow_list

ROOT = Path(__file__).resolve().parents[1] / "minieye"

# Lower ranks never import higher ones: kernels <- functional <- layers/losses <- network <- io/train
# <- restore, distributed; testing sits on top (nothing in the package imports it but minieye/__init__.py).
RANKS = {
    "checks": 0, "core": 0, "passes": 0, "archive": 0, "options": 0, "progress": 0, "randomness": 0,
    "kernels": 1,
    "functional": 2,
    "layers": 3, "losses": 3,
    "network": 4,
    "io": 5, "train": 5, "summarize": 5,
    "restore": 6, "distributed": 6,
    "testing": 7,
}
MAX_LINES = 400


def _modules():
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(path: Path) -> list[str]:
    parts = ["minieye", *path.relative_to(ROOT).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path) -> set[str]:
    """Absolute minieye.* modules imported anywhere in the file (lazy imports included)."""
    here = _dotted(path)
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            if module != "minieye":  # `from .. import layers` imports minieye.layers, not the package face
                found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "minieye" or m.startswith("minieye.")}


def _rank(dotted: list[str]) -> int | None:
    return RANKS.get(dotted[1]) if len(dotted) > 1 else None


def test_ranks_cover_every_subpackage():
    tops = {_dotted(p)[1] for p in _modules() if len(_dotted(p)) > 1}
    assert tops <= set(RANKS), f"add {sorted(tops - set(RANKS))} to RANKS in tests/test_structure.py"


def test_imports_flow_one_way():
    wrong = []
    for path in _modules():
        dotted = _dotted(path)
        if dotted == ["minieye"]:
            continue  # the public face imports everything
        rank = _rank(dotted)
        for target in _imports(path):
            parts = target.split(".")
            target_rank = _rank(parts)
            if parts == ["minieye"]:
                wrong.append(f"{path.relative_to(ROOT.parent)} imports the top-level package")
            elif target_rank is not None and rank is not None and target_rank > rank:
                wrong.append(f"{path.relative_to(ROOT.parent)} (rank {rank}) imports {target} (rank {target_rank})")
    assert not wrong, "imports against the flow kernels <- functional <- layers <- network <- train:\n" + \
        "\n".join(sorted(set(wrong)))


def test_the_checker_resolves_relative_imports(tmp_path, monkeypatch):
    """Guard against a checker that finds nothing: relative imports resolve to absolute names."""
    fake_root = tmp_path / "minieye"
    (fake_root / "layers").mkdir(parents=True)
    fake = fake_root / "layers" / "bad.py"
    fake.write_text("from ..train import Trainer\nfrom .. import restore, __version__\nfrom . import dense\n"
                    "import minieye.io\ndef late():\n    from ...minieye import testing\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    found = _imports(fake)
    assert {"minieye.train", "minieye.train.Trainer", "minieye.restore", "minieye.layers.dense",
            "minieye.io"} <= found
    assert "minieye" not in found
    assert _rank(_dotted(fake)) == 3 and _rank(["minieye", "train"]) == 5


# Python files outside the package held to the same limit. Exemptions name the file and why;
# remove an entry once its file is split (the test below fails on a stale exemption).
OUTSIDE = ("tests", "demos", "benchmarks")
EXEMPT: dict[str, str] = {}


def _project_files():
    top = ROOT.parent
    found = [p for d in OUTSIDE for p in (top / d).rglob("*.py") if "__pycache__" not in p.parts]
    return sorted(_modules() + found)


@pytest.mark.parametrize("path", _project_files(), ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_file_over_400_lines(path):
    name = str(path.relative_to(ROOT.parent))
    lines = len(path.read_text().splitlines())
    if name in EXEMPT:
        assert lines > MAX_LINES, f"{name} has {lines} lines now: drop its exemption ({EXEMPT[name]})"
        return
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it (limit {MAX_LINES})"


def test_the_line_limit_covers_tests_demos_and_benchmarks():
    names = {str(p.relative_to(ROOT.parent)).split("/")[0] for p in _project_files()}
    assert {"minieye", "tests"} <= names and names <= {"minieye", *OUTSIDE}
    assert any(p.name == "test_structure.py" for p in _project_files())


_PROBE = r"""
import json, sys, time
import numpy, numba  # the core dependencies' own import is theirs, not minieye's
start = time.process_time()  # CPU time: a loaded machine stretches the wall clock, not this
import minieye
elapsed = time.process_time() - start
compiled = []
for name, module in list(sys.modules.items()):
    if name.startswith("minieye"):
        for attr, value in vars(module).items():
            if type(value).__name__ in ("CPUDispatcher", "Dispatcher") and getattr(value, "signatures", None):
                compiled.append(f"{name}.{attr}")
heavy = [m for m in ("hypothesis", "torch", "matplotlib", "pytest", "skimage", "sklearn", "dask") if m in sys.modules]
print(json.dumps({"elapsed": elapsed, "compiled": compiled, "heavy": heavy}))
"""


def test_import_minieye_is_light():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["heavy"] == [], f"`import minieye` imported {report['heavy']}"
    assert report["compiled"] == [], f"`import minieye` compiled Numba kernels: {report['compiled']}"
    assert report["elapsed"] < 3.0, f"`import minieye` took {report['elapsed']:.2f} s of CPU (about 0.4 s here)"


def test_strategies_are_the_only_testing_module_needing_hypothesis():
    for path in (ROOT / "testing").glob("*.py"):
        if path.name != "strategies.py":
            assert "hypothesis" not in _imports(path) and "import hypothesis" not in path.read_text() \
                and "from hypothesis" not in path.read_text(), path


def _package_files_outside_testing():
    return [p for p in _modules() if "testing" not in p.relative_to(ROOT).parts]


def test_validation_never_uses_assert():
    """`python -O` strips asserts: errors for users go through minieye.checks (ValueError)."""
    found = [f"{p.relative_to(ROOT.parent)}:{node.lineno}" for p in _package_files_outside_testing()
             for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.Assert)]
    assert not found, f"assert statements in the package: {found}"


FORBIDDEN = {"pickle", "torch", "jax", "tensorflow", "dill", "cloudpickle"}


def test_no_pickle_and_no_other_frameworks_inside_the_package():
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            found += [f"{path.relative_to(ROOT.parent)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert not found, found


ALLOWED_RANDOM = {"default_rng", "Generator", "SeedSequence", "BitGenerator", "PCG64", "Philox", "SFC64"}


def test_randomness_only_from_explicit_generators():
    """np.random.<legacy function> uses hidden global state; only Generators are allowed."""
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "random" and isinstance(node.value.value, ast.Name) \
                    and node.value.value.id in ("np", "numpy") and node.attr not in ALLOWED_RANDOM:
                found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} np.random.{node.attr}")
    assert not found, found


# -- one road into the kernels ------------------------------------------------------------------
# Layers, losses, the trainer and everything above reach minieye.kernels only through
# minieye.functional, which owns the checks and the kernel call (docs/contributing.md).
# ALLOWED_KERNEL_IMPORTS names files that still import kernels directly and why; the test
# fails on a stale entry, so the list only shrinks.
KERNEL_ROAD = ("kernels", "functional")
ALLOWED_KERNEL_IMPORTS: dict[str, str] = {}


def _kernel_importers() -> dict[str, set[str]]:
    found = {}
    for path in _modules():
        dotted = _dotted(path)
        if len(dotted) > 1 and dotted[1] in KERNEL_ROAD:
            continue
        targets = {t for t in _imports(path) if t == "minieye.kernels" or t.startswith("minieye.kernels.")}
        if targets:
            found[str(path.relative_to(ROOT.parent))] = targets
    return found


def test_only_functional_imports_the_kernels():
    found = [(name, f"{name}: {sorted(targets)}") for name, targets in _kernel_importers().items()]
    check_allow_list(found, ALLOWED_KERNEL_IMPORTS, "ALLOWED_KERNEL_IMPORTS",
                     "import kernels through minieye.functional (add a validated function there)",
                     "they no longer import kernels")


# -- no import cycles ---------------------------------------------------------------------------
# Late imports inside functions count too: they hide a cycle, they do not remove it. Each
# allowed cycle names its modules and the work that removes it; stale entries fail.
ALLOWED_CYCLES: dict[frozenset, str] = {}


def _module_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (``pkg.mod.Name`` resolved to ``pkg.mod``)."""
    modules = {".".join(_dotted(p)): p for p in _modules()}
    graph = {}
    for name, path in modules.items():
        edges = set()
        for target in _imports(path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target != "minieye":
                edges.add(target)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, work = {}, {}, set(), [], [], []

    def enter(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        work.append((node, iter(sorted(graph.get(node, ())))))

    for root in graph:
        if root in index:
            continue
        enter(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    enter(child)
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_no_import_cycles():
    found = [(cycle, str(sorted(cycle))) for cycle in set(_cycles(_module_graph()))]
    check_allow_list(found, ALLOWED_CYCLES, "ALLOWED_CYCLES", "import cycles (late imports included)",
                     "the cycle is gone")


def test_the_cycle_finder_finds_a_late_import_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [frozenset({"a", "b", "c"})]
    assert _cycles({"a": {"b"}, "b": set()}) == []


# -- tuning goes through minieye.options ---------------------------------------------------------
# Tests and benchmarks change knobs with `with me.options(...)`, never by assigning a module's
# constant (`module.NAME = v`, `setattr(module, "NAME", v)`, `monkeypatch.setattr(module, "NAME", v)`
# with an UPPER_CASE name). Allowed entries name (file, NAME) and why; stale ones fail.
ALLOWED_CONSTANT_ASSIGNMENTS: dict[tuple[str, str], str] = {
    # it sets the constant only on an earlier revision's copy of kernels/pool.py (which has no knob)
    ("benchmarks/bench_pool_ab.py", "PARALLEL_MIN_WORK"): "an old revision's module, loaded beside the current one",
}
_UPPER = re.compile(r"^_*[A-Z][A-Z0-9_]*$")


def _minieye_names(tree: ast.AST) -> set[str]:
    """Names bound by imports from minieye in a file (``import minieye as me``, ``from minieye.x import y``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] == "minieye")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "minieye":
            names.update(a.asname or a.name for a in node.names)
    return names


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def constant_assignments(source: str) -> list[tuple[int, str]]:
    """(line, NAME) of every assignment to an UPPER_CASE attribute of a minieye module in ``source``."""
    tree = ast.parse(source)
    ours = _minieye_names(tree)
    found = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            for t in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]):
                if isinstance(t, ast.Attribute) and _UPPER.match(t.attr) and _root(t) in ours:
                    found.append((node.lineno, t.attr))
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)) \
                and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr) == "setattr":
            args = node.args
            if len(args) >= 2 and _root(args[0]) in ours and isinstance(args[1], ast.Constant) \
                    and isinstance(args[1].value, str) and _UPPER.match(args[1].value):
                found.append((node.lineno, args[1].value))  # setattr(module, "NAME", v)
            elif args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str) \
                    and args[0].value.startswith("minieye.") and _UPPER.match(args[0].value.rpartition(".")[2]):
                found.append((node.lineno, args[0].value.rpartition(".")[2]))  # setattr("minieye.m.NAME", v)
    return found


def _scripts():
    top = ROOT.parent
    return sorted(p for d in OUTSIDE for p in (top / d).rglob("*.py") if "__pycache__" not in p.parts)


def test_no_test_or_benchmark_assigns_a_module_constant():
    found = []
    for path in _scripts():
        name = str(path.relative_to(ROOT.parent))
        found += [((name, constant), f"{name}:{line} sets {constant}")
                  for line, constant in constant_assignments(path.read_text())]
    check_allow_list(found, ALLOWED_CONSTANT_ASSIGNMENTS, "ALLOWED_CONSTANT_ASSIGNMENTS",
                     "set tuning knobs with `with minieye.options(...)`, not module constants",
                     "they no longer assign it")


def test_the_constant_checker_sees_each_form():
    source = ("import minieye as me\nfrom minieye.kernels import pool as K\nimport numpy as np\n"
              "K.PARALLEL_MIN_WORK = 0\nme.losses.regularizers.KERNELS = False\nnp.LIMIT = 3\n"
              "K.lower_case = 1\nsetattr(K, '_TILE', 2)\n"
              "def t(monkeypatch):\n    monkeypatch.setattr(K, 'CHUNK_BYTES', 1)\n"
              "    monkeypatch.setattr('minieye.distributed.problem.WORKER_WAIT', 1)\n"
              "    monkeypatch.setattr(K, 'thread_count', lambda: 2)\n    setattr(np, 'OTHER', 1)\n")
    assert sorted(constant_assignments(source)) == [(4, "PARALLEL_MIN_WORK"), (5, "KERNELS"), (8, "_TILE"),
                                                    (10, "CHUNK_BYTES"), (11, "WORKER_WAIT")]
