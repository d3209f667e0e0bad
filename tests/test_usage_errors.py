"""A new user's slips at the public entry points, answered by name with expected and actual.

Each case was found by trying the usual mistakes (docs/core.md "Errors a user meets"):
before, a weight of the wrong rank was told to "add the batch axis", conv2d_weight_grad
called its dy "w", a (3, H, W) colour image was blurred across its channels (or refused
with "a kernel no larger than the image"), denoise named its argument "blurred", a Graph
given its inputs as one tuple said only "got 1", a non-node printed a whole array, and
loading a folder gave Python's bare "[Errno 21]".
"""
from __future__ import annotations

import numpy as np
import pytest

import minieye as me
from minieye import functional as F, layers as L, restore
from minieye.restore import psf

X = np.zeros((2, 3, 8, 8), np.float32)


@pytest.mark.parametrize("call, message", [
    (lambda: F.conv2d(X, np.ones((4, 3, 3), np.float32)),
     r"conv2d: expected w with 4 dimensions \(C_out, C_in/groups, kH, kW\); got w.shape == \(4, 3, 3\)$"),
    (lambda: F.conv_transpose2d(X, np.ones((3, 3, 3), np.float32)),
     r"conv_transpose2d: expected w with 4 dimensions \(C_in, C_out/groups, kH, kW\); got w.shape == \(3, 3, 3\)$"),
    (lambda: F.conv1d(X[:, :, 0], np.ones((4, 3), np.float32)),
     r"conv1d: expected w with 3 dimensions \(C_out, C_in/groups, kL\); got w.shape == \(4, 3\)$"),
    (lambda: restore.blur(np.ones(5), psf.box(3)), r"blur: expected image with 2 or 3 dimensions"),
    (lambda: restore.blur(np.ones((8, 8)), np.ones(3)),
     r"blur: expected kernel with 2 dimensions \(kh, kw\); got kernel.shape == \(3,\)$"),
])
def test_a_weight_or_kernel_of_the_wrong_rank_is_named_without_the_batch_axis_hint(call, message):
    with pytest.raises(me.ShapeError, match=message) as info:
        call()
    assert "batch axis" not in str(info.value)


def test_an_image_still_gets_the_batch_axis_hint():
    with pytest.raises(me.ShapeError, match=r"got x.shape == \(3, 8, 8\)\. for one sample add the batch axis: x\[None\]"):
        F.conv2d(X[0], np.ones((4, 3, 3, 3), np.float32))


def test_conv2d_weight_grad_names_dy_not_w():
    with pytest.raises(me.ShapeError, match=r"conv2d_weight_grad: expected dy with 4 dimensions \(N, C, H, W\); "
                                            r"got dy.shape == \(4, 6, 6\)\. for one sample add the batch axis: dy"):
        F.conv2d_weight_grad(X, (4, 3, 3, 3), np.ones((4, 6, 6), np.float32))
    with pytest.raises(TypeError, match=r"conv2d_weight_grad: expected dy of a real numeric dtype; "
                                        r"got dy.dtype == complex64"):
        F.conv2d_weight_grad(X, (4, 3, 3, 3), np.ones((2, 4, 6, 6), np.complex64))
    assert F.conv2d_weight_grad(X, (4, 3, 3, 3), np.ones((2, 4, 6, 6), np.float32)).shape == (4, 3, 3, 3)


@pytest.mark.parametrize("call, name", [
    (lambda image: restore.blur(image, psf.box(3)), "blur"),
    (lambda image: restore.denoise(image, noise_sigma=0.1), "restore.denoise"),
])
def test_a_channels_first_colour_image_is_refused_naming_the_argument(call, name):
    image = np.random.default_rng(0).random((3, 16, 16))
    with pytest.raises(me.ShapeError, match=rf"^{name}: expected a colour image channels-last, \(H, W, C\); "
                                            r"got image.shape == \(3, 16, 16\), which looks channels-first\. "
                                            r"pass np.moveaxis\(image, 0, -1\)$"):
        call(image)


def test_blur_of_a_channels_last_colour_image_is_unchanged():
    image = np.random.default_rng(0).random((16, 16, 3))
    out = restore.blur(image, psf.box(3))
    assert out.shape == image.shape
    np.testing.assert_allclose(out[..., 1], restore.blur(image[..., 1], psf.box(3)))


def _two_input_graph() -> me.Graph:
    graph = me.Graph()
    a, b = graph.input(), graph.input()
    graph.output(graph.add(L.Add(), a, b))
    return graph


