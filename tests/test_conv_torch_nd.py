"""Conv1D/Conv3D/ConvTranspose1D/3D and F.conv1d/3d, F.conv_transpose1d/3d against PyTorch
(skipped when torch is absent): forward, input, weight and bias gradients."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minieye.functional as F  # noqa: E402
from minieye import layers  # noqa: E402
from tests.test_conv_torch import assert_layer_matches_torch  # noqa: E402

# (in, out, kernel, stride, padding, output_padding (transposed only), dilation, groups, input size);
# the 1-D rows use the first entry of each tuple.
CONFIGS = [
    (3, 4, 3, 1, 1, 0, 1, 1, (5, 6, 7)),
    (4, 6, (3, 2, 2), (2, 1, 2), (1, 0, 1), (1, 0, 1), (1, 2, 1), 2, (7, 6, 5)),
    (4, 4, 3, 1, 2, 0, 2, 4, (5, 7, 6)),      # depthwise, dilated
    (8, 16, 3, 2, 1, 1, 1, 1, (6, 6, 6)),     # GEMM path, strided
    (2, 3, 1, 3, 0, 2, 1, 1, (4, 5, 7)),      # 1-wide kernel, stride 3
    (2, 3, 3, 1, 1, 1, 2, 1, (4, 6, 5)),      # output_padding >= stride (allowed: < dilation)
    (1, 2, (2, 3, 3), (3, 1, 1), (2, 1, 0), 0, 1, 1, (3, 4, 4)),  # depth padding beyond some taps
]


def _first(value, nd):
    if nd == 3 or isinstance(value, int):
        return value
    return value[0] if nd == 1 else value


def _make(config, nd, transposed, dtype, rng):
    c_in, c_out, k, s, p, op, d, g, size = (_first(v, nd) if i in (2, 3, 4, 5, 6) else v
                                            for i, v in enumerate(config))
    size = size[:nd] if nd == 3 else size[-1:]
    if transposed:
        layer = getattr(layers, f"ConvTranspose{nd}D")(c_in, c_out, k, stride=s, padding=p, output_padding=op,
                                                       dilation=d, groups=g, dtype=dtype, rng=rng)
    else:
        layer = getattr(layers, f"Conv{nd}D")(c_in, c_out, k, stride=s, padding=p, dilation=d, groups=g,
                                              dtype=dtype, rng=rng)
    layer.bias.value[:] = rng.standard_normal(c_out)
    return layer, rng.standard_normal((3, c_in) + tuple(size)).astype(dtype)


def _torch_grads(x, layer, dy, nd, transposed):
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.weight.value, requires_grad=True)
    bt = torch.tensor(layer.bias.value, requires_grad=True)
    common = dict(stride=layer.stride, padding=layer.geometry.padding, dilation=layer.dilation, groups=layer.groups)
    if transposed:
        fn = getattr(torch.nn.functional, f"conv_transpose{nd}d")
        yt = fn(xt, wt, bt, output_padding=layer.output_padding, **common)
    else:
        yt = getattr(torch.nn.functional, f"conv{nd}d")(xt, wt, bt, **common)
    yt.backward(torch.tensor(dy))
    return yt.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("transposed", [False, True], ids=["Conv", "ConvTranspose"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nd", [1, 3])
@pytest.mark.parametrize("config", CONFIGS)
def test_layer_matches_torch(config, nd, dtype, transposed):
    rng = np.random.default_rng(7)
    layer, x = _make(config, nd, transposed, dtype, rng)
    assert x.dtype == dtype
    assert_layer_matches_torch(layer, x, rng, lambda dy: _torch_grads(x, layer, dy, nd, transposed))


@pytest.mark.parametrize("nd", [1, 3])
def test_functional_matches_torch(nd):
    rng = np.random.default_rng(nd)
    size = (20, 17, 15)[:nd] if nd == 3 else (130,)
    x = rng.standard_normal((2, 6) + size).astype(np.float32)
    w = rng.standard_normal((8, 3) + (3,) * nd).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    tconv, ttrans = getattr(torch.nn.functional, f"conv{nd}d"), getattr(torch.nn.functional, f"conv_transpose{nd}d")
    want = tconv(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1, groups=2).numpy()
    np.testing.assert_allclose(getattr(F, f"conv{nd}d")(x, w, b, padding=1, groups=2), want, rtol=1e-4, atol=1e-4)
    wt = rng.standard_normal((8, 3) + (3,) * nd).astype(np.float32)
    back = ttrans(torch.tensor(want), torch.tensor(wt), stride=2, padding=1, output_padding=1, groups=2).numpy()
    got = getattr(F, f"conv_transpose{nd}d")(want, wt, stride=2, padding=1, output_padding=1, groups=2)
    np.testing.assert_allclose(got, back, rtol=1e-3, atol=1e-3)
