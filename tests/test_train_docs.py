"""docs/training.md's code blocks run, in order, as one script."""
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "training.md"


def test_training_tour_runs(capsys):
    code = "\n".join(re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S))
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_training"})
    out = capsys.readouterr().out
    assert "held-out accuracy" in out and "non_finite" in out
