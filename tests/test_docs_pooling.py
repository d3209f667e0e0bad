"""docs/pooling.md's code blocks run, in order, as one script, and print what the comments say."""
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "pooling.md"


def test_pooling_tour_runs(capsys):
    code = "\n".join(re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S))
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_pooling"})
    out = capsys.readouterr().out
    assert "[[ 1  6]\n [12 10]]" in out
    assert "(4, 1, 16, 16) (4, 1, 16, 16) 8" in out
    assert "(2, 1, 16, 16) (3, 1, 24, 8)" in out
    assert "expected switches recorded by its MaxPool2D(k=2, s=2) 'p'" in out
    assert out.count("True") >= 3 and "False" not in out
    assert "[0.   0.25 0.75 1.  ]" in out
    assert "[3. 4. 9. 6.] [0 2 5 7]" in out and "[3. 0. 4. 0. 0. 9. 0. 6.]" in out and "[2.25 5.5 ]" in out
    assert "[21 23 29 31]" in out and "(1, 1, 2, 2, 2)" in out
    assert "(2, 1, 8, 16, 16) (2, 1, 8, 16, 16)" in out
