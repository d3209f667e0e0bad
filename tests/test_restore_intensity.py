"""Any input range: floats in their own units, signed integers keep their sign, the box follows the data."""
from functools import partial

import numpy as np
import pytest

from minieye import restore
from minieye.restore import intensity as I
from minieye.restore import psf

# These tests are about the hand-made prior, so they pin prior='nonlocal'; the default, prior='auto'
# (the learned prior blended in by held-out prediction), is tested in test_restore_learned_prior.py.
deconvolve = partial(restore.deconvolve, prior="nonlocal")

K = psf.gaussian(1.2)


@pytest.fixture(scope="module")
def scene():
    data = pytest.importorskip("skimage.data")
    truth = data.camera()[180:244, 200:264] / 255.0
    noise = 0.01 * np.random.default_rng(3).standard_normal(truth.shape)
    return truth, restore.blur(truth, K, "reflect") + noise


def test_0_to_255_floats_give_the_unit_result_times_255(scene):
    truth, blurred = scene
    unit, info = deconvolve(blurred, K, full=True)
    wide, wide_info = deconvolve(blurred * 255.0, K, full=True)
    assert wide_info.intensity.rule == "8-bit" and info.intensity.rule == "unit"
    assert restore.psnr(truth, wide / 255.0) == pytest.approx(restore.psnr(truth, unit), abs=0.01)
    assert restore.psnr(truth, unit) > restore.psnr(truth, blurred) + 2.0
    assert wide.min() >= 0 and wide.max() <= 255.0  # the box follows the data: [0, 255]


def test_signed_integers_keep_their_sign(scene):
    truth, blurred = scene
    signed = np.rint(blurred * 1200 - 600).astype(np.int32)
    restored, info = deconvolve(signed, K, full=True)
    assert restored.dtype == np.int32 and info.intensity.rule == "range" and info.intensity.box is None
    assert restored.min() < -400  # was clipped to 0 when int32 was scaled by its dtype's maximum
    truth_units = truth * 1200 - 600
    gain = restore.psnr(truth_units, restored, data_range=1200) - restore.psnr(truth_units, signed, data_range=1200)
    assert gain > 2.0


def test_uint8_and_other_ranges(scene):
    truth, blurred = scene
    as_u8 = np.clip(np.rint(blurred * 255), 0, 255).astype(np.uint8)
    restored = deconvolve(as_u8, K)
    assert restored.dtype == np.uint8
    assert restore.psnr(truth, restored / 255.0) > restore.psnr(truth, as_u8 / 255.0) + 2.0
    counts = 1000.0 + 2000.0 * blurred  # photon counts: scaled by the data's range, kept non-negative
    restored, info = deconvolve(counts, K, full=True)
    assert info.intensity.rule == "range" and info.intensity.box[1] is None
    truth_units = 1000.0 + 2000.0 * truth
    assert restore.psnr(truth_units, restored, 2000) > restore.psnr(truth_units, counts, 2000) + 2.0


def test_box_and_noise_sigma_are_in_the_images_units(scene):
    _, blurred = scene
    clipped = deconvolve(blurred * 255.0, K, box=(50, 200), iterations=10)
    assert clipped.min() >= 50 - 1e-3 and clipped.max() <= 200 + 1e-3
    _, info = deconvolve(blurred * 255.0, K, noise_sigma=2.55, iterations=5, full=True)
    assert info.sigma == pytest.approx(0.01)  # working units
    _, info = deconvolve(blurred * 1000, K, value_range=(0, 1000), iterations=5, full=True)
    assert (info.intensity.offset, info.intensity.scale) == (0.0, 1000.0)


def test_choose_intensity_rules():
    f = np.dtype(np.float64)
    assert I.choose_intensity(f, -0.01, 1.01, 0.01).rule == "unit"
    eight = I.choose_intensity(f, 0.0, 240.0, 2.0)
    assert (eight.rule, eight.scale, eight.box) == ("8-bit", 255.0, (0.0, 1.0))
    assert I.choose_intensity(f, -0.5, 0.5, 0.01).box is None  # negative values: no bound
    wide = I.choose_intensity(f, 100.0, 5000.0, 10.0)
    assert wide.rule == "range" and wide.to_working(np.array([100.0, 5000.0])).tolist() == [0.0, 1.0]
    assert wide.box == (pytest.approx(-100 / 4900), None)  # non-negative data stays non-negative
    u16 = I.choose_intensity(np.uint16, 0.0, 4095.0, 5.0)
    assert u16.scale == 4095.0 and u16.box == (0.0, pytest.approx(65535 / 4095))
    assert I.choose_intensity(np.int16, -300.0, 300.0, 5.0).box is None
    assert I.choose_intensity(np.bool_, 0.0, 1.0, 0.0).rule == "bool"
    flat = I.choose_intensity(f, 7.0, 7.0, 0.0)
    assert flat.scale > 0 and np.isfinite(flat.to_working(np.array([7.0]))).all()
    np.testing.assert_allclose(wide.to_data(wide.to_working(np.array([123.0, 4567.0]))), [123.0, 4567.0])


def test_channels_first_and_bad_ranges_are_refused(scene):
    _, blurred = scene
    rgb_first = np.stack([blurred] * 3)
    with pytest.raises(ValueError, match=r"channels-last, \(H, W, C\).*moveaxis"):
        deconvolve(rgb_first, K)
    with pytest.raises(ValueError, match="channels-last"):
        deconvolve(rgb_first, K, tile=32)
    with pytest.raises(ValueError, match="value_range"):
        deconvolve(blurred, K, value_range=(1, 0))
    with pytest.raises(ValueError, match="box"):
        deconvolve(blurred, K, box=(0, 1, 2))


def test_tiles_share_one_intensity_map(scene):
    _, blurred = scene
    signed = np.rint(blurred * 1200 - 600).astype(np.int32)
    settings = dict(iterations=400, dtype=np.float64, prior="local")
    whole, info = deconvolve(signed.astype(np.float64), K, full=True, **settings)
    parts, tiled_info = deconvolve(signed.astype(np.float64), K, tile=32, full=True, **settings)
    assert tiled_info.intensity == info.intensity and len(tiled_info.result) == 4
    assert np.abs(parts - whole).max() < 1e-3 * 1200 and parts.min() < -400
