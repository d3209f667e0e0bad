"""restore.deconvolve on (D, H, W) volumes with a 3-D PSF: quality, shapes, dtypes, errors, colour unaffected."""
from functools import partial

import numpy as np
import pytest
from scipy import ndimage

from minieye import losses, restore
from minieye.restore import metrics, psf
from minieye.restore.volume import volume_noise as _volume_noise

# These tests are about the hand-made prior, so they pin prior='nonlocal'; the default, prior='auto'
# (the learned prior blended in by held-out prediction), is tested in test_restore_learned_prior.py.
deconvolve = partial(restore.deconvolve, prior="nonlocal")


def phantom(shape, seed=0):
    """A few overlapping balls of different brightness on a 0.2 background, values in [0.2, 0.9]."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    v = np.full(shape, 0.2)
    for _ in range(6):
        centre = rng.uniform(0, 1, 3) * np.array(shape)
        radius = rng.uniform(0.15, 0.3) * min(shape)
        inside = sum((g - c) ** 2 for g, c in zip(grid, centre)) < radius ** 2
        v[inside] = rng.uniform(0.3, 0.9)
    return v


@pytest.fixture(scope="module")
def case():
    truth = phantom((12, 24, 24))
    k = psf.gaussian3d((1.0, 1.2, 1.2))
    noisy = ndimage.convolve(truth, k, mode="reflect") + 0.01 * np.random.default_rng(1).standard_normal(truth.shape)
    return truth, k, noisy


def test_gaussian3d_is_a_separable_psf():
    k = psf.gaussian3d((1.0, 2.0, 0.5))
    assert k.shape == (7, 13, 5) and k.sum() == pytest.approx(1.0) and k.ndim == 3
    assert np.unravel_index(k.argmax(), k.shape) == (3, 6, 2)
    # separable: every (kh, kw) slice is a multiple of the middle one
    mid = k[3] / k[3].sum()
    assert np.allclose(k[0] / k[0].sum(), mid)
    assert psf.gaussian3d(1.0, size=5).shape == (5, 5, 5)
    with pytest.raises(ValueError, match="sigma"):
        psf.gaussian3d((1.0, -1.0, 1.0))


def test_volume_deconvolution_beats_blurred(case):
    truth, k, noisy = case
    restored, info = deconvolve(noisy, k, full=True)
    assert restored.shape == noisy.shape and restored.dtype == noisy.dtype
    gain = metrics.psnr(truth, restored) - metrics.psnr(truth, noisy)
    assert gain > 2.0, gain
    assert info.sigma == pytest.approx(0.01, rel=0.3)
    assert any("TotalVariation3D" in label for _, label in info.weights)
    assert 0.0 <= restored.min() and restored.max() <= 1.0  # the auto box


def test_volume_dtypes_and_custom_regularizer(case):
    truth, k, noisy = case
    as_u8 = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
    restored = deconvolve(as_u8, k, iterations=20)
    assert restored.dtype == np.uint8 and restored.shape == truth.shape
    f32 = deconvolve(noisy.astype(np.float32), k, iterations=20,
                     regularizers=[(1e-3, losses.TotalVariation3D(eps=1e-2))], init="blurred")
    assert f32.dtype == np.float32 and np.isfinite(f32).all()
    assert metrics.psnr(truth, f32) > metrics.psnr(truth, noisy)


def test_volume_noise_is_the_median_over_slices():
    rng = np.random.default_rng(3)
    v = 0.5 + 0.02 * rng.standard_normal((9, 32, 32))
    assert _volume_noise(v) == pytest.approx(0.02, rel=0.15)


def test_colour_image_with_2d_kernel_stays_colour():
    rng = np.random.default_rng(4)
    img = np.clip(ndimage.uniform_filter(rng.uniform(size=(24, 24, 3)), (5, 5, 1)) * 1.5 - 0.25, 0, 1)
    k = psf.box(3)
    blurred = psf.blur(img, k)
    restored = deconvolve(blurred, k, iterations=30)
    assert restored.shape == (24, 24, 3)
    assert metrics.psnr(img, restored) > metrics.psnr(img, blurred)


def test_clear_errors(case):
    truth, k, noisy = case
    with pytest.raises(ValueError, match=r"\(D, H, W\) grayscale volume"):
        deconvolve(noisy[0], k)  # a 2-D image with a 3-D kernel
    with pytest.raises(ValueError, match=r"\(D, H, W\) grayscale volume"):
        deconvolve(noisy[None], k)  # a 4-D array
    with pytest.raises(ValueError, match=r"kernel with 2 dimensions \(kh, kw\) or 3 dimensions"):
        deconvolve(noisy, np.ones((3, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"kernel with 2 dimensions \(kh, kw\) or 3 dimensions"):
        deconvolve(noisy, np.ones(5))
    with pytest.raises(ValueError, match="no larger than the volume"):
        deconvolve(noisy[:3], psf.gaussian3d(1.0))  # 7 slices of kernel, 3 of volume
    with pytest.raises(ValueError, match=r"tile an int >= 1 or a \(d, h, w\) triple"):
        deconvolve(noisy, k, tile=(16, 16))  # tiled volumes (tiled.py) take one tile side per axis
