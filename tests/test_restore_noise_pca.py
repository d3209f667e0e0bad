"""The weak-textured-patch noise estimate (restore.estimate_noise(method='pca'), denoise's estimate)."""
import numpy as np
import pytest
from scipy import ndimage

from minieye import restore
from minieye.restore.denoiser import estimate_denoise_sigma


def texture(seed: int, scale: float) -> np.ndarray:
    """A fine band-limited random texture with stripes, contrast about 0.2, with no flat area."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:192, :192] / 192
    field = ndimage.gaussian_filter(rng.standard_normal((192, 192)), scale)
    return 0.5 + 0.1 * field / field.std() + 0.05 * np.sin(40 * xx + 10 * yy)


@pytest.mark.parametrize("size", [64, 256])
def test_unbiased_on_white_noise(size):
    ratios = [restore.estimate_noise(0.4 + 0.03 * np.random.default_rng(s).standard_normal((size, size)), "pca") / 0.03
              for s in range(3)]
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.03), ratios


@pytest.mark.parametrize("sigma", [0.005, 0.01, 0.03])
@pytest.mark.parametrize("scale", [0.8, 1.2])
def test_fine_textures_read_close_to_the_true_sigma(sigma, scale):
    clean = texture(int(100 * scale), scale)
    noisy = clean + sigma * np.random.default_rng(7).standard_normal(clean.shape)
    pca, haar = restore.estimate_noise(noisy, "pca"), restore.estimate_noise(noisy)
    assert pca == pytest.approx(sigma, rel=0.3), (pca, haar)  # Haar: up to 6.8x here
    assert abs(np.log(pca / sigma)) < abs(np.log(haar / sigma)), (pca, haar)  # the Haar band reads high here
    assert estimate_denoise_sigma(noisy) == pca


def test_colour_small_images_and_errors():
    rng = np.random.default_rng(3)
    colour = 0.5 + np.stack([0.01, 0.02, 0.03]) * rng.standard_normal((64, 64, 3))
    assert restore.estimate_noise(colour, "pca") == pytest.approx(0.02, rel=0.05)
    tiny = 0.5 + 0.02 * rng.standard_normal((12, 40))
    assert estimate_denoise_sigma(tiny) == restore.estimate_noise(tiny)  # too small for patches: Haar
    with pytest.raises(ValueError, match="at least 16 pixels"):
        restore.estimate_noise(tiny, "pca")
