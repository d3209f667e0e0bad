"""The transposed convolution as one 3x3 convolution into phase channels (``kernels.conv_transpose_phases``)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minieye as me
from minieye import layers
from minieye.functional import conv as F
from minieye.kernels import conv_transpose_phases as kphases
from minieye.kernels.conv_geometry import Geometry, conv_transpose_output_size
from minieye.testing import check_layer
from tests import naive_conv

# (kernel, stride, padding, output_padding, dilation) per axis pair; every one fits a 3x3 window of phases
FITTING = [((4, 4), (2, 2), (1, 1), (0, 0), (1, 1)),   # bench_kernels' row
           ((3, 3), (2, 2), (1, 1), (1, 1), (1, 1)),
           ((5, 5), (2, 2), (2, 2), (1, 1), (1, 1)),
           ((2, 2), (2, 2), (0, 0), (0, 0), (1, 1)),   # the U-Net's samplers
           ((3, 5), (1, 2), (1, 2), (0, 1), (1, 1)),
           ((3, 3), (2, 2), (2, 2), (0, 1), (2, 2)),
           ((4, 4), (2, 2), (0, 0), (0, 0), (1, 1)),
           ((1, 1), (3, 3), (0, 0), (2, 2), (1, 1)),
           ((6, 6), (3, 3), (2, 2), (0, 0), (1, 1)),
           ((4, 2), (2, 1), (1, 0), (0, 0), (1, 1))]
NOT_FITTING = [((6, 6), (3, 3), (1, 1), (0, 0), (1, 1)),   # offsets -1..1 plus the row past them
               ((7, 7), (2, 2), (3, 3), (0, 0), (1, 1)),   # 4 offsets per axis
               ((3, 3), (1, 1), (0, 0), (0, 0), (2, 2)),   # dilation 2 at stride 1: offsets 0, -2, -4
               ((4, 4), (2, 2), (0, 0), (0, 0), (2, 2)),   # every tap in phase 0, offsets 0..-3
               ((4, 2), (2, 1), (1, 0), (1, 0), (1, 1))]   # output_padding: a row past the "same" convolution


def _problem(rng, geometry, n=2, c_in=3, c_out=4, size=(5, 6)):
    kernel, stride, padding, output_padding, dilation = geometry
    out = tuple(conv_transpose_output_size(m, k, s, p, op, d)
                for m, k, s, p, op, d in zip(size, kernel, stride, padding, output_padding, dilation))
    x = rng.standard_normal((n, c_in) + size)
    w = rng.standard_normal((c_in, c_out) + kernel)
    dy = rng.standard_normal((n, c_out) + out)
    return x, w, rng.standard_normal(c_out), dy, Geometry(stride, padding, dilation, 1)


@pytest.mark.parametrize("geometry", FITTING, ids=str)
@pytest.mark.parametrize("algorithm", ["auto", "gemm", "winograd4"])
def test_phase_convolution_is_the_transposed_convolution(geometry, algorithm):
    """Forward (with the bias), input and weight gradient in float64 against the naive loops, the 3x3
    convolution run by each algorithm."""
    rng = np.random.default_rng(len(str(geometry)))
    x, w, b, dy, g = _problem(rng, geometry)
    _, stride, padding, output_padding, dilation = geometry
    want = naive_conv.conv_transpose(x, w, b, stride, padding, output_padding, dilation)
    with me.options(conv_algorithm=algorithm):
        phases = kphases.fit(x.shape, w.shape, g, dy.shape[2:])
        assert phases is not None and algorithm in ("auto", phases.plan.algorithm.value)
        y = kphases.forward(x, w, phases, dy.shape[2:], b)
        dx, dw, db = kphases.backward(dy, w, x, phases, need_db=True)
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-10)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=0, atol=1e-10)
    # the adjoint identities: <dy, T(x)> = <T^T(dy), x>, and dw the gradient of <dy, T_w(x)> in w
    np.testing.assert_allclose(dx, naive_conv.conv(dy, w, None, stride, padding, dilation), rtol=0, atol=1e-10)
    want_dw = naive_conv.conv_grad_weight(dy, x, w.shape[2:], stride, padding, dilation)
    np.testing.assert_allclose(dw, want_dw, rtol=0, atol=1e-10)


@pytest.mark.parametrize("geometry", NOT_FITTING, ids=str)
def test_no_phases_where_the_taps_do_not_fit_three_rows(geometry):
    x, w, _, dy, g = _problem(np.random.default_rng(0), geometry)
    assert kphases.fit(x.shape, w.shape, g, dy.shape[2:]) is None
    with me.options(conv_transpose_algorithm="phases"):
        layer = layers.ConvTranspose2D(3, 4, geometry[0], stride=geometry[1], padding=geometry[2],
                                       output_padding=geometry[3], dilation=geometry[4], dtype=np.float64, seed=0,
                                       name="up")
        with pytest.raises(ValueError, match="up.*conv_transpose_algorithm='phases'.*within 3 input rows"):
            layer(x)


@given(k=st.integers(1, 6), s=st.integers(1, 3), p=st.integers(0, 3), d=st.integers(1, 2), size=st.integers(1, 6),
       extra=st.integers(0, 2))
@settings(deadline=None, max_examples=60)
def test_axis_rule_reproduces_every_output_row(k, s, p, d, size, extra):
    """Along one axis: each tap has one phase and one offset, and where a padding fits, the 3x3 rows of the
    phases read x exactly where the transposed convolution does."""
    op = min(extra, max(s, d) - 1)
    out = conv_transpose_output_size(size, k, s, p, op, d)
    if out < 1:
        return
    taps = kphases.axis_taps(k, s, p, d)
    assert sorted(i for _, i, _ in taps) == list(range(k))
    for r, i, e in taps:  # tap i writes rows q*s + r from x[q + e]: Y = a*s - p + i*d
        assert (r + p - i * d) == e * s and 0 <= r < s
    pad = kphases._axis_padding(taps, size, out, s)
    if pad is None:
        return
    rows = size + 2 * pad - 2
    assert rows * s >= out and all(0 <= e + pad <= 2 for _, _, e in taps)


def test_auto_takes_phases_for_many_taps_per_output_only():
    """"auto": the 4x4 stride-2 up-sampler with many channels by phases; 3x3 and 2x2 at stride 2 (2.25 and 1
    taps per output, no fewer multiplications), few channels and 'adjoint' as the adjoint convolution."""
    def chosen(c_in, c_out, k, stride, padding, size=(16, 16), **knobs):
        out = tuple(conv_transpose_output_size(m, k, stride, padding) for m in size)
        with me.options(**knobs):
            phases = kphases.choose((8, c_in) + size, (c_in, c_out, k, k), Geometry((stride,) * 2, (padding,) * 2),
                                    out, "test")
        return None if phases is None else phases.plan.algorithm.name
    assert chosen(32, 16, 4, 2, 1) == "WINOGRAD4"
    assert chosen(32, 16, 5, 2, 2) == "WINOGRAD4"
    assert chosen(32, 16, 3, 2, 1) is None and chosen(48, 24, 2, 2, 0) is None
    assert chosen(4, 2, 4, 2, 1) is None  # the phase convolution would not run by Winograd
    assert chosen(32, 16, 4, 2, 1, conv_transpose_algorithm="adjoint") is None
    assert chosen(4, 2, 4, 2, 1, conv_transpose_algorithm="phases") not in (None, "WINOGRAD4")


def test_float32_phases_within_winograd_rounding_of_the_direct_result():
    """The bench row's shape at realistic magnitudes: each pass within 2e-5 of the largest value, as
    F(4x4, 3x3) (tests/test_conv_winograd4.py); the auto choice takes the phases here."""
    rng = np.random.default_rng(3)
    x = np.maximum(rng.standard_normal((4, 32, 16, 16)), 0)
    layer64 = layers.ConvTranspose2D(32, 16, 4, stride=2, padding=1, dtype=np.float64, seed=1)
    layer64.bias.value[:] = rng.standard_normal(16)
    layer32 = layers.ConvTranspose2D(32, 16, 4, stride=2, padding=1, dtype=np.float32, seed=1)
    layer32.weight.value[:], layer32.bias.value[:] = layer64.weight.value, layer64.bias.value
    dy = rng.standard_normal((4, 16, 32, 32))
    results = []
    for layer, algorithm in ((layer64, "adjoint"), (layer32, "auto")):
        with me.options(conv_transpose_algorithm=algorithm):
            y, backward = layer.forward(x.astype(layer.dtype))
            deltas = me.DeltaSet()
            dx = backward(dy.astype(layer.dtype), deltas)
            results.append((y, dx, deltas[layer.weight], deltas[layer.bias]))
    assert kphases.choose(x.shape, layer32.weight.value.shape, layer32.geometry, (32, 32), "test") is not None
    for name, got, want in zip(("y", "dx", "dw", "db"), results[1], results[0]):
        assert got.dtype == np.float32
        error = np.abs(got - want).max() / np.abs(want).max()
        assert error < 2e-5, f"{name}: {error:.1e} of the largest value"


@pytest.mark.parametrize("algorithm", ["auto", "winograd4"])
@pytest.mark.parametrize("geometry", [FITTING[0], FITTING[2], FITTING[4]], ids=str)
def test_layer_gradients_by_phases(algorithm, geometry):
    """The harness's float64 checks on ConvTranspose2D with the phases forced (the 3x3 convolution by
    "auto", few channels: direct or small, and by F(4x4, 3x3))."""
    kernel, stride, padding, output_padding, dilation = geometry
    rng = np.random.default_rng(5)
    layer = layers.ConvTranspose2D(3, 2, kernel, stride=stride, padding=padding, output_padding=output_padding,
                                   dilation=dilation, dtype=np.float64, rng=rng)
    layer.bias.value[:] = rng.standard_normal(2)
    with me.options(conv_transpose_algorithm="phases", conv_algorithm=algorithm):
        check_layer(layer, rng.standard_normal((2, 3, 5, 4)), rng=7)


def test_functional_conv_transpose2d_takes_the_same_road():
    rng = np.random.default_rng(9)
    x, w, b = rng.standard_normal((2, 32, 16, 16)), rng.standard_normal((32, 16, 4, 4)) * 0.1, rng.standard_normal(16)
    with me.options(conv_transpose_algorithm="adjoint"):
        want = F.conv_transpose2d(x, w, b, stride=2, padding=1)
    with me.options(conv_transpose_algorithm="phases"):
        got = F.conv_transpose2d(x, w, b, stride=2, padding=1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * np.abs(want).max())


def test_threaded_copies_and_convolution_match_one_thread():
    """Two threads (the 3x3 convolution split by images) give the one-thread result."""
    rng = np.random.default_rng(11)
    x, w, b, dy, g = _problem(rng, FITTING[0], n=3, c_in=16, c_out=8, size=(16, 16))
    results = []
    for threads in (1, 2):
        with me.options(threads=threads, conv_gemm_parallel_min_work=0, conv_algorithm="winograd4"):
            phases = kphases.fit(x.shape, w.shape, g, dy.shape[2:])
            results.append((kphases.forward(x, w, phases, dy.shape[2:], b),
                            *kphases.backward(dy, w, x, phases, need_db=True)))
    for one, two in zip(*results):
        np.testing.assert_allclose(two, one, rtol=0, atol=1e-12)


def test_denoiser_inference_takes_the_phases_as_the_layer_does(monkeypatch):
    """``restore.denoiser_inference`` writes a transposed layer's phases into its kept buffers: the U-Net's
    2x2 stride-2 samplers with the phases forced give the network's forward, bit for bit."""
    from minieye.restore.denoiser_inference import infer
    from minieye.restore.denoiser_unet import build_unet
    net = build_unet(4, down=(1, 1), up=(1, 1), dtype="float64")
    rng = np.random.default_rng(2)
    for p in net.parameters():
        p.value[...] = rng.standard_normal(p.value.shape) * 0.4
    calls = []
    phases_forward = kphases.forward
    monkeypatch.setattr(kphases, "forward", lambda *a, **k: calls.append(k.get("out")) or phases_forward(*a, **k))
    x, buffers = rng.standard_normal((1, 2, 16, 20)), {}
    with me.options(conv_transpose_algorithm="phases"):
        got = [infer(net, x, buffers) for _ in range(2)]
        want = net(x)
    assert any(out is not None for out in calls) and any(out is None for out in calls)  # inference, layer
    for value in got:
        np.testing.assert_array_equal(value, want)


@pytest.mark.parametrize("need_dx, need_dw, need_db", [(True, False, True), (False, True, False),
                                                     (False, False, True), (False, False, False)])
def test_backward_computes_only_what_is_asked(need_dx, need_dw, need_db):
    x, w, _, dy, g = _problem(np.random.default_rng(4), FITTING[0], c_in=16, c_out=8, size=(16, 16))
    with me.options(conv_algorithm="winograd4"):
        phases = kphases.fit(x.shape, w.shape, g, dy.shape[2:])
        every = kphases.backward(dy, w, x, phases, need_db=True)
        got = kphases.backward(dy, w, x, phases, need_dx=need_dx, need_dw=need_dw, need_db=need_db)
    for asked, value, full in zip((need_dx, need_dw, need_db), got, every):
        if asked:
            np.testing.assert_allclose(value, full, rtol=0, atol=1e-12 * np.abs(full).max())
        else:
            assert value is None