def test_a_graph_given_its_inputs_as_one_tuple_says_to_give_them_separately():
    with pytest.raises(me.ShapeError, match=r"forward: expected 2 input array\(s\); got 1\. "
                                            r"give them as separate arguments$"):
        _two_input_graph().forward((X, X))
    y, _ = _two_input_graph().forward(X, X)
    assert y.shape == X.shape


def test_an_array_given_as_a_graph_node_is_cut_in_the_message():
    graph = me.Graph()
    graph.input()
    big = np.zeros((64, 64))
    with pytest.raises(me.ShapeError, match=r"expected input nodes made by this graph's input\(\) or add\(\); "
                                            r"got array\(") as info:
        graph.add(L.ReLU(), big)
    assert len(str(info.value)) < 200
    with pytest.raises(me.ShapeError, match=r"output: expected nodes made by this graph; got array\("):
        graph.output(big)


def test_loading_a_folder_names_it(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"minieye archive '.*' is a folder; give the path of the file saved"):
        me.io.load(tmp_path)


@pytest.mark.parametrize("call, error, message", [
    (lambda: psf.box(2.5), TypeError, r"^box: expected size an int >= 1 or an \(h, w\) pair of them; got size=2.5$"),
    (lambda: psf.box("5"), TypeError, r"^box: expected size an int >= 1.*; got size='5'$"),
    (lambda: psf.box((3,)), ValueError, r"^box: expected size an int >= 1 or an \(h, w\) pair of them; got size=\(3,\)$"),
    (lambda: psf.gaussian("1.5"), TypeError, r"^gaussian: expected sigma a finite number > 0; got sigma='1.5'$"),
    (lambda: psf.gaussian(float("inf")), ValueError, r"^gaussian: expected sigma a finite number > 0; got sigma=inf$"),
    (lambda: psf.gaussian(1.0, size=-5), ValueError, r"^gaussian: expected size a positive integer; got size=-5$"),
    (lambda: psf.gaussian(1e6), ValueError, r"^gaussian: expected the kernel to fit in this machine's memory .*"
                                            r"got the kernel of shape \(6000001, 6000001\)"),
    (lambda: psf.gaussian3d((1.0, "2", 1.0)), TypeError, r"^gaussian3d: expected sigma a finite number > 0; got sigma='2'$"),
    (lambda: psf.disk("3"), TypeError, r"^disk: expected radius a finite number > 0; got radius='3'$"),
    (lambda: psf.motion(9, "30"), TypeError, r"^motion: expected angle a finite number; got angle='30'$"),
    (lambda: psf.motion(-5), ValueError, r"^motion: expected length >= 1; got length=-5$"),
    (lambda: psf.camera_shake(15, seed=-1), ValueError, r"^camera_shake: expected seed a non-negative integer; got seed=-1$"),
    (lambda: restore.blur(np.ones((8, 8)), psf.box(3), normalize="no"), TypeError,
     r"^blur: expected normalize True or False; got normalize='no'$"),
    (lambda: restore.deconvolve(np.ones((8, 8)), psf.box(3), sigma=0.1), TypeError,
     r"^deconvolve: expected keyword arguments among its parameters .*; got sigma=\. did you mean noise_sigma=\?$"),
])
def test_psf_makers_blur_and_deconvolve_name_a_bad_argument(call, error, message):
    """Before: box(2.5) silently gave a 3x3 box, gaussian('1.5') and disk('3') Python's "'>' not supported",
    gaussian(inf) an OverflowError, gaussian(1e6) NumPy's MemoryError, camera_shake(seed=-1) NumPy's bare
    "expected non-negative integer", blur(normalize='no') normalised, deconvolve(sigma=) named deconvolve_tiled."""
    with pytest.raises(error, match=message):
        call()


def test_the_psf_makers_still_take_what_they_took():
    assert psf.box((3, 5)).shape == (3, 5) and psf.box(np.int64(4)).shape == (5, 5)
    assert psf.gaussian(np.float32(1.0), size=np.int64(5)).shape == (5, 5)
    assert psf.gaussian3d((1.0, 2.0, 0.5), size=(3, 5, 3)).shape == (3, 5, 3)
    assert psf.motion(np.float64(9.0), 30).sum() == pytest.approx(1.0)
    assert psf.camera_shake(9, seed=np.int64(3)).shape == (9, 9)
