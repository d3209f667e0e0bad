"""Blur kernels, metrics and noise estimation against SciPy / scikit-image."""
import numpy as np
import pytest

from minieye.restore import estimate_noise, metrics, psf

ndi = pytest.importorskip("scipy.ndimage")
skm = pytest.importorskip("skimage.metrics")


@pytest.mark.parametrize("kernel", [psf.box(5), psf.box((3, 5)), psf.gaussian(1.2), psf.disk(2.5),
                                    psf.motion(7, 30), psf.motion(6, 90), psf.motion(5, 0)])
def test_kernels_are_normalised_odd_and_non_negative(kernel):
    assert kernel.ndim == 2 and kernel.shape[0] % 2 == 1 and kernel.shape[1] % 2 == 1
    assert kernel.min() >= 0 and abs(kernel.sum() - 1) < 1e-12


def test_motion_kernel_direction():
    horizontal, vertical = psf.motion(5, 0), psf.motion(5, 90)
    assert horizontal.shape == (1, 5) and vertical.shape == (5, 1)
    diagonal = psf.motion(9, 45)  # rows grow downwards: 45 degrees runs from bottom-left to top-right
    assert diagonal[0, -1] > 0 and diagonal[-1, 0] > 0 and diagonal[0, 0] == 0


def test_gaussian_and_disk_are_symmetric():
    for k in (psf.gaussian(1.5), psf.disk(3)):
        np.testing.assert_allclose(k, k.T)
        np.testing.assert_allclose(k, k[::-1, ::-1])


@pytest.mark.parametrize("mode", ["reflect", "mirror", "wrap", "constant", "nearest"])
def test_blur_matches_scipy_convolve(mode):
    rng = np.random.default_rng(0)
    x = rng.random((19, 23))
    for k in (psf.motion(7, 30), rng.random((3, 5)), rng.random((4, 3))):  # the last is even: padded at the end
        np.testing.assert_allclose(psf.blur(x, k, mode), ndi.convolve(x, k / k.sum(), mode=mode), atol=1e-12)


def test_blur_colour_is_per_channel():
    x = np.random.default_rng(1).random((12, 14, 3))
    k = psf.gaussian(1.0)
    out = psf.blur(x, k)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], psf.blur(x[..., c], k))


def test_load_kernel_from_npy_and_png(tmp_path):
    k = psf.motion(7, 20)
    np.save(tmp_path / "k.npy", k * 3)
    np.testing.assert_allclose(psf.load_kernel(tmp_path / "k.npy"), k)
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(np.round(k / k.max() * 255).astype(np.uint8)).save(tmp_path / "k.png")
    loaded = psf.load_kernel(tmp_path / "k.png")
    assert loaded.shape == k.shape and np.abs(loaded - k).max() < 0.01


def test_bad_kernels_are_refused(tmp_path):
    with pytest.raises(ValueError, match="positive sum"):
        psf.normalize_kernel(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="kernel with 2 dimensions"):
        psf.normalize_kernel(np.ones(3))
    with pytest.raises(ValueError, match="existing file"):
        psf.load_kernel(tmp_path / "missing.npy")


def test_psnr_and_ssim_match_skimage():
    rng = np.random.default_rng(2)
    a = rng.random((40, 37))
    b = np.clip(a + 0.05 * rng.standard_normal(a.shape), 0, 1)
    assert metrics.psnr(a, b) == pytest.approx(skm.peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-10)
    ours = metrics.ssim(a, b, data_range=1.0)
    ref = skm.structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
    assert ours == pytest.approx(ref, abs=1e-9)
    ours = metrics.ssim(a, b, 1.0, gaussian_weights=False, win_size=7, use_sample_covariance=True)
    assert ours == pytest.approx(skm.structural_similarity(a, b, data_range=1.0), abs=1e-9)
    colour_a, colour_b = rng.random((20, 20, 3)), rng.random((20, 20, 3))
    assert metrics.ssim(colour_a, colour_b, 1.0) == pytest.approx(
        skm.structural_similarity(colour_a, colour_b, data_range=1.0, channel_axis=-1, gaussian_weights=True,
                                  sigma=1.5, use_sample_covariance=False), abs=1e-9)


