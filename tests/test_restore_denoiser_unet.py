"""The denoiser's U-Net and network_reach: receptive radius, size factor, tiling, saving."""
import numpy as np
import pytest

import minieye as me
from minieye.restore.denoiser import apply_denoiser, build_denoiser
from minieye.restore.denoiser_unet import build_unet, network_reach


def _scrambled(net, seed=1):
    """Random weights of order one everywhere (the built net starts with a near-zero last layer)."""
    rng = np.random.default_rng(seed)
    for p in net.parameters():
        p.value[...] = rng.standard_normal(p.value.shape).astype(p.value.dtype) * 0.3
    return net


def _seen_radius(net, size, at):
    """How far from the changed input pixel ``at`` (row and column) the output changes."""
    x = np.random.default_rng(0).standard_normal((1, 2, size, size))
    poked = x.copy()
    poked[0, 0, at, at] += 10.0
    changed = np.argwhere(np.abs(net(poked) - net(x))[0, 0] > 1e-9)
    return int(np.abs(changed - at).max())


def test_reach_of_the_dncnn_is_its_depth():
    assert network_reach(build_denoiser(8, 4)) == (8, 1)
    assert network_reach(build_denoiser(3, 4)) == (3, 1)
    assert _seen_radius(_scrambled(build_denoiser(5, 4, dtype="float64")), 24, 12) == 5


@pytest.mark.parametrize("down, up, factor", [((1, 1), (1, 1), 4), ((1,), (0,), 2), ((0, 1, 1), (1, 0, 1), 8)])
def test_unet_reach_bounds_what_the_output_sees(down, up, factor):
    net = _scrambled(build_unet(4, down=down, up=up, dtype="float64"))
    radius, f = network_reach(net)
    assert f == factor
    # every phase of the coarsest grid: the bound holds and is tight to within one coarse step
    size = -(-(4 * radius + 2 * factor) // factor) * factor
    seen = max(_seen_radius(net, size, 2 * radius + phase) for phase in range(factor))
    assert radius - factor < seen <= radius, (radius, seen)


def test_unet_shapes_and_parameters():
    net = build_unet(8, down=(1, 2), up=(1, 1), first=1)
    y = net(np.zeros((3, 2, 16, 12), dtype=np.float32))
    assert y.shape == (3, 1, 16, 12) and y.dtype == np.float32
    # 3x3 layers: 2->8, 8->8, 16->16, 2 x 32->32, 16->16, 8->8, 8->1; 2x2 down 8->16, 16->32, up 32->16, 16->8
    count = sum(9 * i * o + o for i, o in [(2, 8), (8, 8), (16, 16), (32, 32), (32, 32), (16, 16), (8, 8), (8, 1)])
    count += sum(4 * i * o + o for i, o in [(8, 16), (16, 32), (32, 16), (16, 8)])
    assert sum(p.value.size for p in net.parameters()) == count
    with pytest.raises(ValueError, match="build_unet"):
        build_unet(8, down=(1, 1), up=(1,))


@pytest.mark.parametrize("shape", [(70, 53), (9, 31), (5, 5)])
def test_unet_tiles_and_odd_sizes_do_not_change_the_result(shape):
    net = _scrambled(build_unet(4, down=(1, 1), up=(1, 1)), seed=2)
    scale = 0.05  # weights of order one grow the output: compare relative to its size
    net.parameters()[-2].value *= scale
    x = np.random.default_rng(3).random(shape).astype(np.float32)
    whole = apply_denoiser(net, x, 0.02, tile=256)
    assert whole.shape == shape and whole.dtype == np.float32
    for tile in (8, 13, 20):
        np.testing.assert_allclose(apply_denoiser(net, x, 0.02, tile=tile), whole,
                                   atol=2e-5 * max(1.0, float(np.abs(whole).max())))


def test_a_saved_unet_loads_as_the_same_network(tmp_path):
    net = _scrambled(build_unet(4, down=(1, 1), up=(1, 1)))
    me.io.save(net, tmp_path / "unet.minieye")
    again = me.io.load(tmp_path / "unet.minieye")
    x = np.random.default_rng(0).random((1, 2, 20, 28)).astype(np.float32)
    np.testing.assert_array_equal(again(x), net(x))
    assert network_reach(again) == network_reach(net)


def test_reach_refuses_what_it_cannot_bound():
    from minieye import layers
    with pytest.raises(ValueError, match="network_reach"):
        network_reach(layers.Dense(3, 3))


def test_training_a_unet_calls_back_every_epoch_and_lowers_the_loss():
    from minieye.restore.denoiser_training import noisy_pairs, sample_patches, train_denoiser
    yy, xx = np.mgrid[:24, :24] / 24
    images = [0.2 + 0.5 * xx * yy, np.where(xx > 0.5, 0.7, 0.3) + 0.1 * yy]
    rng = np.random.default_rng(0)
    inputs, targets = noisy_pairs(sample_patches(images, 256, 8, rng), rng)  # a fixed check set
    before = float(np.mean((build_unet(8, down=(1,), up=(1,), seed=1)(inputs) - targets) ** 2))
    seen = []
    run = train_denoiser(images, patch_size=8, patches_per_epoch=64, epochs=10, batch_size=8, rate=1e-2, seed=1,
                         net=build_unet(8, down=(1,), up=(1,), seed=1),
                         on_epoch=lambda done, net: seen.append(done))
    assert seen == list(range(1, 11))
    after = float(np.mean((run.net(inputs) - targets) ** 2))
    assert after < 0.85 * before, (before, after)  # 0.80 when written


def test_use_weights_runs_another_network_and_back(tmp_path):
    from minieye.restore import denoise, denoiser
    shipped = denoiser.load_denoiser()
    other = build_unet(4, down=(1,), up=(1,))
    for p in other.parameters()[-2:]:  # the last layer: predicts no noise, so denoise returns its input
        p.value[...] = 0.0
    me.io.save(other, tmp_path / "other.minieye")
    noisy = np.random.default_rng(0).random((20, 24))
    try:
        denoiser.use_weights(tmp_path / "other.minieye")
        assert network_reach(denoiser.load_denoiser())[0] < network_reach(shipped)[0]
        np.testing.assert_allclose(denoise(noisy, noise_sigma=0.05), noisy, atol=1e-6)
        denoiser.use_weights(tmp_path / "missing.minieye")
        with pytest.raises(FileNotFoundError, match="missing.minieye"):
            denoise(noisy, noise_sigma=0.05)
    finally:
        denoiser.use_weights(None)
    assert network_reach(denoiser.load_denoiser()) == network_reach(shipped)
