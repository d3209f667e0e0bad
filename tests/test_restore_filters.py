"""learn_filter (exact recovery in F.conv2d's convention); blind_deconvolve is in test_restore_blind.py."""
import numpy as np
import pytest

from minieye import functional as F
from minieye import restore


@pytest.fixture(scope="module")
def source():
    data = pytest.importorskip("skimage.data")
    return data.camera()[100:148, 100:148] / 255.0


@pytest.mark.parametrize("name", ["blur", "sharpen", "edge", "random"])
def test_learn_filter_recovers_valid_filters_within_1e8(source, name):
    filters = {
        "blur": np.full((3, 3), 1 / 9),
        "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], float),
        "edge": np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], float),
        "random": np.random.default_rng(0).standard_normal((3, 3)),
    }
    w = filters[name]
    filtered = F.conv2d(source[None, None], w[None, None])[0, 0]  # 'valid' size, cross-correlation
    learned = restore.learn_filter(source, filtered, 3)
    assert np.abs(learned - w).max() < 1e-8


def test_learn_filter_same_size_ignores_the_border_rule(source):
    w = np.random.default_rng(1).standard_normal((5, 3))
    same = F.conv2d(F.pad(source[None, None], (1, 1, 2, 2), mode="reflect"), w[None, None])[0, 0]
    assert same.shape == source.shape
    assert np.abs(restore.learn_filter(source, same, (5, 3)) - w).max() < 1e-8
    colour = np.stack([source, source.T, source[::-1]], axis=-1)
    filtered = np.stack([F.conv2d(colour[..., c][None, None], w[None, None])[0, 0] for c in range(3)], axis=-1)
    assert np.abs(restore.learn_filter(colour, filtered, (5, 3)) - w).max() < 1e-8


@pytest.mark.parametrize("image", ["photo 128x128", "smooth (patch matrix condition ~4e8)"])
def test_learn_filter_is_exact_on_clean_data_whatever_the_conditioning(image):
    """A random 5x5 filter from a clean photo crop (iterating stopped at 2.7e-4) and from a very smooth image."""
    if image.startswith("photo"):
        x = pytest.importorskip("skimage.data").camera()[200:328, 200:328] / 255.0
    else:
        from scipy.ndimage import gaussian_filter
        x = gaussian_filter(np.random.default_rng(1).random((96, 96)), 4)
    w = np.random.default_rng(0).standard_normal((5, 5))
    filtered = F.conv2d(x[None, None], w[None, None])[0, 0]
    assert np.abs(restore.learn_filter(x, filtered, 5) - w).max() < 1e-8


def test_learn_filter_with_noise_degrades_gracefully(source):
    w = np.full((3, 3), 1 / 9)
    filtered = F.conv2d(source[None, None], w[None, None])[0, 0]
    noisy = filtered + 0.01 * np.random.default_rng(2).standard_normal(filtered.shape)
    assert np.abs(restore.learn_filter(source, noisy, 3) - w).max() < 0.05


def test_learn_filter_errors(source):
    with pytest.raises(ValueError, match="filtered of the source's shape"):
        restore.learn_filter(source, source[:10], 3)
    with pytest.raises(ValueError, match="kernel no larger"):
        restore.learn_filter(source[:2, :2], source[:2, :2], 3)
