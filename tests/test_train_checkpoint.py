"""Checkpoints resume bit for bit; monitors write their logs; validation keeps the best point."""
from __future__ import annotations

import csv
import json
import zipfile

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train
from minieye.archive import read_archive


def make_problem(dtype="float64", batch_size=None, seed=0):
    rng = np.random.default_rng(42)
    x = rng.standard_normal((48, 5))
    y = np.sin(x @ rng.standard_normal((5, 3)))
    net = me.Sequential(layers.Dense(5, 7, dtype=dtype, seed=1), layers.Tanh(),
                        layers.Dense(7, 3, dtype=dtype, seed=2))
    problem = train.Problem(net, losses.MSE(), x, y, batch_size=batch_size, rng=np.random.default_rng(seed))
    return net, problem, (x[:10], y[:10])


CONFIGS = {
    "lbfgs-full-f64": dict(orientation=lambda: train.LBFGS(history=4), search=train.ArmijoWolfe),
    "qqn-full-f32": dict(orientation=train.QQN, search=train.ArmijoWolfe, dtype="float32"),
    "lbfgs-batch": dict(orientation=train.LBFGS, search=train.ArmijoWolfe, batch_size=12),
    "adam-batch": dict(orientation=train.Adam, search=lambda: train.FixedStep(0.01), batch_size=8),
    "nesterov-batch": dict(orientation=train.Nesterov, search=lambda: train.FixedStep(0.05), batch_size=8),
    "owlqn-full": dict(orientation=lambda: train.OWLQN(l1=1e-3), search=train.Backtracking),
}


def trainer_for(config, monitors=()):
    net, problem, held_out = make_problem(config.get("dtype", "float64"), config.get("batch_size"))
    validation = train.Validation(*held_out, every=2, patience=100, restore_best=False)
    trainer = train.Trainer(problem, config["orientation"](), config["search"](),
                            monitors=[validation, *monitors])
    return net, trainer


def fingerprint(result):
    return [(r.iteration, r.loss, r.step, r.gradient_norm, r.evaluations) for r in result.history]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_resume_reproduces_the_uninterrupted_trajectory(tmp_path, name):
    config = CONFIGS[name]
    net_a, trainer_a = trainer_for(config)
    straight = trainer_a.run(max_iterations=16)
    assert straight.iterations == 16

    path = tmp_path / "run.ckpt"
    net_b, trainer_b = trainer_for(config, monitors=[train.Checkpoint(path, every=3)])
    first = trainer_b.run(max_iterations=8)
    assert first.iterations == 8 and path.exists()
    # a fresh process: new network, problem, optimizer and monitors, same settings
    net_c, trainer_c = trainer_for(config)
    for p in net_c.parameters():
        p.value[...] = 0  # whatever the parameters hold, the checkpoint replaces them
    resumed = trainer_c.resume(path, max_iterations=16)
    assert resumed.iterations == 16
    assert fingerprint(resumed) == fingerprint(straight)
    for pa, pc in zip(net_a.parameters(), net_c.parameters()):
        assert np.array_equal(pa.value, pc.value) and pa.value.dtype == pc.value.dtype
    assert trainer_c.monitors[0].losses == trainer_a.monitors[0].losses


def test_checkpoint_contents_and_refusals(tmp_path):
    path = tmp_path / "c.minieye"
    net, trainer = trainer_for(CONFIGS["lbfgs-full-f64"])
    trainer.run(max_iterations=5)
    trainer.save_checkpoint(path)
    meta, arrays = read_archive(path)
    assert meta["format"] == "minieye-checkpoint" and meta["version"] == 1
    assert [(e["index"], e["name"], tuple(e["shape"])) for e in meta["params"]] == \
        [(i, p.name, p.shape) for i, p in enumerate(trainer.problem.params)]
    assert meta["orientation"]["class"] == "LBFGS" and arrays["orientation.s"].shape[0] == 4
    assert meta["trainer"]["iteration"] == 5 and arrays["history"].shape == (5, 6)
    assert np.array_equal(arrays["param.000"], net.parameters()[0].value)
    json.dumps(meta)  # plain JSON, RNG state included

    _, other = trainer_for(dict(CONFIGS["lbfgs-full-f64"], orientation=lambda: train.LBFGS(history=9)))
    with pytest.raises(ValueError, match="history"):
        other.resume(path)
    _, other = trainer_for(dict(CONFIGS["lbfgs-full-f64"], search=train.Backtracking))
    with pytest.raises(ValueError, match="ArmijoWolfe"):
        other.resume(path)
    bad = tmp_path / "bad.ckpt"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(bad, "w") as target:
        document = json.loads(source.read("meta.json"))
        document["version"] = 99
        target.writestr("meta.json", json.dumps(document))
        target.writestr("arrays.npz", source.read("arrays.npz"))
    with pytest.raises(ValueError, match="version"):
        trainer.resume(bad)
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError):
        trainer.resume(bad)
    wrong = me.Sequential(layers.Dense(5, 2, dtype="float64"))
    x, y = np.zeros((4, 5)), np.zeros((4, 2))
    with pytest.raises(ValueError, match="2 parameters"):
        train.Trainer(train.Problem(wrong, losses.MSE(), x, y), train.LBFGS(history=4)).resume(path)
    wrong = me.Sequential(layers.Dense(5, 6, dtype="float64"), layers.Dense(6, 2, dtype="float64"))
    with pytest.raises(ValueError, match=r"params\[0\] \('weight'\) of shape \(6, 5\)"):
        train.Trainer(train.Problem(wrong, losses.MSE(), x, y), train.LBFGS(history=4)).resume(path)
    _, in_float32 = trainer_for(dict(CONFIGS["lbfgs-full-f64"], dtype="float32"))  # same shapes, other precision
    with pytest.raises(ValueError, match=r"params\[0\] \('weight'\) of dtype float32.*dtype float64.*dtype='float64'"):
        in_float32.resume(path)


