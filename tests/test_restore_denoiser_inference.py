"""The denoiser's inference-only forward (restore/denoiser_inference.py) equals the ordinary forward."""
import numpy as np
import pytest

import minieye as me
from minieye import layers
from minieye.functional.activation import relu
from minieye.network import Graph
from minieye.restore.denoiser import build_denoiser, load_denoiser
from minieye.restore.denoiser_inference import infer, inference_steps
from minieye.restore.denoiser_unet import build_unet


def _scrambled(net, seed=1):
    """Weights and biases of order one (so that many ReLUs clip and the skips matter)."""
    rng = np.random.default_rng(seed)
    for p in net.parameters():
        p.value[...] = rng.standard_normal(p.value.shape).astype(p.value.dtype) * 0.4
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("build", [lambda d: build_unet(4, down=(1, 1), up=(1, 1), dtype=d),
                                   lambda d: build_denoiser(4, 5, dtype=d)], ids=["unet", "dncnn"])
def test_inference_equals_the_forward_bit_for_bit(build, dtype):
    net = _scrambled(build(dtype))
    x = np.random.default_rng(0).standard_normal((2, 2, 20, 24)).astype(dtype)
    kept = x.copy()
    out = infer(net, x)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, net(x))
    np.testing.assert_array_equal(x, kept)  # the caller's input is never overwritten


@pytest.mark.parametrize("algorithm", ["auto", "gemm", "direct"])
def test_buffers_kept_between_calls_give_the_forward_every_time(algorithm):
    """Convolutions written into arrays of earlier calls (any algorithm); the output is never one of them."""
    net = _scrambled(build_unet(4, down=(1, 1), up=(1, 1), dtype="float64"))
    rng = np.random.default_rng(5)
    inputs = [rng.standard_normal((1, 2, 16, 20)), rng.standard_normal((1, 2, 16, 20)), rng.standard_normal((2, 2, 8, 12))]
    buffers: dict = {}
    with me.options(conv_algorithm=algorithm):
        outputs = [infer(net, x, buffers) for x in inputs + inputs]
        expected = [net(x) for x in inputs + inputs]
    assert buffers  # arrays were kept
    kept = {id(a) for free in buffers.values() for a in free}
    for got, want in zip(outputs, expected):
        np.testing.assert_array_equal(got, want)
        assert id(got) not in kept


def test_shipped_denoiser_inference_equals_its_forward():
    net = load_denoiser()
    x = np.random.default_rng(2).random((1, 2, 40, 44)).astype(np.float32)
    buffers: dict = {}
    with me.options(threads=1):
        np.testing.assert_array_equal(infer(net, x), net(x))
        for _ in range(2):
            np.testing.assert_array_equal(infer(net, x, buffers), net(x))


def test_values_read_twice_are_not_overwritten():
    """A ReLU or Add whose input another node still reads must not run in place."""
    g = Graph()
    x = g.input()
    c = g.add(layers.Conv2D(2, 3, 3, padding=1, dtype="float64", seed=0), x)
    r = g.add(layers.ReLU(), c)               # c is read again below: not in place
    s = g.add(layers.Add(), c, r)             # c is dead after this: in place into c
    t = g.add(layers.Add(), s, s)             # the same value twice: not in place
    g.output(g.add(layers.Conv2D(3, 1, 3, padding=1, dtype="float64", seed=1), g.add(layers.ReLU(), t)))
    _scrambled(g)
    data = np.random.default_rng(3).standard_normal((1, 2, 9, 7))
    np.testing.assert_array_equal(infer(g, data), g(data))


def test_steps_of_a_graph_follow_its_structure():
    net = build_unet(4, down=(1,), up=(0,))
    steps, output = inference_steps(net)
    assert steps[0].layer is None and output == len(steps) - 1
    assert all(i < index for index, step in enumerate(steps) for i in step.inputs)
    with pytest.raises(ValueError, match="Sequential or Graph"):
        inference_steps(layers.ReLU())


def test_relu_into_out_equals_relu():
    x = np.random.default_rng(4).standard_normal((3, 50))
    expected = relu(x)
    assert relu(x, out=x) is x
    np.testing.assert_array_equal(x, expected)


def test_a_weight_of_the_wrong_shape_is_refused_with_buffers_too():
    """The pooled convolutions read the layer's Parameters as its forward does: checked (the kernels
    trust shapes, and a weight with more input channels than x would read past x)."""
    net = build_denoiser(3, 4, dtype="float64")
    net.layers[2].weight.value = np.zeros((4, 6, 3, 3))
    x = np.zeros((1, 2, 12, 12))
    with pytest.raises(ValueError, match="weight.value of shape \\(4, 4, 3, 3\\)"):
        net(x)
    with pytest.raises(ValueError, match="weight.value of shape \\(4, 4, 3, 3\\)"):
        infer(net, x, {})


def test_a_value_viewed_by_a_live_reshape_is_neither_overwritten_nor_reused():
    """A Reshape returns a view: the array under it must stay as it is while the view lives (an in-place ReLU
    of the convolution changed the view; with buffers the next convolution was handed that array as its out)."""
    g = Graph()
    x = g.input()
    c = g.add(layers.Conv2D(2, 3, 3, padding=1, dtype="float64", seed=0), x)
    v = g.add(layers.Reshape((3, 8, 10)), c)
    r = g.add(layers.ReLU(), c)  # c's last reader, while v (a view of c) is read below
    c2 = g.add(layers.Conv2D(3, 3, 3, padding=1, dtype="float64", seed=1), g.add(layers.Add(), v, r))
    g.output(g.add(layers.Conv2D(3, 1, 3, padding=1, dtype="float64", seed=2), g.add(layers.Reshape((3, 8, 10)), c2)))
    _scrambled(g)
    data = np.random.default_rng(6).standard_normal((1, 2, 8, 10))
    buffers: dict = {}
    for _ in range(2):
        np.testing.assert_array_equal(infer(g, data, buffers), g(data))
    np.testing.assert_array_equal(infer(g, data), g(data))


def test_an_output_that_views_a_convolution_is_not_overwritten_by_the_next_call():
    from minieye.network import Sequential
    net = _scrambled(Sequential(layers.Conv2D(2, 3, 3, padding=1, dtype="float64", seed=0), layers.ReLU(),
                                layers.Conv2D(3, 3, 3, padding=1, dtype="float64", seed=1), layers.Reshape((3, 80))))
    rng = np.random.default_rng(8)
    first, second = rng.standard_normal((1, 2, 8, 10)), rng.standard_normal((1, 2, 8, 10))
    buffers: dict = {}
    out = infer(net, first, buffers)
    kept = out.copy()
    np.testing.assert_array_equal(infer(net, second, buffers), net(second))
    np.testing.assert_array_equal(out, kept)  # the caller's first result, untouched by the second call
