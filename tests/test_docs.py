"""The README's tour runs as written (its python blocks, in order, as one script)."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_tour_runs(capsys):
    code = "\n".join(re.findall(r"```python\n(.*?)```", README.read_text(), re.S))
    exec(compile(code, str(README), "exec"), {"__name__": "readme_tour"})
    out = capsys.readouterr().out
    assert "(5, 3) (5, 1, 8, 8) 4" in out
    blurred_db, restored_db = map(float, re.search(r"blurred ([\d.]+) dB -> restored ([\d.]+) dB", out).groups())
    assert restored_db > blurred_db + 1.0
