"""docs/restoration.md's code blocks run, in order, as one script."""
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "restoration.md"


def test_restoration_tour_runs(capsys):
    pytest.importorskip("skimage")
    code = "\n".join(re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S))
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_restoration"})
    out = capsys.readouterr().out
    assert "-> deconvolve" in out and "MindsEye recipe" in out and "True" in out.splitlines()[-1]
