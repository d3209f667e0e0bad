"""restore.denoise (the shipped, minieye-trained denoiser) and its training."""
import numpy as np
import pytest

from minieye import restore
from minieye.restore import denoiser
from minieye.restore.denoiser_training import noisy_pairs, sample_patches, train_denoiser
from minieye.restore.denoiser_unet import network_reach

data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def moon():
    """A held-out image (not in the tuning corpus), grey, in [0, 1]."""
    return data.moon()[200:296, 200:296] / 255.0


def test_the_shipped_weights_are_small_float32_and_load_once():
    assert denoiser.WEIGHTS_PATH.stat().st_size < 3_000_000
    net = denoiser.load_denoiser()
    assert net is denoiser.load_denoiser() and not net.training
    assert all(p.value.dtype == np.float32 for p in net.parameters())
    factor = network_reach(net)[1]  # the U-Net's input sides are multiples of its downsampling factor
    y = net(np.zeros((2, 2, 3 * factor, 2 * factor), dtype=np.float32))
    assert y.shape == (2, 1, 3 * factor, 2 * factor) and y.dtype == np.float32


@pytest.mark.parametrize("sigma", [0.01, 0.03, 0.05])
def test_denoise_reduces_the_error_on_a_held_out_image(moon, sigma):
    noisy = moon + sigma * np.random.default_rng(1).standard_normal(moon.shape)
    before = restore.psnr(moon, noisy)
    told = restore.psnr(moon, restore.denoise(noisy, noise_sigma=sigma))
    guessed = restore.psnr(moon, restore.denoise(noisy))
    assert told > before + 4.5 and guessed > before + 4.0, (before, told, guessed)


@pytest.mark.parametrize("name", ["coffee", "brick"])
def test_the_shipped_net_beats_oracle_tv_on_held_out_crops(name):
    """A photo and a texture not in the training corpus, sigma 0.03: TV gets its best weight on a grid."""
    from skimage.color import rgb2gray
    from skimage.restoration import denoise_tv_chambolle
    image = getattr(data, name)()
    crop = (rgb2gray(image) if image.ndim == 3 else image / 255.0)[100:196, 100:196]
    noisy = crop + 0.03 * np.random.default_rng(2).standard_normal(crop.shape)
    tv = max(restore.psnr(crop, denoise_tv_chambolle(noisy, weight=0.03 * 2 ** (k / 2))) for k in range(-2, 7))
    assert restore.psnr(crop, restore.denoise(noisy, noise_sigma=0.03)) > tv + 0.5


def test_a_clean_image_stays_nearly_unchanged(moon):
    assert restore.psnr(moon, restore.denoise(moon, noise_sigma=0.0)) > 40.0


def test_shapes_dtypes_and_units(moon):
    noisy = np.clip(moon + 0.03 * np.random.default_rng(2).standard_normal(moon.shape), 0, 1)
    unit = restore.denoise(noisy.astype(np.float32), noise_sigma=0.03)
    assert unit.shape == moon.shape and unit.dtype == np.float32
    eight_bit = restore.denoise((noisy * 255).astype(np.uint8), noise_sigma=0.03 * 255)
    assert eight_bit.dtype == np.float64 and 100 < eight_bit.max() <= 300
    assert restore.psnr(moon, eight_bit / 255) > restore.psnr(moon, noisy) + 4
    scaled = restore.denoise(noisy * 255.0, noise_sigma=0.03 * 255)  # a float image in 0..255: its own units
    np.testing.assert_allclose(scaled / 255.0, unit, atol=2e-4)
    colour = restore.denoise(np.stack([noisy, noisy[::-1], noisy.T], axis=-1), noise_sigma=0.03)
    assert colour.shape == moon.shape + (3,)
    np.testing.assert_allclose(colour[..., 0], unit, atol=1e-5)


def test_very_noisy_images_beyond_the_training_range_still_improve(moon):
    noisy = moon + 0.2 * np.random.default_rng(3).standard_normal(moon.shape)
    assert restore.psnr(moon, restore.denoise(noisy, noise_sigma=0.2)) > restore.psnr(moon, noisy) + 6


def test_tiles_do_not_change_the_result(moon):
    net = denoiser.load_denoiser()
    whole = denoiser.apply_denoiser(net, moon[:70, :50], 0.02, tile=256)
    pieces = denoiser.apply_denoiser(net, moon[:70, :50], 0.02, tile=16)
    np.testing.assert_allclose(pieces, whole, atol=1e-5)


@pytest.mark.parametrize("image, kwargs, message", [
    (np.zeros((3, 40, 40)), {}, "channels-last"),
    (np.zeros((3, 3)), {}, "at least 4 pixels"),
    (np.full((8, 8), np.nan), {}, "finite"),
    (np.zeros((8, 8, 3, 2)), {}, "(H, W) or (H, W, C)"),
    (np.zeros((8, 8)), {"noise_sigma": -0.1}, "noise_sigma"),
])
def test_bad_input_gets_a_clear_error(image, kwargs, message):
    with pytest.raises(ValueError, match="restore.denoise") as info:
        restore.denoise(image, **kwargs)
    assert message in str(info.value)


