"""The ```python blocks of a Markdown document, for tests that run the docs as written."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(relative_path: str) -> list[str]:
    """The document's python code blocks, in order."""
    return re.findall(r"```python\n(.*?)```", (ROOT / relative_path).read_text(), re.S)


def run_document(relative_path: str, namespace: dict | None = None) -> dict:
    """Run all python blocks of the document, in order, as one script; return its namespace."""
    namespace = {"__name__": "docs"} if namespace is None else namespace
    exec(compile("\n".join(python_blocks(relative_path)), str(ROOT / relative_path), "exec"), namespace)
    return namespace
