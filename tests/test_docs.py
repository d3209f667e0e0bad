"""The README's and the docs' code runs as written and prints what the text says it prints.

Each row: a document, and strings its output must contain. Documents whose code needs
special set-up (io.md, demos.md, distributed.md) are run by their area's tests with
tests/doc_code.py.
"""
import re
from pathlib import Path

import pytest

from tests.doc_code import run_document

TOURS = {
    "docs/core.md": ["None\nFalse True\n[0. 5. 0. 7.]", "all checks passed", "Swish passes", "hypothesis: ok",
                     "<-- culprit", "parameter 'bias'",
                     "True [False, False, False, False, False]", "\nTrue False\n", "modes: all checks passed",
                     "  (4): Sequential 'block'(\n    (0): Conv2D(8->16, 3x3)", "Total parameters: 1,466",
                     "    (1) GroupNorm(4, 16)     (1, 16, 14, 14)       32"],
    "docs/pooling.md": ["[[ 1  6]\n [12 10]]", "(4, 1, 16, 16) (4, 1, 16, 16) 8", "(2, 1, 16, 16) (3, 1, 24, 8)",
                        "expected switches recorded by its MaxPool2D(k=2, s=2) 'p'", "[0.   0.25 0.75 1.  ]",
                        "[3. 4. 9. 6.] [0 2 5 7]", "[3. 0. 4. 0. 0. 9. 0. 6.]", "[2.25 5.5 ]", "[21 23 29 31]",
                        "(1, 1, 2, 2, 2)", "(2, 1, 8, 16, 16) (2, 1, 8, 16, 16)"],
    "docs/kernels.md": ["[12. 12. 10. 17.]", "True True", "(1, 1, 64, 64) 0", "(2, 4, 32, 32)",
                        "expected x.shape[1] == in_channels (3)", "(2, 1, 64) True", "(2, 3, 8, 16, 16)"],
    "docs/training.md": ["held-out accuracy", "non_finite", "best validation epoch", "'val_accuracy'"],
    "docs/contributing.md": ["Softsign passes"],
    "docs/restoration.md": ["-> deconvolve", "MindsEye recipe"],
    "docs/blind.md": ["True '' (11, 11) 1.000", "kernel L1 error", "PSNR blurred", "False no structure"],
    "docs/learned_prior.md": ["denoise: ", "deconvolve(prior='learned'): ", "deconvolve (prior='auto'): learned share "],
}


# documents whose checks print True/False: (at least this many True, False allowed?, last line True?)
TRUTHS = {
    "docs/pooling.md": (3, False, False),
    "docs/kernels.md": (4, True, False),
    "docs/restoration.md": (1, True, True),
}


@pytest.mark.parametrize("document", sorted(TOURS))
def test_tour_runs_and_prints_what_it_says(document, capsys):
    run_document(document)
    out = capsys.readouterr().out
    missing = [text for text in TOURS[document] if text not in out]
    assert not missing, f"{document} did not print {missing}"
    least_true, false_allowed, last_line_true = TRUTHS.get(document, (0, True, False))
    assert out.count("True") >= least_true
    assert false_allowed or "False" not in out
    assert not last_line_true or "True" in out.splitlines()[-1]


def test_readme_tour_runs(capsys):
    run_document("README.md")
    out = capsys.readouterr().out
    assert "(5, 3) (5, 1, 8, 8) 4" in out
    assert "epochs 144 {'epoch': 6" in out  # 6 epochs of 24 batches (1500 rows, 64 per batch)
    blurred_db, restored_db = map(float, re.search(r"blurred ([\d.]+) dB -> restored ([\d.]+) dB", out).groups())
    assert restored_db > blurred_db + 1.0


def test_the_docs_cite_only_test_files_that_exist():
    """A page that says "tests/test_x.py runs this" must not point at a file that is not there."""
    root = Path(__file__).resolve().parent.parent
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    missing = sorted({f"{page.name}: {cited}" for page in pages
                      for cited in re.findall(r"tests/[\w/]+\.py", page.read_text()) if not (root / cited).exists()})
    assert not missing, f"cited test files that do not exist: {missing}"
