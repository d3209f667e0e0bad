"""BatchNorm1D/2D, LayerNorm, GroupNorm, Dropout and GELU/SiLU/ELU/Softplus against PyTorch, in
float64, in training and evaluation mode: outputs, input gradients, parameter gradients and the
running statistics after several training steps (skipped when torch is absent)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minieye as me  # noqa: E402
from minieye import layers as L  # noqa: E402

RTOL, ATOL = 1e-12, 1e-13


def _pair(ours: me.Layer, theirs, rng: np.random.Generator):
    """Give both layers the same random affine parameters (where they have any)."""
    theirs = theirs.double()
    for p, q in zip(ours.parameters(), theirs.parameters()):
        p.value[...] = rng.uniform(0.5, 2.0, p.shape) if p.name == "weight" else rng.normal(size=p.shape)
        with torch.no_grad():
            q.copy_(torch.from_numpy(p.value))
    assert len(ours.parameters()) == len(list(theirs.parameters()))
    return ours, theirs


def _step(ours, theirs, x, dy):
    """One forward and backward of each; compares output, dx and every parameter gradient."""
    y, backward = ours.forward(x)
    deltas = me.DeltaSet()
    dx = backward(dy, deltas)
    xt = torch.tensor(x, requires_grad=True)
    for q in theirs.parameters():
        q.grad = None
    yt = theirs(xt)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg="output")
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg="input gradient")
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(deltas[p], q.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=f"gradient of {p.name}")


def _compare_in_both_modes(ours, theirs, shape, rng, steps=3):
    """``steps`` training steps on fresh batches, then evaluation mode; running statistics
    (where the layer has them) compared after every step."""
    for training in (True, False):
        ours.train(training)
        theirs.train(training)
        for _ in range(steps):
            x = rng.normal(1.5, 2.0, size=shape)
            _step(ours, theirs, x, rng.normal(size=shape))
            for name, array in ours.buffers().items():
                np.testing.assert_allclose(array, getattr(theirs, name).numpy(), rtol=RTOL, atol=ATOL, err_msg=name)
    assert sorted(ours.buffers()) == sorted(name for name, _ in theirs.named_buffers())


BATCH_NORMS = [
    (L.BatchNorm1D, torch.nn.BatchNorm1d, (8, 5), {}),
    (L.BatchNorm1D, torch.nn.BatchNorm1d, (4, 3, 7), {"momentum": 0.3}),
    (L.BatchNorm1D, torch.nn.BatchNorm1d, (2, 3), {"affine": False, "eps": 1e-3}),
    (L.BatchNorm2D, torch.nn.BatchNorm2d, (4, 3, 5, 6), {}),
    (L.BatchNorm2D, torch.nn.BatchNorm2d, (1, 2, 3, 3), {"momentum": 1.0, "affine": False}),
    (L.BatchNorm2D, torch.nn.BatchNorm2d, (3, 4, 1, 2), {"momentum": 0.0, "eps": 0.1}),
    (L.BatchNorm1D, torch.nn.BatchNorm1d, (5, 2, 3), {"momentum": None}),
]


@pytest.mark.parametrize("ours_cls, torch_cls, shape, kwargs", BATCH_NORMS,
                         ids=[f"{c[0].__name__}-{c[2]}-{c[3]}" for c in BATCH_NORMS])
def test_batch_norm_matches_torch_with_its_running_statistics(ours_cls, torch_cls, shape, kwargs):
    rng = np.random.default_rng(len(shape) + sum(shape))
    ours, theirs = _pair(ours_cls(shape[1], dtype="float64", **kwargs), torch_cls(shape[1], **kwargs), rng)
    _compare_in_both_modes(ours, theirs, shape, rng)


@pytest.mark.parametrize("normalized, shape, affine", [(6, (4, 6), True), ((3, 4), (2, 5, 3, 4), True),
                                                        ([5], (3, 2, 5), False), ((2, 3, 3), (2, 2, 3, 3), True)])
def test_layer_norm_matches_torch(normalized, shape, affine):
    rng = np.random.default_rng(sum(shape))
    ours, theirs = _pair(L.LayerNorm(normalized, elementwise_affine=affine, dtype="float64"),
                         torch.nn.LayerNorm(normalized, elementwise_affine=affine), rng)
    _compare_in_both_modes(ours, theirs, shape, rng, steps=1)


@pytest.mark.parametrize("groups, shape, affine", [(1, (3, 4, 5), True), (4, (2, 4, 3, 3), True),
                                                    (2, (2, 6, 2, 5), False), (3, (3, 6), True)])
def test_group_norm_matches_torch(groups, shape, affine):
    rng = np.random.default_rng(sum(shape))
    ours, theirs = _pair(L.GroupNorm(groups, shape[1], affine=affine, dtype="float64"),
                         torch.nn.GroupNorm(groups, shape[1], affine=affine), rng)
    _compare_in_both_modes(ours, theirs, shape, rng, steps=1)


ACTIVATIONS = [(L.GELU(), torch.nn.GELU()), (L.SiLU(), torch.nn.SiLU()), (L.ELU(), torch.nn.ELU()),
               (L.ELU(0.3), torch.nn.ELU(0.3)), (L.Softplus(), torch.nn.Softplus()),
               (L.Softplus(2.0, 5.0), torch.nn.Softplus(2.0, 5.0))]


@pytest.mark.parametrize("ours, theirs", ACTIVATIONS, ids=[a[0].label() for a in ACTIVATIONS])
def test_activations_match_torch_including_far_tails(ours, theirs):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(scale=3.0, size=200), [-40.0, -25.0, -1e-8, 0.0, 1e-8, 2.49, 2.51, 25.0, 40.0]])
    for training in (True, False):
        ours.train(training)
        theirs.train(training)
        _step(ours, theirs.double(), x, rng.normal(size=x.shape))


def test_dropout_follows_torch_semantics_in_both_modes():
    """Masks come from different generators, so the training-mode comparison is on what defines
    Dropout: kept values scaled by 1 / (1 - p), dropped ones zero, gradients through the same
    mask, the drop rate; evaluation mode is the identity in both, and p = 0 and p = 1 agree."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 250)) + 5.0   # no value is 0, so zeros in y are dropped ones
    dy = rng.normal(size=x.shape)
    for p in (0.0, 0.2, 0.5, 1.0):
        ours, theirs = L.Dropout(p, seed=0), torch.nn.Dropout(p)
        y, backward = ours.forward(x)
        yt = theirs(torch.from_numpy(x)).numpy()
        for out in (y, yt):
            kept = out != 0
            np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=RTOL)
            assert abs(1 - kept.mean() - p) < 4 * np.sqrt(p * (1 - p) / x.size) + 1e-12, (p, kept.mean())
        np.testing.assert_allclose(backward(dy, me.DeltaSet()), np.where(y != 0, dy / max(1 - p, 1e-300), 0.0),
                                   rtol=RTOL)
        ours.eval()
        theirs.eval()
        np.testing.assert_array_equal(ours(x), theirs(torch.from_numpy(x)).numpy())
        np.testing.assert_array_equal(ours.forward(x)[1](dy, me.DeltaSet()), dy)
