"""kernels._cache: a kernel's on-disk cache is stamped with every module of its package that it imports, so
a changed callee in another module is recompiled into its cached callers (Numba's own stamp, the caller's
file alone, keeps the old callee: the control below)."""
import json
import os
import subprocess
import sys
from pathlib import Path

from minieye.kernels import _cache, conv_small, conv_winograd_run

REPO = Path(__file__).resolve().parents[1]

CALLER = """
import numba
from minieye.kernels._jit import kernel
from .callee import value


@kernel
def read():
    return value()


@numba.njit(cache=True)
def read_plain():  # Numba's own cache: stamped with this file alone
    return value()
"""

CALLEE = """
from minieye.kernels._jit import kernel


@kernel
def value():
    return {}
"""

PROBE = """
import json
from stalepkg.caller import read, read_plain
values = [read(), read_plain()]
print(json.dumps({"values": values, "hits": [sum(f.stats.cache_hits.values()) for f in (read, read_plain)]}))
"""


def _run(root: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{REPO}", NUMBA_CACHE_DIR=str(root / "cache"),
               PYTHONDONTWRITEBYTECODE="1")  # a rewrite within the same second must not reuse a stale .pyc
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_changed_callee_in_another_module_is_recompiled_into_its_cached_caller(tmp_path):
    package = tmp_path / "stalepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "caller.py").write_text(CALLER)
    (package / "callee.py").write_text(CALLEE.format(1))
    assert _run(tmp_path) == {"values": [1, 1], "hits": [0, 0]}  # compiled and saved
    assert _run(tmp_path) == {"values": [1, 1], "hits": [1, 1]}  # loaded from the cache
    (package / "callee.py").write_text(CALLEE.format(2))
    after = _run(tmp_path)
    assert after["values"][0] == 2 and after["hits"][0] == 0, after  # recompiled with the new callee
    assert after["values"][1] == 1, f"Numba's own cache no longer keeps a stale callee: {after}"  # the control


def test_the_stamp_covers_the_imported_kernel_modules_only():
    """conv_small's kernels call _atomic.fetch_add: its stamp covers _atomic.py, not conv.py (which imports
    conv_small and calls it from Python: an edit there recompiles nothing)."""
    files = {Path(f).name for f in _cache.imported_closure(conv_small.__file__)}
    assert {"conv_small.py", "_atomic.py", "_jit.py", "conv_layout.py"} <= files
    assert "conv.py" not in files and "conv_nd.py" not in files
    # `from . import module` counts as `from .module import f` does
    files = {Path(f).name for f in _cache.imported_closure(conv_winograd_run.__file__)}
    assert {"conv_winograd_run.py", "conv_winograd.py", "conv_winograd4.py", "conv_winograd4_grad.py"} <= files


def test_import_parses_no_kernel_source():
    """The stamp is computed at a kernel's first compile or cache load, not at import (parsing every kernel module
    took about a tenth of `import minieye`); the import only reads the package's sources (see the test below)."""
    probe = ("import ast, json, os\nparsed = []\nparse = ast.parse\n"
             "def counting(source, filename='<unknown>', *args, **kwargs):\n"
             "    parsed.append(os.path.basename(str(filename)))\n    return parse(source, filename, *args, **kwargs)\n"
             "ast.parse = counting\nimport minieye\n"
             "print(json.dumps([name for name in parsed if name.endswith('.py')]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_a_callee_edited_between_import_and_first_compile_is_not_stamped_onto_the_old_code(tmp_path):
    """The process compiles the callee it imported: its cache must carry the imported sources' stamp, so that the
    next process (with the edited callee) recompiles instead of loading the old code."""
    package = tmp_path / "stalepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "caller.py").write_text(CALLER)
    (package / "callee.py").write_text(CALLEE.format(1))
    edit = f"import pathlib\npathlib.Path({str(package / 'callee.py')!r}).write_text({CALLEE.format(2)!r})\n"
    probe = PROBE.replace("values = ", edit + "values = ")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO}", NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["values"][0] == 1  # the imported callee, compiled
    after = _run(tmp_path)
    assert after["values"][0] == 2 and after["hits"][0] == 0, after
