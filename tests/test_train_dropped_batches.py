"""A mini-batch dropped for a non-finite loss or gradient still ends its epoch: the epoch count,
the summaries, the monitors' epoch hooks and ``run(epochs=...)`` see the epochs a user expects
when a later run (or a checkpoint resumed) goes on."""
from __future__ import annotations

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train

ROWS, BATCH = 40, 8  # five batches per epoch


class EpochLog(train.Monitor):
    """The epoch hooks a run calls: (summary's epoch, the trainer's iteration then)."""

    def __init__(self):
        self.seen = []

    def epoch(self, trainer, summary):
        self.seen.append((summary["epoch"], trainer.iteration))


def poisoned_problem(what):
    """A problem whose 5th mini-batch (the last of epoch 1) gives a NaN loss or gradient, that once
    (``what="interrupt"``: whose first evaluation on it is cut short by Ctrl-C; None: a clean one)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS, 3))
    y = x @ np.array([[1.0], [2.0], [-1.0]])
    net = me.Sequential(layers.Dense(3, 1, dtype="float64", seed=0))
    problem = train.Problem(net, losses.MSE(), x, y, batch_size=BATCH, rng=np.random.default_rng(2))
    drawn, draw, forward, what_next = [], problem.draw_batch, problem.forward_vector, []
    problem.draw_batch = lambda: drawn.append(draw()) or drawn[-1]

    def forward_vector(batch):
        loss, pending = forward(batch)
        if what is None or len(drawn) < 5 or batch is not drawn[4]:
            return loss, pending
        if what == "interrupt":
            what_next.append(None)
            if len(what_next) == 1:
                raise KeyboardInterrupt
            return loss, pending
        if what == "loss":
            return float("nan"), pending
        return loss, lambda: np.full(problem.size, np.nan)

    problem.forward_vector = forward_vector
    return problem


OPTIMIZERS = {
    "ahead": lambda: (train.Adam(), train.FixedStep(0.01)),  # steps checked on the next batch (train/ahead.py)
    "own batch": lambda: (train.GradientDescent(), train.Backtracking()),
}


@pytest.mark.parametrize("what", ["loss", "gradient", "gradient completed early"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_a_dropped_last_batch_still_ends_its_epoch(what, optimizer, tmp_path):
    """"completed early": a monitor runs the deferred backward pass of a step checked ahead (as a
    checkpoint does), which queues the batch again: the next iteration drops it (train/ahead.py)."""
    problem = poisoned_problem(what.split()[0])
    start = problem.get_vector()
    log = EpochLog()
    early = [train.Callback(lambda t, r: t.complete_gradient())] if what.endswith("early") else []
    trainer = train.Trainer(problem, *OPTIMIZERS[optimizer](),
                            monitors=[log, *early, train.Checkpoint(tmp_path / "stop.ckpt", every=1000)])
    first = trainer.run(epochs=3)
    assert first.stop_reason == "non_finite" and first.iterations == 4
    assert trainer.epoch == 1 and log.seen == [(1, 4)]  # batch 5 was used up: epoch 1 is over
    assert [(e["epoch"], e["iteration"]) for e in first.epoch_history] == [(1, 4)]
    assert first.epoch_history[0]["loss"] == pytest.approx(np.mean(first.losses))

    more = trainer.run(epochs=2)  # two more epochs: 2 and 3, five batches each
    assert more.stop_reason == "epochs" and more.iterations == 14 and trainer.epoch == 3
    assert [(e["epoch"], e["iteration"]) for e in more.epoch_history] == [(1, 4), (2, 9), (3, 14)]
    assert log.seen == [(1, 4), (2, 9), (3, 14)]

    problem.set_vector(start)  # the checkpoint saved at the stop resumes to the same count
    resumed = train.Trainer(problem, *OPTIMIZERS[optimizer]()).resume(tmp_path / "stop.ckpt", epochs=3)
    assert resumed.stop_reason == "epochs" and resumed.iterations == 14
    assert resumed.epoch_history == more.epoch_history
    assert np.array_equal(resumed.losses, more.losses)


def test_ctrl_c_while_a_new_batch_is_evaluated_leaves_it_queued():
    """Without steps checked ahead, an iteration starts by evaluating the current point on the next
    batch; Ctrl-C there keeps that batch for the continued run, which then equals an uninterrupted one."""
    straight = train.Trainer(poisoned_problem(None), *OPTIMIZERS["own batch"]()).run(epochs=2)
    trainer = train.Trainer(poisoned_problem("interrupt"), *OPTIMIZERS["own batch"]())
    first = trainer.run(epochs=2)
    assert first.stop_reason == "interrupted" and first.iterations == 4 and trainer.epoch == 0
    more = trainer.run(epochs=2)
    assert more.stop_reason == "epochs" and more.iterations == straight.iterations == 10
    assert np.array_equal(more.losses, straight.losses) and more.epoch_history == straight.epoch_history
