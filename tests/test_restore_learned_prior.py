"""deconvolve(prior='learned') internals and prior='auto' (the held-out choice between learned and hand-made)."""
import numpy as np
import pytest

from minieye import restore
from minieye.restore import learned_prior, psf
from minieye.restore.deconvolve import central_choice

data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def scene():
    """A held-out image (not in the tuning corpus), grey, in [0, 1]: 72x72, so that 'valid' crops are 64x64 or less."""
    return data.moon()[200:272, 200:272] / 255.0


def test_hidden_pixels_never_reach_the_estimate(scene):
    k = psf.motion(5, 45)
    y = restore.blur(scene[:40, :40], k, mode="reflect") + 0.01 * np.random.default_rng(0).standard_normal((40, 40))
    hidden = np.random.default_rng(1).random(y.shape) < 0.2
    changed = np.where(hidden, 1.0 - y, y)  # the hidden pixels' values, replaced
    first, prediction = learned_prior.hqs(y, k, 0.01, (0.0, 1.0), iterations=4, hidden=hidden)
    second, _ = learned_prior.hqs(changed, k, 0.01, (0.0, 1.0), iterations=4, hidden=hidden)
    np.testing.assert_allclose(first, second, atol=1e-9)
    visible, _ = learned_prior.hqs(changed, k, 0.01, (0.0, 1.0), iterations=4)
    assert np.abs(visible - first).max() > 0.05  # without the mask the wrong values do matter
    assert prediction.shape == y.shape and np.abs(prediction - y)[~hidden].std() < 0.03


def test_the_scene_beyond_the_border_is_unknown_not_mirrored(scene):
    """A crop of a larger blurred scene (the camera saw what lies beyond): no border artefacts."""
    from scipy.signal import fftconvolve
    k = psf.motion(9, 45)
    valid = fftconvolve(scene, k, mode="valid")  # 64x64, each pixel from the scene only
    r = k.shape[0] // 2
    truth = scene[r:-r, r:-r]
    y = valid + 0.01 * np.random.default_rng(2).standard_normal(valid.shape)
    sharp = restore.deconvolve(y, k, noise_sigma=0.01, prior="learned")
    ring = np.ones(truth.shape, bool)
    ring[8:-8, 8:-8] = False
    err = (sharp - truth) ** 2
    assert restore.psnr(truth, sharp) > restore.psnr(truth, y) + 2.0
    assert err[ring].mean() < 2.0 * err[~ring].mean(), (err[ring].mean(), err[~ring].mean())


def test_auto_runs_the_prior_that_predicts_held_out_pixels_better(scene):
    truth = scene[:64, :64]
    k = psf.box(5)
    y = restore.blur(truth, k, mode="reflect") + 0.02 * np.random.default_rng(3).standard_normal(truth.shape)
    auto, info = restore.deconvolve(y, k, prior="auto", full=True)
    c = info.choice
    assert info.weight_source == "auto" and np.isfinite(c.learned_score) and np.isfinite(c.handmade_score)
    assert c.learned_wins == (c.learned_score < c.handmade_score)
    same = restore.deconvolve(y, k, prior="learned" if c.learned_wins else "nonlocal")
    np.testing.assert_allclose(auto, same, atol=1e-6)
    assert info.family == ("learned" if c.learned_wins else c.family)
    given = restore.deconvolve(y, k, prior="auto", tv_weight=1e-3, full=True)[1]  # no choice: the hand-made prior
    assert given.family == "tv" and given.choice is None


def test_tiled_runs_keep_the_learned_prior():
    weight, prior, terms = central_choice(lambda at: np.zeros((at[1] - at[0], at[3] - at[2])), (64, 64),
                                          psf.box(3), 0.01, (0.0, 1.0), {"prior": "learned"})
    assert prior == "learned" and terms is None
