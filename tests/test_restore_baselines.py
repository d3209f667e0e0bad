"""FFT baselines against scikit-image's wiener and richardson_lucy, and their boundary handling."""
import numpy as np
import pytest

from minieye.restore import baselines as B
from minieye.restore import metrics, psf

restoration = pytest.importorskip("skimage.restoration")

KERNELS = [psf.box(5), psf.motion(7, 30), np.random.default_rng(5).random((5, 3))]


@pytest.mark.parametrize("kernel", KERNELS, ids=["box", "motion", "random"])
def test_wiener_periodic_matches_skimage(kernel):
    x = np.random.default_rng(6).random((31, 28))
    k = kernel / kernel.sum()
    for balance in (0.001, 0.1):
        np.testing.assert_allclose(B.wiener(x, k, balance, boundary="periodic"),
                                   restoration.wiener(x, k, balance, clip=False), atol=1e-10)


@pytest.mark.parametrize("kernel", KERNELS, ids=["box", "motion", "random"])
def test_richardson_lucy_zero_boundary_matches_skimage(kernel):
    x = np.random.default_rng(7).random((27, 30))
    k = kernel / kernel.sum()
    np.testing.assert_allclose(B.richardson_lucy(x, k, 12, boundary="zero"),
                               restoration.richardson_lucy(x, k, num_iter=12, clip=False), atol=1e-10)


def test_inverse_filter_undoes_a_periodic_blur():
    x = np.random.default_rng(8).random((32, 32))
    k = psf.gaussian(0.7)
    blurred = psf.blur(x, k, mode="wrap")
    np.testing.assert_allclose(B.inverse_filter(blurred, k, threshold=1e-6, boundary="periodic"), x, atol=1e-8)


def test_reflect_boundary_beats_periodic_on_a_reflect_blurred_photo():
    data = pytest.importorskip("skimage.data")
    truth = data.camera()[::4, ::4] / 255.0
    k = psf.box(5)
    blurred = psf.blur(truth, k, "reflect") + 0.005 * np.random.default_rng(9).standard_normal(truth.shape)
    reflect = metrics.psnr(truth, np.clip(B.wiener(blurred, k, 0.01), 0, 1))
    periodic = metrics.psnr(truth, np.clip(B.wiener(blurred, k, 0.01, boundary="periodic"), 0, 1))
    assert reflect > periodic + 0.5
    assert reflect > metrics.psnr(truth, blurred) + 1.0
    rl = metrics.psnr(truth, np.clip(B.richardson_lucy(blurred, k, 20), 0, 1))
    assert rl > metrics.psnr(truth, blurred) + 1.0


def test_colour_and_errors():
    x = np.random.default_rng(10).random((20, 20, 3))
    out = B.wiener(x, psf.box(3), 0.01)
    assert out.shape == x.shape
    np.testing.assert_allclose(out[..., 1], B.wiener(x[..., 1], psf.box(3), 0.01))
    with pytest.raises(ValueError, match="no larger than the image"):
        B.wiener(x[:4, :4], psf.box(7))
    with pytest.raises(ValueError, match="boundary"):
        B.richardson_lucy(x, psf.box(3), boundary="periodic")
    with pytest.raises(ValueError, match="NaN"):
        B.wiener(np.full((8, 8), np.nan), psf.box(3))
