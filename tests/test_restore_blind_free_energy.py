"""The variational free energy of a candidate kernel (restore/blind_free_energy.py)."""
import numpy as np
import pytest

from minieye import restore
from minieye.checks import ShapeError
from minieye.restore import psf
from minieye.restore.blind_free_energy import free_energies, free_energy


def scene(seed: int = 0) -> np.ndarray:
    """Rectangles and discs on a ramp: step edges of every orientation, (96, 96) in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    img = 0.2 + 0.3 * xx / 96
    for _ in range(14):
        cy, cx, r = rng.uniform(0, 96), rng.uniform(0, 96), rng.uniform(4, 14)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r if rng.random() < 0.5 else (abs(yy - cy) < r) & (abs(xx - cx) < r)
        img[mask] = rng.uniform(0, 1)
    return img


def path_kernel() -> np.ndarray:
    """An L-shaped 9x9 shake path whose mass grows along it (so its mirror has the wrong phase)."""
    k = np.zeros((9, 9))
    k[4, 1:8] = np.arange(1, 8)
    k[1:4, 7] = [10, 9, 8]
    return k / k.sum()


def test_the_true_kernel_has_the_lowest_free_energy():
    k = path_kernel()
    blurred = restore.blur(scene(), k, mode="reflect") + 0.01 * np.random.default_rng(1).standard_normal((96, 96))
    ys, xs = np.nonzero(k)
    half = np.zeros_like(k)  # the path's first half only, rescaled
    half[4, 1:5] = k[4, 1:5]
    reversed_mass = np.zeros_like(k)  # the same support, the mass in reverse order along the path: the wrong phase
    order = [(4, c) for c in range(1, 8)] + [(3, 7), (2, 7), (1, 7)]
    for (a, b), (c, d) in zip(order, order[::-1]):
        reversed_mass[a, b] = k[c, d]
    delta = np.zeros_like(k)
    delta[4, 4] = 1.0
    rotated = k[::-1, ::-1]  # the same power spectrum |K|^2, the phase reversed: invisible to second-order scores
    energies = free_energies(blurred, [k, half, reversed_mass, delta, rotated], sigma=0.01)
    assert np.argmin(energies) == 0, energies
    assert min(energies[1:]) - energies[0] > 0.01, energies  # clearly, not by round-off
    assert np.allclose(reversed_mass.sum(), 1.0) and len(ys) == len(xs) == 10


def test_colour_integer_and_estimated_sigma():
    k = psf.gaussian(1.5)
    grey = restore.blur(scene(2), k, mode="reflect")
    rgb = np.stack([grey, 0.8 * grey, 0.5 * grey + 0.2], axis=-1)
    noisy = np.clip(rgb + 0.01 * np.random.default_rng(3).standard_normal(rgb.shape), 0, 1)
    value = free_energy(noisy, k)  # sigma estimated, the colour image scored on its leading plane
    assert np.isfinite(value)
    as_uint8 = free_energy((noisy * 255).round().astype(np.uint8), k, sigma=2.5, crop=64, iterations=2)
    assert np.isfinite(as_uint8)  # integers are converted; sigma is in the image's units
    # a kernel is rescaled to sum 1, so a multiple scores the same
    assert free_energy(noisy, 3 * k, 0.01, crop=48) == pytest.approx(free_energy(noisy, k, 0.01, crop=48))


@pytest.mark.parametrize("kwargs, message", [
    ({"blurred": np.zeros((8, 8, 3, 2))}, "blurred"),
    ({"blurred": np.full((16, 16), np.nan)}, "NaN or Inf in blurred"),
    ({"kernel": -np.ones((3, 3))}, "kernel >= 0"),
    ({"kernel": np.zeros((3, 3))}, "positive sum"),
    ({"kernel": np.ones(3)}, "kernel"),
    ({"kernel": np.ones((0, 3))}, "free_energy: expected a non-empty kernel"),
    ({"kernel": np.ones((41, 41))}, "no larger than the scored image"),
    ({"kernel": np.array([[1.0, np.inf]])}, "NaN or Inf in kernel"),
    ({"sigma": 0.0}, "sigma"),
    ({"sigma": "0.01"}, "sigma"),
    ({"iterations": 0}, "iterations"),
    ({"crop": 0}, "crop"),
])
def test_bad_input_is_refused_by_name(kwargs, message):
    args = {"blurred": np.random.default_rng(0).random((40, 40)), "kernel": np.ones((3, 3)), "sigma": 0.01} | kwargs
    with pytest.raises((ShapeError, TypeError), match=message):
        free_energy(args.pop("blurred"), args.pop("kernel"), **args)


def test_free_energies_embeds_frames_and_refuses_an_empty_list():
    blurred = restore.blur(scene(4), psf.gaussian(1.0), mode="reflect")
    small = psf.gaussian(1.0)
    wide = np.pad(small, 4)  # the same kernel in a wider frame
    a, b = free_energies(blurred, [small, wide], sigma=0.01, crop=48, iterations=3)
    assert a == pytest.approx(b)
    assert free_energies(blurred, (k for k in (small, wide)), sigma=0.01, crop=48, iterations=3) == [a, b]
    with pytest.raises(ShapeError, match="at least one kernel"):
        free_energies(blurred, [], sigma=0.01)


def test_flat_and_tiny_images_give_finite_values():
    assert np.isfinite(free_energy(np.full((32, 32), 0.5), np.ones((3, 3)), 0.01))  # CG starts at its solution
    assert np.isfinite(free_energy(np.zeros((16, 16), np.uint8), np.ones((3, 3))))  # sigma estimated as 0: floored
    assert np.isfinite(free_energy(np.random.default_rng(0).random((3, 3)), np.ones((3, 3)), 0.01))
    assert np.isfinite(free_energy(np.random.default_rng(0).random((1, 9)), np.ones((1, 3)), 0.01))
