"""docs/core.md's code blocks run, in order, as one script."""
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "core.md"


def test_core_tour_runs(capsys):
    code = "\n".join(re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S))
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_core"})
    out = capsys.readouterr().out
    assert "all checks passed" in out and "Swish passes" in out and "hypothesis: ok" in out
    assert "<-- culprit" in out and "parameter 'bias'" in out
