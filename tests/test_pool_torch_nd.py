"""PyTorch conformance of 1-D and 3-D pooling: max_pool1d/3d with return_indices, max_unpool1d/3d,
avg_pool1d/3d in both count modes, forward values, switches and gradients, and pool/unpool
pairs in a Sequential (skipped when torch is not installed; ``pip install torch==2.13.0``)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

import minieye as me  # noqa: E402
from minieye import functional as F, layers  # noqa: E402
from test_pool_nd import nd_problems, values  # noqa: E402

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}
seeds = st.integers(0, 2**32 - 1)
TORCH = {nd: dict(max=getattr(TF, f"max_pool{nd}d"), unpool=getattr(TF, f"max_unpool{nd}d"),
                  avg=getattr(TF, f"avg_pool{nd}d")) for nd in (1, 3)}


def grad_of(fn, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y, dx) of a torch function at x for output gradient dy."""
    t = torch.tensor(x, requires_grad=True)
    y = fn(t)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("nd", [1, 3])
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES), kind=st.sampled_from(["normal", "coarse", "special"]))
def test_max_pool_and_unpool_match_torch(nd, data, seed, dtype, kind):
    shape, k, s, p = data.draw(nd_problems(nd))
    rng = np.random.default_rng(seed)
    x = values(shape, kind, dtype, rng)  # coarse and special: ties, NaN and infinities
    y, switches = getattr(F, f"max_pool{nd}d")(x, k, s, p)
    t_y, t_idx = TORCH[nd]["max"](torch.tensor(x), k, s, p, return_indices=True)
    np.testing.assert_array_equal(y, t_y.numpy())
    np.testing.assert_array_equal(switches, t_idx.numpy())  # ties included: first max wins in both
    # gradient of max-pool (finite values: torch's NaN gradients follow the same switches)
    dy = rng.standard_normal(y.shape).astype(dtype)
    _, t_dx = grad_of(lambda t: TORCH[nd]["max"](t, k, s, p), x, dy)
    np.testing.assert_allclose(getattr(F, f"max_unpool{nd}d")(dy, switches, shape[2:]), t_dx, **TOL[dtype])
    # unpool and its gradient where switches are distinct (PyTorch keeps one of equal switches)
    flat = switches.reshape(shape[0] * shape[1], -1)
    if all(len(np.unique(row)) == row.size for row in flat):
        up = getattr(F, f"max_unpool{nd}d")(y, switches, shape[2:])
        t_yy = torch.tensor(y, requires_grad=True)
        t_up = TORCH[nd]["unpool"](t_yy, torch.tensor(switches), k, s, p, output_size=shape[2:])
        np.testing.assert_array_equal(up, t_up.detach().numpy())
        dz = rng.standard_normal(shape).astype(dtype)
        t_up.backward(torch.tensor(dz))
        np.testing.assert_array_equal(getattr(F, f"max_unpool{nd}d_backward")(dz, switches), t_yy.grad.numpy())


@pytest.mark.parametrize("nd", [1, 3])
@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES), count_include_pad=st.booleans())
def test_avg_pool_matches_torch(nd, data, seed, dtype, count_include_pad):
    shape, k, s, p = data.draw(nd_problems(nd))
    # PyTorch's avg_pool3d (not 1d/2d) refuses an input smaller than the kernel even where the
    # padding makes up for it; minieye accepts it in every dimension (checked against the naive loops)
    assume(nd != 3 or all(n >= ki for n, ki in zip(shape[2:], k)))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    layer = getattr(layers, f"AvgPool{nd}D")(k, s, p, count_include_pad=count_include_pad)
    y, backward = layer.forward(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = backward(dy, me.DeltaSet())
    t_y, t_dx = grad_of(lambda t: TORCH[nd]["avg"](t, k, s, p, count_include_pad=count_include_pad), x, dy)
    np.testing.assert_allclose(y, t_y, **TOL[dtype])
    np.testing.assert_allclose(dx, t_dx, **TOL[dtype])


@pytest.mark.parametrize("nd, shape", [(1, (2, 3, 16)), (3, (2, 2, 4, 6, 8))])
def test_pool_unpool_pair_matches_torch_end_to_end(nd, shape):
    """A MaxPool/MaxUnpool pair around a ReLU in a Sequential: values and input gradient as in PyTorch."""
    rng = np.random.default_rng(20 + nd)
    x = rng.standard_normal(shape)
    pool = getattr(layers, f"MaxPool{nd}D")(2)
    net = me.Sequential(pool, layers.ReLU(), getattr(layers, f"MaxUnpool{nd}D")(pool))
    dz = rng.standard_normal(x.shape)
    z, backward = net.forward(x)
    dx = backward(dz, me.DeltaSet())

    def torch_net(t):
        pooled, idx = TORCH[nd]["max"](t, 2, return_indices=True)
        return TORCH[nd]["unpool"](torch.relu(pooled), idx, 2, output_size=x.shape[2:])

    t_z, t_dx = grad_of(torch_net, x, dz)
    np.testing.assert_array_equal(z, t_z)
    np.testing.assert_array_equal(dx, t_dx)
