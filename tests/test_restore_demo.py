"""A tiny run of demos/deconvolution_demo.py: every output file, the table, the blind path."""
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")
pytest.importorskip("skimage")

DEMO = Path(__file__).resolve().parents[1] / "demos" / "deconvolution_demo.py"


def load_demo():
    spec = importlib.util.spec_from_file_location("deconvolution_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_smoke(tmp_path, capsys):
    rows = load_demo().main(["--crop", "48", "--iterations", "8", "--out", str(tmp_path), "--quiet"])
    for name in ("original.png", "blurred.png", "recovered.png", "reblurred.png", "comparison.png", "loss.png",
                 "metrics.md"):
        assert (tmp_path / name).stat().st_size > 0, name
    methods = [r["method"] for r in rows]
    assert methods[0] == "blurred" and any("Wiener" in m for m in methods) and any("MindsEye" in m for m in methods)
    assert any("prior='learned'" in m for m in methods) and any("prior='auto'" in m for m in methods)
    ours = next(r for r in rows if r["method"].startswith("minieye deconvolve"))
    assert ours["psnr"] > rows[0]["psnr"]
    assert "PSNR" in capsys.readouterr().out


def test_demo_blind_and_kernel_file(tmp_path):
    import numpy as np
    from minieye.restore import psf
    np.save(tmp_path / "k.npy", psf.motion(5, 45))
    rows = load_demo().main(["--crop", "40", "--iterations", "6", "--kernel", str(tmp_path / "k.npy"), "--blind",
                             "--no-mindseye", "--no-learned", "--out", str(tmp_path / "out"), "--quiet"])
    assert any("blind" in r["method"] for r in rows)
    assert (tmp_path / "out" / "comparison.png").exists()