def test_history_writes_csv_and_json(tmp_path):
    for suffix in ("csv", "json"):
        path = tmp_path / f"log.{suffix}"
        _, trainer = trainer_for(CONFIGS["lbfgs-full-f64"], monitors=[train.History(path, every=2)])
        result = trainer.run(max_iterations=5)
        if suffix == "csv":
            rows = list(csv.DictReader(path.open()))
            assert [float(r["loss"]) for r in rows] == [r.loss for r in result.history]
        else:
            doc = json.loads(path.read_text())
            assert [r["loss"] for r in doc["history"]] == [r.loss for r in result.history]
            assert doc["stop_reason"] == "max_iterations"


def test_validation_stops_early_and_restores_the_best_parameters():
    # overfit 12 noisy samples; held-out loss gets worse after a while
    rng = np.random.default_rng(3)
    x = rng.standard_normal((212, 4))
    y = x[:, :1] * 0.5 + 0.5 * rng.standard_normal((212, 1))
    net = me.Sequential(layers.Dense(4, 32, dtype="float64", seed=1), layers.Tanh(),
                        layers.Dense(32, 1, dtype="float64", seed=2))
    problem = train.Problem(net, losses.MSE(), x[:12], y[:12])
    seen = {}
    validation = train.Validation(x[12:], y[12:], every=1, patience=5)
    monitors = [validation, train.Callback(lambda t, r: seen.setdefault(r.iteration, t.problem.get_vector()) is None)]
    result = train.Trainer(problem, monitors=monitors).run(max_iterations=300)
    assert result.stop_reason == "monitor" and "validation" in result.message
    best = validation.best_iteration
    assert result.iterations == best + 5
    assert np.array_equal(problem.get_vector(), seen[best] if best else problem.get_vector())
    held_out = float(losses.MSE()(net(x[12:]), y[12:]))
    assert held_out == validation.best_loss == result.notes["validation"]["best_loss"]
    assert held_out < min(v for i, v in validation.losses if i > best)


def test_progress_bar_is_quiet_by_default_and_shows_when_asked(capsys):
    pytest.importorskip("tqdm")
    _, trainer = trainer_for(CONFIGS["lbfgs-full-f64"])
    trainer.run(max_iterations=3)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    _, trainer = trainer_for(CONFIGS["lbfgs-full-f64"], monitors=[train.ProgressBar("fit")])
    trainer.run(max_iterations=3)
    assert "fit" in capsys.readouterr().err


def test_resume_from_a_periodic_checkpoint_written_mid_run(tmp_path):
    config = CONFIGS["lbfgs-batch"]
    _, trainer_a = trainer_for(config)
    straight = trainer_a.run(max_iterations=12)
    path = tmp_path / "mid.ckpt"
    _, trainer_b = trainer_for(config, monitors=[train.Checkpoint(path, every=4, at_end=False)])
    trainer_b.run(max_iterations=10)  # the file holds iteration 8
    _, trainer_c = trainer_for(config)
    resumed = trainer_c.run(max_iterations=12, resume_from=path)
    assert fingerprint(resumed) == fingerprint(straight)
    assert resumed.evaluations == straight.evaluations


