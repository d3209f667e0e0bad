"""Learning-rate schedules, AdamW and gradient clipping agree with PyTorch's formulas (float64)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train


def _fit(orientation, rate=0.05, steps=6, schedule=None, seed=0):
    """Our trajectory on a float64 Dense + MSE problem: the parameter vector after each step."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((12, 3)), rng.standard_normal((12, 2)) * 3
    net = me.Sequential(layers.Dense(3, 2, dtype="float64", seed=seed))
    problem = train.Problem(net, losses.MSE(), x, y)
    start = [p.value.copy() for p in net.parameters()]
    seen = []
    monitor = train.Callback(lambda t, r: seen.append(t.problem.get_vector()))
    if not isinstance(orientation, train.Orientation):  # made from the network
        orientation = orientation(net)
    train.Trainer(problem, orientation, train.FixedStep(rate, schedule=schedule), [monitor]).run(max_iterations=steps)
    return x, y, start, np.array(seen)


def _torch_fit(x, y, start, make_optimizer, steps=6, clip=None):
    torch = pytest.importorskip("torch")
    weight, bias = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in start)
    optimizer = make_optimizer(torch, weight, bias)
    xt, yt = torch.tensor(x), torch.tensor(y)
    seen = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ((xt @ weight.T + bias - yt) ** 2).mean()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([weight, bias], clip)
        optimizer.step()
        seen.append(np.concatenate([weight.detach().numpy().ravel(), bias.detach().numpy().ravel()]))
    return np.array(seen)


def test_adamw_first_steps_match_torch():
    x, y, start, ours = _fit(train.AdamW(weight_decay=0.1), rate=0.05)
    theirs = _torch_fit(x, y, start, lambda torch, w, b: torch.optim.AdamW([w, b], lr=0.05, weight_decay=0.1))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    # the decay applies where it is asked to: here to the weight only (PyTorch: parameter groups)
    def only_weight(torch, w, b):
        return torch.optim.AdamW([{"params": [w]}, {"params": [b], "weight_decay": 0.0}], lr=0.05, weight_decay=0.5)

    x, y, start, ours = _fit(lambda net: train.AdamW(weight_decay=0.5, params=[net[0].weight]), rate=0.05)
    theirs = _torch_fit(x, y, start, only_weight)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    plain = _fit(train.Adam(), rate=0.05)[3]
    assert not np.allclose(plain, ours)  # the decay does change the steps


def test_gradient_clipping_by_global_norm_matches_torch():
    for ours_orientation, make, clip in (
            (train.GradientDescent(clip_norm=0.5), lambda torch, w, b: torch.optim.SGD([w, b], lr=0.05), 0.5),
            (train.Adam(clip_norm=0.3), lambda torch, w, b: torch.optim.Adam([w, b], lr=0.05), 0.3),
            (train.Momentum(0.9, clip_norm=1.0), lambda torch, w, b: torch.optim.SGD([w, b], lr=0.05, momentum=0.9),
             1.0)):
        x, y, start, ours = _fit(ours_orientation)
        theirs = _torch_fit(x, y, start, make, clip=clip)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14, err_msg=repr(ours_orientation))
    x, y, start, unclipped = _fit(train.GradientDescent())
    assert not np.allclose(unclipped, _fit(train.GradientDescent(clip_norm=0.5))[3])  # the clip was active
    with pytest.raises(ValueError, match="clip_norm"):
        train.Adam(clip_norm=0)


def _torch_rates(make, steps):
    torch = pytest.importorskip("torch")
    from torch.optim import lr_scheduler

    parameter = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = torch.optim.SGD([parameter], lr=0.5)
    scheduler = make(optimizer, lr_scheduler)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


