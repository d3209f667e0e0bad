"""restore.inverse: the Wiener inverse kernel k-dagger and separable (SVD) kernels as 1-D conv networks."""
import numpy as np
import pytest
from scipy import ndimage

import minieye as me
from minieye import functional as F
from minieye.restore import separable, separable_network, wiener_inverse_kernel

# Well conditioned: its transfer function 0.6 + 0.2 cos(a) + 0.2 cos(b) stays >= 0.2.
MILD = np.array([[0.0, 0.1, 0.0], [0.1, 0.6, 0.1], [0.0, 0.1, 0.0]])


def _gaussian(sigma, radius):
    t = np.arange(-radius, radius + 1)
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _delta_error(kd, k):
    """max |k_dagger (*) k - delta| over the full linear convolution."""
    d = ndimage.convolve(np.pad(kd, k.shape[0]), k, mode="constant")
    d[d.shape[0] // 2, d.shape[1] // 2] -= 1.0
    return np.abs(d).max()


def test_inverse_of_a_well_conditioned_kernel_is_a_delta_at_high_snr():
    kd = wiener_inverse_kernel(MILD, snr=1e8, size=41)
    assert kd.shape == (41, 41) and kd.dtype == np.float64
    assert _delta_error(kd, MILD) < 1e-6
    # ... and restores a blurred image (true convolution, the PSF convention).
    rng = np.random.default_rng(0)
    x = rng.random((40, 40))
    y = ndimage.convolve(x, MILD, mode="wrap")
    restored = ndimage.convolve(y, kd, mode="wrap")
    assert np.abs(restored - x).max() < 1e-6


def test_lower_snr_regularises_more():
    g = _gaussian(1.0, 3)
    errors = [_delta_error(wiener_inverse_kernel(g, snr, 41), g) for snr in (1e1, 1e3, 1e5)]
    peaks = [np.abs(wiener_inverse_kernel(g, snr, 41)).max() for snr in (1e1, 1e3, 1e5)]
    assert errors[0] > errors[1] > errors[2]
    assert peaks[0] < peaks[1] < peaks[2]  # a bolder inverse for cleaner data


def test_matches_the_frequency_domain_formula_on_a_periodic_grid():
    """Crop size = the whole period: k_dagger circularly convolved with k has transfer |K|^2 / (|K|^2 + 1/snr)."""
    g, snr = _gaussian(0.8, 2), 50.0
    kd = wiener_inverse_kernel(g, snr, size=63)
    padded = np.zeros((63, 63))
    padded[:5, :5] = g
    transfer = np.fft.fft2(np.roll(padded, (-2, -2), axis=(0, 1)))
    expected = np.abs(transfer) ** 2 / (np.abs(transfer) ** 2 + 1 / snr)
    product = ndimage.convolve(np.fft.ifftshift(kd), g, mode="wrap")
    np.testing.assert_allclose(np.fft.fft2(product).real, expected, atol=1e-8)


def test_inverse_kernel_is_centred_and_keeps_symmetry():
    motion = np.zeros((5, 5))
    motion[2, 1:] = 0.25  # asymmetric: its inverse must point the other way
    kd = wiener_inverse_kernel(motion, 100.0, 21)
    assert _delta_error(kd, motion) < _delta_error(kd[::-1, ::-1], motion)
    sym = wiener_inverse_kernel(_gaussian(1.2, 3), 100.0, 25)
    np.testing.assert_allclose(sym, sym[::-1, ::-1], atol=1e-12)
    np.testing.assert_allclose(sym, sym.T, atol=1e-12)
    assert np.unravel_index(np.argmax(sym), sym.shape) == (12, 12)


@pytest.mark.parametrize("bad, match", [
    (dict(kernel=np.ones((4, 4))), "odd sides"),
    (dict(kernel=np.ones(5)), "kernel"),
    (dict(snr=0.0), "snr"),
    (dict(snr=float("nan")), "snr"),
    (dict(size=20), "odd"),
    (dict(kernel=np.zeros((3, 3))), "non-zero"),
])
def test_inverse_refuses_bad_arguments(bad, match):
    args = dict(kernel=MILD, snr=100.0, size=21) | bad
    with pytest.raises(ValueError, match=match):
        wiener_inverse_kernel(**args)


@pytest.mark.parametrize("rank", [1, 2, 3, 5])
def test_rank_r_error_is_the_svd_tail(rank):
    k = np.random.default_rng(rank).standard_normal((7, 5))
    parts = separable(k, rank)
    s = np.linalg.svd(k, compute_uv=False)
    assert parts.vertical.shape == (rank, 7) and parts.horizontal.shape == (rank, 5)
    tail = np.sqrt(np.sum(s[rank:] ** 2))
    assert np.linalg.norm(k - parts.kernel()) == pytest.approx(tail, abs=1e-12)
    assert parts.error == pytest.approx(tail, abs=1e-12)
    np.testing.assert_allclose(parts.singular_values, s)


def test_a_separable_kernel_is_exact_at_rank_one():
    g = _gaussian(1.3, 4)
    parts = separable(g, 1)
    np.testing.assert_allclose(parts.kernel(), g, atol=1e-15)
    assert parts.error < 1e-14
    assert parts.horizontal.sum() > 0  # the sign convention makes the factors readable


def test_keep_sum_restores_the_gain_at_frequency_zero():
    kd = wiener_inverse_kernel(_gaussian(1.5, 4), 100.0, 31)
    plain, kept = separable(kd, 1), separable(kd, 1, keep_sum=True)
    assert abs(plain.kernel().sum() - kd.sum()) > 0.1  # truncation moved the sum a lot
    assert kept.kernel().sum() == pytest.approx(kd.sum(), rel=1e-12)
    np.testing.assert_allclose(kept.kernel(), plain.kernel() * kept.gain, atol=1e-15)
    assert plain.gain == 1.0 and kept.error == plain.error
    net = separable_network(kd, 1, keep_sum=True, dtype=np.float64)
    ones = np.ones((1, 1, 40, 40))
    assert net(ones)[0, 0, 20, 20] == pytest.approx(kd.sum(), rel=1e-10)  # a flat image keeps its level
    zero_sum = np.array([[1.0, -1.0], [-1.0, 1.0]])
    assert separable(zero_sum, 1, keep_sum=True).gain == 1.0  # nothing to rescale


def test_separable_refuses_bad_rank():
    with pytest.raises(ValueError, match="rank"):
        separable(np.ones((3, 5)), 4)
    with pytest.raises(ValueError, match="rank"):
        separable(np.ones((3, 3)), 0)


@pytest.mark.parametrize("convention", ["convolution", "correlation"])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_network_of_1d_convs_equals_the_2d_conv(convention, padding):
    rng = np.random.default_rng(1)
    k = rng.standard_normal((5, 3))
    x = rng.standard_normal((2, 3, 12, 11))
    net = separable_network(k, rank=3, channels=3, padding=padding, convention=convention, dtype=np.float64)
    assert [layer.kernel_size for layer in net] == [(1, 3), (5, 1)]
    w = k[::-1, ::-1] if convention == "convolution" else k
    weight = np.einsum("oc,ij->ocij", np.eye(3), w)  # the same kernel on each channel
    expected = F.conv2d(x, weight, padding=(2, 1) if padding == "same" else 0)
    np.testing.assert_allclose(net(x), expected, atol=1e-12)


def test_network_true_convolution_matches_scipy():
    rng = np.random.default_rng(2)
    k, x = rng.standard_normal((3, 5)), rng.standard_normal((15, 14))
    net = separable_network(k, rank=3, dtype=np.float64)
    np.testing.assert_allclose(net(x[None, None])[0, 0], ndimage.convolve(x, k, mode="constant"), atol=1e-12)


def test_low_rank_network_equals_the_truncated_kernel_and_trains():
    rng = np.random.default_rng(3)
    k = rng.standard_normal((5, 5))
    x = rng.standard_normal((1, 1, 10, 10))
    net = separable_network(k, rank=2, convention="correlation", dtype=np.float64)
    np.testing.assert_allclose(net(x), F.conv2d(x, separable(k, 2).kernel()[None, None], padding=2), atol=1e-12)
    params = net.parameters()
    assert len(params) == 2 and not any(p.frozen for p in params)
    # Gradients flow to both 1-D factors (so k-dagger can initialise a fine-tuned network).
    y, backward = net.forward(x)
    deltas = me.DeltaSet()
    backward(np.ones_like(y), deltas)
    assert all(np.abs(deltas[p]).sum() > 0 for p in params)


def test_network_refuses_bad_arguments():
    with pytest.raises(ValueError, match="convention"):
        separable_network(MILD, convention="flipped")
    with pytest.raises(ValueError, match="odd"):
        separable_network(np.ones((4, 3)), padding="same")
    with pytest.raises(ValueError, match="padding"):
        separable_network(MILD, padding="full")
