"""The package's shape: imports flow one way, files stay small (package, tests, demos, benchmarks),
`import minieye` stays light."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "minieye"

# Lower ranks never import higher ones: kernels <- functional <- layers/losses <- network <- io/train
# <- restore, distributed; testing sits on top (nothing in the package imports it but minieye/__init__.py).
RANKS = {
    "checks": 0, "core": 0, "archive": 0, "options": 0, "randomness": 0,
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
start = time.perf_counter()
import minieye
elapsed = time.perf_counter() - start
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
    assert report["elapsed"] < 5.0, f"`import minieye` took {report['elapsed']:.2f} s (target < 1.5 s)"


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
