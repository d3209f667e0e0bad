"""A candidate kernel's variational free energy under a sparse gradient prior (Levin et al. 2011).

Levin, Weiss, Durand and Freeman (*Efficient marginal likelihood optimization in blind
deconvolution*, CVPR 2011) score a kernel k by the marginal likelihood p(y | k), the latent
image integrated out, and approximate it variationally: the prior on each derivative of the
latent image x is a zero-mean mixture of Gaussians, the posterior q(x) is a Gaussian of mean mu
and *diagonal* covariance C, and the mixture assignments get their own q. The free energy

    F(k) = E_q[|M (k (*) x - y)|^2] / (2 eta^2) + E_q[-log p(D x, w)] - H(q)     (>= -log p(y | k))

is minimised over q by alternating: the expected mixture weights per derivative from
E[(D x)_i^2] = (D mu)_i^2 + C_i + C_i', then mu from the weighted least squares
(K^T M K / eta^2 + sum_g D_g^T W_g D_g) mu = K^T M y / eta^2 (preconditioned conjugate
gradients, FFT convolutions), and C_i = 1 / (that matrix)_ii, which is exactly the best diagonal
covariance for the quadratic. Lower F: the data are better explained by k. Unlike a score of
|K|^2 alone (the held-out prediction, a Gaussian marginal likelihood), the sparse prior sees the
kernel's phase: a kernel with its mass misplaced along the path needs a denser, less sparse
latent image to explain the same data.

The latent image lives on a periodic domain a margin wider than the observed window (its border
pixels are constrained only by the prior); M keeps the data term on the observed pixels. Work is
float64 NumPy FFTs on a centred crop of at most ``CROP`` pixels a side. Free energies of kernels
are comparable only on the same image, sigma and frame: ``free_energies`` embeds every candidate
in the largest frame first. docs/blind.md (*Seventh pass*) has the measurements.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from scipy import fft as sfft

from ..checks import as_float_array, check_ndim, check_positive_int, check_real, fail
from .blind_verdict import leading_plane
from .noise import estimate_noise

# The gradient prior: a zero-mean mixture fitted by EM to the horizontal and vertical differences
# of the tuning corpus's photos (camera, astronaut, coins, ascent, aero, china, flower; [0, 1] units).
PRIOR_WEIGHTS = (0.2855, 0.3147, 0.2747, 0.1251)
PRIOR_SDS = (0.00253, 0.01177, 0.04424, 0.17454)
CROP = 192  # the largest side of the centred crop scored (pixels)
ITERATIONS = 16  # alternations of the mixture weights and the Gaussian posterior
CG_STEPS = 20  # conjugate-gradient steps per mean update (warm-started)
SIGMA_FLOOR = 1e-3  # the smallest noise sd used (a noise-free image would make the data term singular)


def free_energy(blurred: Any, kernel: Any, sigma: float | None = None, *, crop: int = CROP,
                iterations: int = ITERATIONS) -> float:
    """Free energy per observed pixel of ``kernel`` for ``blurred`` (lower: ``kernel`` explains it better).

    ``blurred`` (H, W) or (H, W, C) in [0, 1] units (colour: scored on ``leading_plane``);
    ``kernel`` (kh, kw) non-negative with a positive sum (rescaled to sum 1), no larger than
    the crop; ``sigma`` the noise sd (estimated when None). Kernel-independent constants are left
    out, so only differences between kernels on the same image, sigma and frame mean anything.
    """
    where = "free_energy"
    y, sigma = _plane(blurred, sigma, crop, where)
    k = _check_kernel(kernel, y.shape, where)
    iterations = check_positive_int(iterations, where, "iterations")
    return _free_energy(y, k, sigma, iterations)


def free_energies(blurred: Any, kernels: Iterable[Any], sigma: float | None = None, *, crop: int = CROP,
                  iterations: int = ITERATIONS) -> list[float]:
    """``free_energy`` of each kernel, all embedded (centred) in the largest frame among them, so comparable."""
    where = "free_energies"
    y, sigma = _plane(blurred, sigma, crop, where)
    kernels = list(kernels)  # any iterable of kernels (a generator too)
    if len(kernels) == 0:
        raise fail(where, "at least one kernel", "kernels=[]")
    ks = [_check_kernel(k, y.shape, where) for k in kernels]
    frame = tuple(max(k.shape[a] for k in ks) for a in (0, 1))
    iterations = check_positive_int(iterations, where, "iterations")
    return [_free_energy(y, _embed(k, frame), sigma, iterations) for k in ks]


def _plane(blurred: Any, sigma: float | None, crop: int, where: str) -> tuple[np.ndarray, float]:
    y = as_float_array(blurred, where, "blurred", dtype=np.float64)
    check_ndim(y, (2, 3), where, "blurred", "(H, W) or (H, W, C)")
    if not np.all(np.isfinite(y)):
        raise fail(where, "finite pixel values", "NaN or Inf in blurred")
    crop = check_positive_int(crop, where, "crop")
    if sigma is not None:
        sigma = check_real(sigma, where, "sigma", positive=True)
    plane = leading_plane(y)
    if sigma is None:
        sigma = estimate_noise(plane)
    elif y.ndim == 3:  # the plane's noise relative to the channels' (its weights are not unit-norm)
        sigma *= estimate_noise(plane) / max(estimate_noise(y), 1e-12)
    top, left = max(0, (plane.shape[0] - crop) // 2), max(0, (plane.shape[1] - crop) // 2)
    return plane[top:top + crop, left:left + crop], max(float(sigma), SIGMA_FLOOR)


def _check_kernel(kernel: Any, shape: tuple[int, int], where: str) -> np.ndarray:
    k = as_float_array(kernel, where, "kernel", dtype=np.float64)
    check_ndim(k, 2, where, "kernel", "(kh, kw)")
    if k.size == 0:
        raise fail(where, "a non-empty kernel", f"kernel.shape == {k.shape}")
    if not np.all(np.isfinite(k)):
        raise fail(where, "finite kernel values", "NaN or Inf in kernel")
    if k.min() < 0:
        raise fail(where, "kernel >= 0 everywhere (a PSF)", f"kernel.min() == {k.min():g}")
    if k.sum() <= 0:
        raise fail(where, "kernel with a positive sum (a PSF)", f"kernel.sum() == {k.sum():g}")
    if k.shape[0] > shape[0] or k.shape[1] > shape[1]:
        raise fail(where, f"a kernel no larger than the scored image {shape}", f"kernel.shape == {k.shape}")
    return k / k.sum()


def _embed(k: np.ndarray, frame: tuple[int, int]) -> np.ndarray:
    out = np.zeros(frame)
    top, left = (frame[0] - k.shape[0]) // 2, (frame[1] - k.shape[1]) // 2
    out[top:top + k.shape[0], left:left + k.shape[1]] = k
    return out


def _mixture(energy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per derivative of expected square ``energy``: -log sum_j pi_j N(.; 0, s_j^2) at the best q(w)
    (up to a constant), and the expected precision sum_j q_j / s_j^2 (the least-squares weight)."""
    var = np.square(PRIOR_SDS)
    logp = np.log(PRIOR_WEIGHTS) - 0.5 * np.log(var) - energy[..., None] / (2 * var)
    top = logp.max(axis=-1, keepdims=True)
    q = np.exp(logp - top)
    total = q.sum(axis=-1, keepdims=True)
    return -(top + np.log(total))[..., 0], (q / total) @ (1.0 / var)


