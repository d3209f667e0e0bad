"""Conv2D / ConvTranspose2D and F.conv* against PyTorch (skipped when torch is absent)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minieye as me  # noqa: E402
import minieye.functional as F  # noqa: E402
from minieye import layers  # noqa: E402

# (in, out, kernel, stride, padding, output_padding (transposed only), dilation, groups, input hw)
CONFIGS = [
    (3, 4, 3, 1, 1, 0, 1, 1, (8, 7)),
    (4, 6, (3, 2), (2, 1), (1, 0), (1, 0), (1, 2), 2, (9, 8)),
    (4, 4, 3, 1, 2, 0, 2, 4, (7, 9)),        # depthwise, dilated
    (1, 1, 5, 1, 2, 0, 1, 1, (16, 12)),       # single channel, deblurring-like
    (8, 16, 3, 2, 1, 1, 1, 1, (10, 10)),      # GEMM path, strided
    (2, 3, 1, 3, 0, 2, 1, 1, (5, 7)),         # 1x1 kernel, stride 3
    (6, 6, 4, 2, 1, 0, 1, 3, (6, 6)),
    (2, 3, 3, 1, 1, 1, 2, 1, (6, 5)),         # output_padding >= stride (allowed: < dilation)
    (1, 1, 1, 1, 0, (0, 1), (1, 2), 1, (2, 2)),
]


def _torch_grads(x, layer, dy, transposed):
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.weight.value, requires_grad=True)
    bt = torch.tensor(layer.bias.value, requires_grad=True)
    g = layer.geometry
    common = dict(stride=layer.stride, padding=(g.pad_h, g.pad_w), dilation=layer.dilation, groups=layer.groups)
    if transposed:
        yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, output_padding=layer.output_padding, **common)
    else:
        yt = torch.nn.functional.conv2d(xt, wt, bt, **common)
    yt.backward(torch.tensor(dy))
    return yt.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("transposed", [False, True], ids=["Conv2D", "ConvTranspose2D"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", CONFIGS)
def test_layer_matches_torch(config, dtype, transposed):
    c_in, c_out, k, s, p, op, d, g, hw = config
    rng = np.random.default_rng(7)
    if transposed:
        layer = layers.ConvTranspose2D(c_in, c_out, k, stride=s, padding=p, output_padding=op, dilation=d,
                                       groups=g, dtype=dtype, rng=rng)
    else:
        layer = layers.Conv2D(c_in, c_out, k, stride=s, padding=p, dilation=d, groups=g, dtype=dtype, rng=rng)
    layer.bias.value[:] = rng.standard_normal(c_out)
    x = rng.standard_normal((3, c_in) + hw).astype(dtype)
    assert_layer_matches_torch(layer, x, rng, lambda dy: _torch_grads(x, layer, dy, transposed))


def assert_layer_matches_torch(layer, x, rng, torch_grads):
    """Forward and all gradients of ``layer`` at ``x`` equal PyTorch's ``torch_grads(dy)``
    (output, dx, dw, db), within float32 or float64 rounding."""
    dtype = x.dtype
    y, backward = layer.forward(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    deltas = me.DeltaSet()
    dx = backward(dy, deltas)
    y_t, dx_t, dw_t, db_t = torch_grads(dy)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    assert y.dtype == dx.dtype == deltas[layer.weight].dtype == dtype
    np.testing.assert_allclose(y, y_t, **tol)
    np.testing.assert_allclose(dx, dx_t, **tol)
    np.testing.assert_allclose(deltas[layer.weight], dw_t, **tol)
    np.testing.assert_allclose(deltas[layer.bias], db_t, **tol)


def test_functional_matches_torch_on_a_large_image():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 40, 33)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy()
    np.testing.assert_allclose(F.conv2d(x, w, padding=1), want, rtol=1e-4, atol=1e-4)
    back = torch.nn.functional.conv_transpose2d(torch.tensor(want), torch.tensor(w), padding=1).numpy()
    np.testing.assert_allclose(F.conv_transpose2d(want, w, padding=1), back, rtol=1e-3, atol=1e-3)


def test_frozen_weight_gets_no_gradient_but_input_does():
    rng = np.random.default_rng(1)
    for layer in (layers.Conv2D(2, 3, 3, padding=1, rng=rng), layers.ConvTranspose2D(2, 3, 3, stride=2, rng=rng)):
        layer.weight.frozen = True
        y, backward = layer.forward(rng.standard_normal((1, 2, 6, 6)))
        deltas = me.DeltaSet()
        dx = backward(np.ones_like(y), deltas)
        assert layer.weight not in deltas and layer.bias in deltas
        assert dx.shape == (1, 2, 6, 6) and np.abs(dx).sum() > 0


@pytest.mark.parametrize("transposed", [False, True])
def test_unneeded_input_gradient_is_skipped(transposed):
    """Inside input_grad(False) backward returns None but the parameter gradients are unchanged."""
    from minieye.core import input_grad
    rng = np.random.default_rng(2)
    for c_in, c_out, op, d in ((2, 3, 0, 1), (8, 16, 1, 2)):  # direct and GEMM paths; op >= stride case
        if transposed:
            layer = layers.ConvTranspose2D(c_in, c_out, 3, padding=1, output_padding=op, dilation=d, dtype="float64",
                                           rng=rng)
        else:
            layer = layers.Conv2D(c_in, c_out, 3, padding=1, dilation=d, dtype="float64", rng=rng)
        x = rng.standard_normal((2, c_in, 7, 6))
        y, backward = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        full, skipped = me.DeltaSet(), me.DeltaSet()
        dx = backward(dy, full)
        with input_grad(False):
            assert backward(dy, skipped) is None
        assert dx.shape == x.shape
        for p in layer.parameters():
            np.testing.assert_allclose(skipped[p], full[p], rtol=1e-12, atol=1e-12)
