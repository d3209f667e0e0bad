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


def _blurred_camera(k, sigma, seed=11):
    data = pytest.importorskip("skimage.data")
    truth = data.camera()[200:264, 200:264] / 255.0
    return truth, psf.blur(truth, k, "reflect") + sigma * np.random.default_rng(seed).standard_normal(truth.shape)


def test_oracle_wiener_finds_the_best_balance_of_a_fine_grid():
    k = psf.gaussian(1.5)
    truth, blurred = _blurred_camera(k, 0.01)
    image, balance = B.oracle_wiener(blurred, k, truth)
    found = metrics.psnr(truth, image)
    grid = [metrics.psnr(truth, np.clip(B.wiener(blurred, k, b), 0, 1)) for b in np.logspace(-6, 0, 61)]
    assert found >= max(grid) - 1e-3
    assert found == pytest.approx(metrics.psnr(truth, np.clip(B.wiener(blurred, k, balance), 0, 1)), abs=1e-9)
    periodic, _ = B.oracle_wiener(blurred, k, truth, boundary="periodic")
    assert metrics.psnr(truth, periodic) < found  # a reflect-blurred image rings when taken as periodic


def test_oracle_richardson_lucy_stops_at_the_best_iterate():
    k = psf.box(5)
    truth, blurred = _blurred_camera(k, 0.02)
    image, n = B.oracle_richardson_lucy(blurred, k, truth, max_iterations=60, patience=60)
    runs = [metrics.psnr(truth, np.clip(B.richardson_lucy(np.clip(blurred, 0, None), k, i), 0, 1))
            for i in range(1, 61)]
    assert 1 <= n < 60  # noise makes later iterates worse
    assert n == int(np.argmax(runs)) + 1
    assert metrics.psnr(truth, image) == pytest.approx(max(runs), abs=1e-9)


def test_on_padded_copy_and_oracle_errors():
    x = np.random.default_rng(12).random((24, 24))
    k = psf.box(3)
    np.testing.assert_allclose(B.on_padded_copy(B.wiener, x, k, 0.01, boundary="periodic"), B.wiener(x, k, 0.01))
    image, extra = B.on_padded_copy(lambda q, kk: (q * 2, "info"), x, k)
    assert image.shape == x.shape and extra == "info"
    with pytest.raises(ValueError, match="truth with the image's shape"):
        B.oracle_wiener(x, k, x[:10])
    with pytest.raises(ValueError, match="max_iterations"):
        B.oracle_richardson_lucy(x, k, x, max_iterations=0)