def test_metric_edge_cases():
    a = np.random.default_rng(3).random((16, 16))
    assert metrics.psnr(a, a) == float("inf")
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.psnr((a * 255).astype(np.uint8), (a * 255).astype(np.uint8) // 2) < 20
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(a, a[:-1])


@pytest.mark.parametrize("method", ["mad", "immerkaer", "pca"])
@pytest.mark.parametrize("sigma", [0.005, 0.02, 0.05])
def test_noise_estimate_on_blurred_photo(method, sigma):
    data = pytest.importorskip("skimage.data")
    clean = psf.blur(data.camera()[:256, :256] / 255.0, psf.gaussian(1.0))
    noisy = clean + sigma * np.random.default_rng(4).standard_normal(clean.shape)
    assert estimate_noise(noisy, method) == pytest.approx(sigma, rel=0.15)
    assert estimate_noise(clean, method) < 0.003  # a smooth image is not mistaken for noise


def test_noise_estimate_errors():
    with pytest.raises(ValueError, match="NaN"):
        estimate_noise(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="method"):
        estimate_noise(np.zeros((8, 8)), "guess")


def test_blur_without_normalising_applies_any_kernel():
    x = np.random.default_rng(5).random((15, 17))
    edge = np.array([[-1.0, -1, -1], [-1, 8, -1], [-1, -1, -1]])  # sums to 0: not a PSF
    np.testing.assert_allclose(psf.blur(x, edge, normalize=False), ndi.convolve(x, edge, mode="reflect"), atol=1e-12)
    scaled = 3.0 * psf.box(3)
    np.testing.assert_allclose(psf.blur(x, scaled, normalize=False), 3.0 * psf.blur(x, scaled), atol=1e-12)
    with pytest.raises(ValueError, match="positive sum"):
        psf.blur(x, edge)  # the default still insists on a PSF
    with pytest.raises(ValueError, match=r"kernel no larger than the image.*\(5, 5\).*\(3, 3\)"):
        psf.blur(np.zeros((3, 3)), np.ones((5, 5)))


def test_transfer_function_refuses_a_kernel_larger_than_the_grid():
    from minieye.restore import transfer_function
    with pytest.raises(ValueError, match=r"transfer_function.*\(5, 5\).*\(3, 3\)"):
        transfer_function(np.ones((5, 5)), (3, 3))
    h = transfer_function(psf.box(3), (8, 8))
    assert h.shape == (8, 5) and abs(h[0, 0] - 1) < 1e-12


def test_camera_shake_is_a_seeded_centred_psf_filling_its_frame():
    for size in (9, 17, 25):
        k = psf.camera_shake(size, seed=3)
        assert k.shape == (size, size) and k.min() >= 0 and k.sum() == pytest.approx(1.0)
        rows, cols = np.indices(k.shape)
        assert (rows * k).sum() == pytest.approx(size // 2, abs=1e-9)  # centroid at the centre
        assert (cols * k).sum() == pytest.approx(size // 2, abs=1e-9)
        assert not k[0].any() and not k[:, -1].any()  # one empty pixel at the frame's edge ...
        assert k[1].any() or k[-2].any() or k[:, 1].any() or k[:, -2].any()  # ... and no more
        assert 2 * size < np.count_nonzero(k > 0.01 * k.max()) < size * size / 2  # a path, not a blob or a dot
    np.testing.assert_array_equal(psf.camera_shake(15, seed=1), psf.camera_shake(15, seed=1))
    assert np.abs(psf.camera_shake(15, seed=1) - psf.camera_shake(15, seed=2)).sum() > 0.5
    with pytest.raises(ValueError, match="camera_shake.*size >= 3"):
        psf.camera_shake(2)