def test_progress_bar_without_tqdm_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` fail
    _, trainer = trainer_for(CONFIGS["lbfgs-full-f64"], monitors=[train.ProgressBar()])
    with pytest.raises(ImportError, match=r"minieye\[demo\]"):
        trainer.run(max_iterations=2)


def test_complete_gradient_runs_the_backward_pass_deferred_by_a_step_evaluated_ahead():
    net, problem, _ = make_problem(batch_size=8)
    trainer = train.Trainer(problem, train.Adam(), train.FixedStep(0.01))
    trainer.run(max_iterations=3)
    assert trainer.current.grad is None and trainer.current.pending is not None  # evaluated on the next batch
    trainer.complete_gradient()
    assert trainer.current.pending is None
    _, expected = problem.evaluate_vector(trainer.batches[0])
    np.testing.assert_allclose(trainer.current.grad, expected, rtol=1e-12)
    trainer.complete_gradient()  # nothing pending: a no-op
    np.testing.assert_allclose(trainer.current.grad, expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_resumed_run_gets_the_line_search_resolution_of_its_dtype(tmp_path, dtype):
    _, problem, _ = make_problem(dtype)
    trainer = train.Trainer(problem)
    trainer.run(max_iterations=2)
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    fresh = train.Trainer(make_problem(dtype)[1])
    fresh.run(max_iterations=2, resume_from=tmp_path / "run.ckpt")
    assert fresh.line_search.resolution == trainer.line_search.resolution == 16 * np.finfo(dtype).eps


def test_training_logs_and_checkpoints_get_the_mode_a_plain_open_gives(tmp_path):
    import os
    old = os.umask(0o022)
    try:
        _, trainer = trainer_for(CONFIGS["lbfgs-full-f64"], monitors=[train.History(tmp_path / "log.csv", every=1),
                                                                      train.Checkpoint(tmp_path / "run.ckpt")])
        trainer.run(max_iterations=2)
    finally:
        os.umask(old)
    for name in ("log.csv", "run.ckpt"):  # not mkstemp's 0o600: others may read them, as with open(path, "w")
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv", "run.ckpt"]  # no temporary file left


def test_adamw_params_are_saved_by_position_and_resumed_only_with_the_same_list(tmp_path):
    def adamw_on(pick):
        net, problem, _ = make_problem(batch_size=8)
        orientation = train.AdamW(weight_decay=0.1, params=None if pick is None else pick(net))
        return train.Trainer(problem, orientation, train.FixedStep(0.01))

    weights = lambda net: [net[0].weight, net[2].weight]  # noqa: E731 (biases left out, as usual)
    path = tmp_path / "adamw.ckpt"
    trainer = adamw_on(weights)
    trainer.run(max_iterations=3)
    trainer.save_checkpoint(path)
    assert read_archive(path)[0]["orientation"]["config"]["params"] == [0, 2]  # positions in problem.params
    straight = adamw_on(weights).run(max_iterations=5)
    assert fingerprint(adamw_on(weights).resume(path, max_iterations=5)) == fingerprint(straight)
    for other in (lambda net: [net[0].weight], lambda net: net.parameters(), None):
        with pytest.raises(ValueError, match=r"AdamW\(.*'params': \[0, 2\]\}\) as in the checkpoint; got AdamW.*"
                                             r"positions in problem.params"):
            adamw_on(other).resume(path)


@pytest.mark.parametrize("name", ["adam-batch", "lbfgs-batch", "lbfgs-full-f64"])
def test_a_monitor_that_raises_leaves_a_run_that_continues_exactly(name, tmp_path):
    config = CONFIGS[name]
    net_a, trainer_a = trainer_for(config)
    straight = trainer_a.run(max_iterations=16)

    def disk_full_once(trainer, record):  # e.g. a checkpoint write that fails
        if record.iteration == 5 and not failed:
            failed.append(record.iteration)
            raise OSError("No space left on device")

    failed, seen = [], []
    bar, log = train.ProgressBar(), train.History(tmp_path / "log.json", every=100)
    net_b, trainer_b = trainer_for(config, monitors=[bar, log, train.Callback(disk_full_once),
                                                     train.Callback(lambda t, r: seen.append(r.iteration) and None)])
    with pytest.raises(OSError, match="No space left"):
        trainer_b.run(max_iterations=16)
    assert seen == [1, 2, 3, 4, 5]  # the monitors after the failing one still saw its iteration
    assert bar._bar is None  # the progress bar is closed, not left open beside the next run's
    assert [row["iteration"] for row in json.loads((tmp_path / "log.json").read_text())["history"]] == [1, 2, 3, 4, 5]
    continued = trainer_b.run(max_iterations=11)  # the optimizer's memory, batch order and history continue
    assert continued.iterations == 16 and fingerprint(continued) == fingerprint(straight)
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        assert np.array_equal(pa.value, pb.value)
