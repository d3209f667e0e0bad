"""The learned prior's data step (conjugate gradients on half spectra) against the same method in pixels."""
import numpy as np
import pytest

from minieye.restore import psf
from minieye.restore.baselines import transfer_function
from minieye.restore.learned_prior import data_step, seen_spectrum


def _pixel_data_step(u, rhs, mask, otf, alpha, steps):
    """Preconditioned conjugate gradients on (K^T M K + alpha) u = rhs with every vector in pixels."""
    def blur(v, spectrum):
        return np.fft.irfft2(spectrum * np.fft.rfft2(v), s=u.shape)

    inverse = 1.0 / (np.abs(otf) ** 2 + alpha)
    residual = rhs - blur(mask * blur(u, otf), np.conj(otf)) - alpha * u
    direction = blur(residual, inverse)
    rz = np.vdot(residual, direction)
    for _ in range(steps):
        a_d = blur(mask * blur(direction, otf), np.conj(otf)) + alpha * direction
        step = rz / np.vdot(direction, a_d)
        u = u + step * direction
        residual = residual - step * a_d
        z = blur(residual, inverse)
        rz, previous = np.vdot(residual, z), rz
        direction = z + (rz / previous) * direction
    return u


@pytest.mark.parametrize("shape", [(40, 46), (37, 43), (42, 31)])  # even and odd widths: the half spectrum's last column
@pytest.mark.parametrize("kernel", [psf.box(5), psf.motion(7, 30)], ids=["box", "motion"])
def test_spectral_data_step_equals_the_pixel_one(shape, kernel):
    rng = np.random.default_rng(sum(shape))
    mask = (rng.random(shape) > 0.25).astype(float)
    mask[:6], mask[:, -6:] = 0.0, 0.0  # a free ring, as hqs's
    otf = transfer_function(kernel, shape)
    u, rhs = rng.random(shape), rng.random(shape)
    for alpha, steps in [(0.3, 3), (1e-3, 5), (2.0, 0)]:
        expected = _pixel_data_step(u, rhs, mask, otf, alpha, steps)
        spectrum = np.fft.rfft2(u)
        got, seen = data_step(spectrum, seen_spectrum(spectrum, mask, otf), np.fft.rfft2(rhs), mask, otf, alpha, steps)
        np.testing.assert_allclose(np.fft.irfft2(got, s=shape), expected, rtol=0, atol=1e-12 * np.abs(expected).max())
        # the spectrum of M K u it carries on is the one of the step's estimate
        np.testing.assert_allclose(seen, seen_spectrum(got, mask, otf), rtol=0, atol=1e-12 * np.abs(seen).max())


def test_data_step_solves_the_unmasked_system_in_one_step():
    """With M = 1 the preconditioner is the exact inverse: one step lands on the solution."""
    shape, alpha = (32, 36), 0.05
    otf = transfer_function(psf.gaussian(1.5), shape)
    truth = np.random.default_rng(1).random(shape)
    rhs = (np.abs(otf) ** 2 + alpha) * np.fft.rfft2(truth)
    zero = np.zeros_like(rhs)
    got, _ = data_step(zero, zero, rhs, np.ones(shape), otf, alpha, 1)
    np.testing.assert_allclose(np.fft.irfft2(got, s=shape), truth, atol=1e-10)