SCHEDULES = {
    "step": (train.StepDecay(3, gamma=0.5), lambda o, s: s.StepLR(o, step_size=3, gamma=0.5), 12),
    "cosine": (train.Cosine(10, min_factor=0.02), lambda o, s: s.CosineAnnealingLR(o, T_max=10, eta_min=0.01), 11),
    "warmup": (train.LinearWarmup(4, start_factor=0.1), lambda o, s: s.LinearLR(o, start_factor=0.1, total_iters=4),
               9),
    "warmup-then-cosine": (train.LinearWarmup(3, 0.1).then(train.Cosine(6, 0.02)), lambda o, s: s.SequentialLR(
        o, [s.LinearLR(o, start_factor=0.1, total_iters=3), s.CosineAnnealingLR(o, T_max=6, eta_min=0.01)],
        milestones=[3]), 10),
    "warmup-times-step": (train.LinearWarmup(3, 0.1) * train.StepDecay(2, 0.5), lambda o, s: s.ChainedScheduler(
        [s.LinearLR(o, start_factor=0.1, total_iters=3), s.StepLR(o, 2, 0.5)]), 10),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_match_torch_lr_schedulers(name):
    schedule, make, steps = SCHEDULES[name]
    ours = [0.5 * schedule(k) for k in range(steps)]
    np.testing.assert_allclose(ours, _torch_rates(make, steps), rtol=1e-12)


def test_cosine_stays_at_its_minimum_and_bad_arguments_are_named():
    assert train.Cosine(10, 0.1)(10) == train.Cosine(10, 0.1)(25) == 0.1
    assert train.Cosine(10)(5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="gamma"):
        train.StepDecay(2, gamma=1.5)
    with pytest.raises(ValueError, match="at"):
        train.Cosine(10).then(train.Cosine(5))
    with pytest.raises(ValueError, match="instance"):
        train.FixedStep(0.1, schedule=train.Cosine)
    with pytest.raises(ValueError, match="per"):
        train.FixedStep(0.1, schedule=train.Cosine(3), per="batch")


def test_fixed_step_follows_its_schedule_per_iteration_and_per_epoch(tmp_path):
    schedule = train.LinearWarmup(2, 0.25).then(train.Cosine(4))
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((20, 3)), rng.standard_normal((20, 2))

    def run(per, monitors=(), **kwargs):
        net = me.Sequential(layers.Dense(3, 2, dtype="float64", seed=0))
        problem = train.Problem(net, losses.MSE(), x, y, batch_size=8)
        search = train.FixedStep(0.1, schedule=schedule, per=per)
        return train.Trainer(problem, train.Adam(), search, list(monitors)).run(**kwargs)

    steps = [r.step for r in run("iteration", max_iterations=7).history]
    assert steps == [0.1 * schedule(k) for k in range(7)]
    result = run("epoch", epochs=3)  # 3 batches per epoch: 8 + 8 + 4 rows
    assert [r.step for r in result.history] == [0.1 * schedule(k // 3) for k in range(9)]
    path = tmp_path / "s.ckpt"
    run("epoch", [train.Checkpoint(path)], epochs=1)
    net = me.Sequential(layers.Dense(3, 2, dtype="float64", seed=0))
    resumed = train.Trainer(train.Problem(net, losses.MSE(), x, y, batch_size=8), train.Adam(),
                            train.FixedStep(0.1, schedule=schedule, per="epoch")).resume(path, epochs=3)
    assert [r.step for r in resumed.history] == [r.step for r in result.history]
    with pytest.raises(ValueError, match="schedule"):
        train.Trainer(train.Problem(net, losses.MSE(), x, y, batch_size=8), train.Adam(),
                      train.FixedStep(0.1, schedule=train.Cosine(9), per="epoch")).resume(path)
    assert math.isclose(train.FixedStep(0.1, schedule=schedule).current_rate, 0.025)


def test_orientation_and_schedule_arguments_are_checked_as_checks_does():
    # NumPy scalars are numbers like any other (np.float32 is no Python float)
    assert train.Adam(beta1=np.float32(0.5), eps=np.float32(1e-6)).beta1 == 0.5
    assert train.StepDecay(2, gamma=np.float32(0.5)).gamma == 0.5
    assert train.OWLQN(l1=np.float64(1e-3)).l1 == 1e-3
    for make, message in [
            (lambda: train.AdamW(weight_decay=-0.1), r"AdamW: expected weight_decay a finite number >= 0"),
            (lambda: train.AdamW(weight_decay=True), r"weight_decay a finite number >= 0; got weight_decay=True"),
            (lambda: train.Adam(eps=0.0), r"Adam: expected eps a finite number > 0"),
            (lambda: train.Adam(beta2=1.0), r"beta2 in \[0, 1\)"),
            (lambda: train.Momentum(momentum=math.nan), r"momentum a finite number"),
            (lambda: train.OWLQN(l1=0), r"OWLQN: expected l1 a finite number > 0"),
            (lambda: train.LinearWarmup(3, start_factor=math.inf), r"start_factor a finite number"),
            (lambda: train.Cosine(3, min_factor=-0.5), r"min_factor in \[0, 1\]")]:
        with pytest.raises(ValueError, match=message):
            make()
    with pytest.raises(TypeError, match="other a train schedule"):
        train.LinearWarmup(3).then(0.5)
    with pytest.raises(TypeError, match=r"FixedStep: expected schedule a train schedule .* got 0\.5"):
        train.FixedStep(0.1, schedule=0.5)
    with pytest.raises(TypeError, match=r"pass an instance, not the class: Cosine\(\.\.\.\)"):
        train.FixedStep(0.1, schedule=train.Cosine)


def test_pytorch_optimizer_arguments_say_where_they_go_here():
    with pytest.raises(TypeError, match=r"AdamW: expected no 'lr' argument; got lr=0.001\. the learning rate "
                                        r"belongs to the line search: pass train.FixedStep\(0.001\)"):
        train.AdamW(lr=1e-3, weight_decay=0.01)
    with pytest.raises(TypeError, match="FixedStep"):
        train.LBFGS(learning_rate=1.0)
    with pytest.raises(TypeError, match=r"got betas=\(0.9, 0.99\)\. give beta1= and beta2= separately"):
        train.Adam(betas=(0.9, 0.99))
    import copy
    adam = copy.deepcopy(train.Adam(beta1=0.5))  # instances still copy (checkpoints, monitors)
    assert adam.beta1 == 0.5 and repr(train.Momentum(0.5)) == "Momentum(momentum=0.5, nesterov=False)"


def test_line_search_and_constraint_arguments_take_numpy_numbers_and_name_mistakes():
    assert train.FixedStep(np.float32(0.5)).rate == 0.5
    assert train.ArmijoWolfe(c1=np.float64(1e-3), c2=np.float32(0.5)).c2 == 0.5
    with pytest.raises(ValueError, match=r"FixedStep: expected rate in \(0.0, inf\); got rate=-0.1"):
        train.FixedStep(-0.1)
    with pytest.raises(ValueError, match=r"ArmijoWolfe: expected c2 a finite number; got c2=nan"):
        train.ArmijoWolfe(c2=math.nan)
    dense = layers.Dense(2, 2, dtype="float64", seed=0)
    assert train.Simplex(dense.weight, total=np.float32(2.0)).total == 2.0
    with pytest.raises(ValueError, match=r"Simplex\('weight'\): expected total a finite number > 0; got total=0"):
        train.Simplex(dense.weight, total=0)
    with pytest.raises(TypeError, match=r"Box: expected param a minieye Parameter; got ndarray\. pass the Parameter "
                                        r"\(e\.g\. layer\.weight\), not its value"):
        train.Box(dense.weight.value, 0.0, 1.0)