def test_patches_are_flipped_and_turned_crops():
    image = np.arange(36, dtype=np.float32).reshape(6, 6)
    patches = sample_patches([image], 50, 3, np.random.default_rng(0))
    assert patches.shape == (50, 3, 3) and patches.dtype == np.float32
    crops = [image[i:i + 3, j:j + 3] for i in range(4) for j in range(4)]
    variants = {np.rot90(f, k).tobytes() for c in crops for f in (c, c[:, ::-1]) for k in range(4)}
    assert all(p.tobytes() in variants for p in patches)
    assert len({p.tobytes() for p in patches}) > 20  # the flips and turns are used
    inputs, targets = noisy_pairs(patches, np.random.default_rng(1))
    assert inputs.shape == (50, 2, 3, 3) and targets.shape == (50, 1, 3, 3)
    noise = inputs[:, 0] - patches  # the target is the noise, in units of RESIDUAL_UNIT
    np.testing.assert_allclose(targets[:, 0] * denoiser.RESIDUAL_UNIT, noise, atol=1e-5)
    assert np.all(inputs[:, 1] >= 0) and np.all(inputs[:, 1] <= denoiser.MAX_SIGMA / denoiser.SIGMA_UNIT)


def test_a_sigma_power_draws_more_low_noise_levels():
    clean = np.zeros((4000, 2, 2), dtype=np.float32)
    maps = [noisy_pairs(clean, np.random.default_rng(0), sigma_power=p)[0][:, 1, 0, 0] * denoiser.SIGMA_UNIT
            for p in (1.0, 2.0)]
    # sigma = 0.1 u**p: mean 0.1 / (p + 1), and P(sigma < 0.01) = 0.1**(1 / p)
    assert abs(maps[0].mean() - 0.05) < 0.003 and abs(maps[1].mean() - 0.1 / 3) < 0.003
    assert abs(np.mean(maps[1] < 0.01) - 0.1 ** 0.5) < 0.03


def test_training_lowers_the_loss_and_is_seeded():
    yy, xx = np.mgrid[:24, :24] / 24
    images = [0.2 + 0.5 * xx * yy, np.where(xx > 0.5, 0.7, 0.3) + 0.1 * yy]
    rng = np.random.default_rng(0)
    inputs, targets = noisy_pairs(sample_patches(images, 256, 8, rng), rng)  # a fixed check set
    runs = [train_denoiser(images, depth=4, channels=8, patch_size=8, patches_per_epoch=64, epochs=10,
                           batch_size=8, rate=1e-2, seed=5) for _ in range(2)]
    untrained = denoiser.build_denoiser(4, 8, seed=5)
    before, after = (float(np.mean((net(inputs) - targets) ** 2)) for net in (untrained, runs[0].net))
    assert after < 0.75 * before, (before, after)
    assert not runs[0].net.training and len(runs[0].iteration_losses) == 80 and len(runs[0].epoch_losses) == 10
    assert runs[0].iteration_losses == runs[1].iteration_losses
    with pytest.raises(ValueError, match="at least 8 pixels"):
        train_denoiser([np.zeros((5, 40))], patch_size=8)
    with pytest.raises(ValueError, match="sigma_power > 0"):
        train_denoiser(images, patch_size=8, sigma_power=0)


def test_deconvolve_with_the_learned_prior(moon):
    from minieye.restore import psf
    truth = moon[:64, :64]
    blurred = restore.blur(truth, psf.box(5), mode="reflect") + 0.01 * np.random.default_rng(4).standard_normal(
        truth.shape)
    sharp, info = restore.deconvolve(blurred, psf.box(5), prior="learned", full=True)
    assert sharp.shape == truth.shape and sharp.dtype == np.float64 and "learned" in info.weights[0][1]
    assert restore.psnr(truth, sharp) > restore.psnr(truth, blurred) + 2.0
    as_bytes = restore.deconvolve((np.clip(blurred, 0, 1) * 255).astype(np.uint8), psf.box(5), prior="learned")
    assert as_bytes.dtype == np.uint8 and restore.psnr(truth, as_bytes / 255.0) > restore.psnr(truth, blurred) + 1.5
    colour = restore.deconvolve(np.stack([blurred] * 3, axis=-1), psf.box(5), prior="learned", iterations=4)
    assert colour.shape == truth.shape + (3,)
    with pytest.raises(ValueError, match="prior='learned'"):
        restore.deconvolve(np.zeros((9, 20, 20)), psf.gaussian3d(1.0), prior="learned")