def _free_energy(y: np.ndarray, k: np.ndarray, sigma: float, iterations: int) -> float:
    """The module docstring's alternation for one (h, w) plane and one sum-1 (kh, kw) kernel."""
    (h, w), (kh, kw) = y.shape, k.shape
    shape = (sfft.next_fast_len(h + kh - 1, real=True), sfft.next_fast_len(w + kw - 1, real=True))
    rfft = lambda a: sfft.rfft2(a, shape)  # noqa: E731
    irfft = lambda a: sfft.irfft2(a, shape)  # noqa: E731
    spectrum = rfft(k)
    mask = np.zeros(shape)
    mask[kh - 1:kh - 1 + h, kw - 1:kw - 1 + w] = 1.0  # where the periodic k (*) x equals the valid blur
    data = np.zeros(shape)
    data[kh - 1:kh - 1 + h, kw - 1:kw - 1 + w] = y
    precision = 1.0 / sigma ** 2
    rhs = irfft(np.conj(spectrum) * rfft(data)) * precision
    reach = np.maximum(irfft(np.conj(rfft(k * k)) * rfft(mask)), 0.0)  # (K^T M K)_ii
    diff = lambda a, axis: np.roll(a, -1, axis) - a  # noqa: E731  periodic forward difference
    diff_t = lambda a, axis: np.roll(a, 1, axis) - a  # noqa: E731  its transpose

    def apply(v: np.ndarray, weights: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        out = irfft(np.conj(spectrum) * rfft(mask * irfft(spectrum * rfft(v)))) * precision
        for axis, wt in enumerate(weights):
            out += diff_t(wt * diff(v, axis), axis)
        return out

    mu = np.pad(y, ((kh // 2, shape[0] - h - kh // 2), (kw // 2, shape[1] - w - kw // 2)), mode="reflect")
    var = np.zeros(shape)
    for step in range(iterations + 1):
        energies = [diff(mu, a) ** 2 + var + np.roll(var, -1, a) for a in (0, 1)]
        mixed = [_mixture(e) for e in energies]
        weights = (mixed[0][1], mixed[1][1])
        diagonal = reach * precision + sum(wt + np.roll(wt, 1, a) for a, wt in enumerate(weights))
        if step == iterations:
            break
        mu = _conjugate_gradients(lambda v: apply(v, weights), rhs, mu, 1.0 / diagonal)
        var = 1.0 / diagonal
    residual = mask * irfft(spectrum * rfft(mu)) - data
    fit = (np.sum(residual ** 2) + np.sum(reach * var)) * precision / 2
    energy = fit + sum(float(m[0].sum()) for m in mixed) - 0.5 * float(np.log(var).sum())
    return float(energy / (h * w))


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(a * b))  # not np.vdot: a BLAS call whose threads cost more than the sum at these sizes


def _conjugate_gradients(apply, rhs: np.ndarray, x: np.ndarray, inverse_diagonal: np.ndarray) -> np.ndarray:
    """``CG_STEPS`` of Jacobi-preconditioned conjugate gradients for apply(x) = rhs from ``x``."""
    r = rhs - apply(x)
    z = inverse_diagonal * r
    p, rz = z, _dot(r, z)
    for _ in range(CG_STEPS):
        if rz <= 0.0:  # already solved (e.g. a flat image): a further step would divide by zero
            break
        ap = apply(p)
        step = rz / _dot(p, ap)
        x, r = x + step * p, r - step * ap
        z = inverse_diagonal * r
        rz, old = _dot(r, z), rz
        if rz <= 1e-20 * old:
            break
        p = z + (rz / old) * p
    return x
