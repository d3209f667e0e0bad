"""Classic non-learned deconvolution with NumPy FFTs: inverse filter, Wiener, Richardson-Lucy.

Model: ``blurred = kernel (*) image + noise``, ``(*)`` a true convolution (see psf.py).

- Inverse filter: X = Y / H where |H| > threshold, 0 elsewhere (a truncated pseudo-inverse).
- Wiener-Hunt: X = conj(H) Y / (|H|^2 + balance |D|^2), D the transfer function of the
  regulariser (the 3x3 Laplacian by default, as in scikit-image; ``reg='identity'``
  gives the textbook Wiener filter with balance = noise-to-signal power ratio).
- Richardson-Lucy: x <- x * (k~ (*) (y / (k (*) x))), k~ the flipped kernel; the
  maximum-likelihood iteration for Poisson noise, started from a flat 0.5 image.

Boundaries (``boundary=``): FFTs make convolution periodic, so a photo blurred with
any other edge rule rings at its borders. 'reflect' (the default) extends the blurred
image by symmetric reflection (by twice the kernel size) before filtering and crops
the result, which removes most of that ringing. 'periodic' filters the image as it is
(Wiener/inverse: exactly scikit-image's ``wiener``), and for Richardson-Lucy 'zero'
treats the outside as black (exactly scikit-image's ``richardson_lucy``).

Oracles, for benchmarks: ``oracle_wiener`` and ``oracle_richardson_lucy`` choose the
balance / the iteration count by PSNR against the true image (an advantage no real user
has); ``on_padded_copy`` gives a periodic method the same symmetric extension.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import as_float_array, check_ndim, check_positive_int, fail, pair
from .psf import normalize_kernel

__all__ = ["inverse_filter", "wiener", "richardson_lucy", "transfer_function", "oracle_wiener", "oracle_richardson_lucy",
           "on_padded_copy"]


def transfer_function(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """rfft2 of ``kernel`` placed with its centre (k // 2) at the origin of a ``shape`` grid.

    Shapes: (kh, kw), (H, W) -> (H, W // 2 + 1) complex.
    """
    where = "transfer_function"
    kernel = as_float_array(kernel, where, "kernel", dtype=np.float64)
    check_ndim(kernel, 2, where, "kernel", "(kh, kw)")
    shape = pair(shape, where, "shape", minimum=1)
    if kernel.shape[0] > shape[0] or kernel.shape[1] > shape[1]:
        raise fail(where, f"a kernel no larger than shape {shape}", f"kernel.shape == {kernel.shape}, shape == {shape}")
    padded = np.zeros(shape)
    padded[:kernel.shape[0], :kernel.shape[1]] = kernel
    padded = np.roll(padded, (-(kernel.shape[0] // 2), -(kernel.shape[1] // 2)), axis=(0, 1))
    return np.fft.rfft2(padded)


def _prepare(image: Any, kernel: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    x = as_float_array(image, where, "image", dtype=np.float64)
    check_ndim(x, (2, 3), where, "image", "(H, W) or (H, W, C)")
    if not np.isfinite(x).all():
        raise fail(where, "finite pixel values", "NaN or Inf in image")
    k = normalize_kernel(kernel, where)
    if k.shape[0] > x.shape[0] or k.shape[1] > x.shape[1]:
        raise fail(where, "a kernel no larger than the image", f"kernel.shape == {k.shape}, image.shape == {x.shape}")
    return x, k


def _per_channel(fn, x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        return np.stack([fn(x[..., c]) for c in range(x.shape[2])], axis=-1)
    return fn(x)


def _extend(x: np.ndarray, k: np.ndarray, boundary: str, where: str, allowed: tuple[str, ...]):
    """Pad for the boundary rule; returns the padded plane and the crop back."""
    if boundary not in allowed:
        raise fail(where, "boundary one of " + ", ".join(repr(a) for a in allowed), f"boundary={boundary!r}")
    if boundary != "reflect":
        return x, (slice(None), slice(None))
    ph, pw = min(2 * k.shape[0], x.shape[0] - 1), min(2 * k.shape[1], x.shape[1] - 1)
    return (np.pad(x, ((ph, ph), (pw, pw)), mode="symmetric"),
            (slice(ph, ph + x.shape[0]), slice(pw, pw + x.shape[1])))


def _laplacian_tf(shape: tuple[int, int]) -> np.ndarray:
    lap = np.array([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
    return transfer_function(lap, shape)


def wiener(image: Any, kernel: Any, balance: float = 0.01, reg: str = "laplacian",
           boundary: str = "reflect") -> np.ndarray:
    """Wiener-Hunt deconvolution (see the module docstring for the formula).

    ``balance``: weight of the regulariser; larger is smoother. ``reg``: 'laplacian'
    or 'identity'. Shapes: (H, W) or (H, W, C) -> same, float64, not clipped.
    """
    where = "wiener"
    x, k = _prepare(image, kernel, where)
    if not balance >= 0:
        raise fail(where, "balance >= 0", f"balance={balance!r}")
    if reg not in ("laplacian", "identity"):
        raise fail(where, "reg 'laplacian' or 'identity'", f"reg={reg!r}")

    def plane(p: np.ndarray) -> np.ndarray:
        q, crop = _extend(p, k, boundary, where, ("reflect", "periodic"))
        h = transfer_function(k, q.shape)
        d2 = np.abs(_laplacian_tf(q.shape)) ** 2 if reg == "laplacian" else 1.0
        filt = np.conj(h) / (np.abs(h) ** 2 + balance * d2)
        return np.fft.irfft2(filt * np.fft.rfft2(q), s=q.shape)[crop]

    return _per_channel(plane, x)


def inverse_filter(image: Any, kernel: Any, threshold: float = 1e-2, boundary: str = "reflect") -> np.ndarray:
    """Truncated inverse filter: divide by H where |H| > ``threshold``, zero elsewhere.

    Shapes: (H, W) or (H, W, C) -> same, float64.
    """
    where = "inverse_filter"
    x, k = _prepare(image, kernel, where)
    if not threshold >= 0:
        raise fail(where, "threshold >= 0", f"threshold={threshold!r}")

    def plane(p: np.ndarray) -> np.ndarray:
        q, crop = _extend(p, k, boundary, where, ("reflect", "periodic"))
        h = transfer_function(k, q.shape)
        keep = np.abs(h) > threshold
        inv = np.zeros_like(h)
        inv[keep] = 1.0 / h[keep]
        return np.fft.irfft2(inv * np.fft.rfft2(q), s=q.shape)[crop]

    return _per_channel(plane, x)


def _linear_convolver(shape: tuple[int, int], k: np.ndarray):
    """'same'-size zero-boundary convolution with k and with flipped k, by FFT (scipy.signal.convolve's alignment)."""
    kh, kw = k.shape
    fshape = (shape[0] + kh - 1, shape[1] + kw - 1)
    hk = np.fft.rfft2(k, fshape)
    hf = np.fft.rfft2(k[::-1, ::-1], fshape)
    top, left = (kh - 1) // 2, (kw - 1) // 2
    crop = (slice(top, top + shape[0]), slice(left, left + shape[1]))

    def conv(x: np.ndarray, flipped: bool = False) -> np.ndarray:
        return np.fft.irfft2(np.fft.rfft2(x, fshape) * (hf if flipped else hk), s=fshape)[crop]

    return conv


def richardson_lucy(image: Any, kernel: Any, iterations: int = 30, boundary: str = "reflect",
                    eps: float = 1e-12) -> np.ndarray:
    """Richardson-Lucy deconvolution (see the module docstring); expects non-negative data.

    ``boundary='zero'`` reproduces ``skimage.restoration.richardson_lucy(image, psf,
    num_iter=iterations, clip=False)``. Shapes: (H, W) or (H, W, C) -> same, float64.
    """
    where = "richardson_lucy"
    x, k = _prepare(image, kernel, where)
    iterations = check_positive_int(iterations, where, "iterations")

    def plane(p: np.ndarray) -> np.ndarray:
        q, crop = _extend(p, k, boundary, where, ("reflect", "zero"))
        conv = _linear_convolver(q.shape, k)
        estimate = np.full(q.shape, 0.5)
        for _ in range(iterations):
            relative = q / (conv(estimate) + eps)
            estimate = estimate * conv(relative, flipped=True)
        return estimate[crop]

    return _per_channel(plane, x)


# --- Oracle baselines for benchmarks: each parameter chosen by scoring against the truth ---

def _scorer(truth: Any, shape: tuple[int, ...], clip: tuple[float, float] | None, where: str):
    t = as_float_array(truth, where, "truth", dtype=np.float64)
    if t.shape != shape:
        raise fail(where, f"truth with the image's shape {shape}", f"truth.shape == {t.shape}")
    span = float(clip[1] - clip[0]) if clip is not None else float(np.ptp(t)) or 1.0

    def score(estimate: np.ndarray) -> float:
        e = estimate if clip is None else np.clip(estimate, clip[0], clip[1])
        err = float(np.mean((e - t) ** 2))
        return float("inf") if err == 0 else 10.0 * np.log10(span * span / err)

    return score


def oracle_wiener(image: Any, kernel: Any, truth: Any, boundary: str = "reflect", reg: str = "laplacian",
                  clip: tuple[float, float] | None = (0.0, 1.0)) -> tuple[np.ndarray, float]:
    """Wiener-Hunt with the balance that maximises PSNR against ``truth`` (an oracle).

    Searches log10(balance) over [-7, 1] in steps of 0.25, then in steps of 0.025 around
    the best. PSNR is scored after clipping to ``clip`` (None: unclipped, range of truth).
    Returns (the restored image, clipped to ``clip``, and the balance).
    Shapes: image, truth (H, W) -> (H, W).
    """
    where = "oracle_wiener"
    x, k = _prepare(image, kernel, where)
    check_ndim(x, 2, where, "image", "(H, W)")
    score = _scorer(truth, x.shape, clip, where)
    if reg not in ("laplacian", "identity"):
        raise fail(where, "reg 'laplacian' or 'identity'", f"reg={reg!r}")
    q, crop = _extend(x, k, boundary, where, ("reflect", "periodic"))
    h = transfer_function(k, q.shape)
    d2 = np.abs(_laplacian_tf(q.shape)) ** 2 if reg == "laplacian" else 1.0
    spectrum, power = np.conj(h) * np.fft.rfft2(q), np.abs(h) ** 2
    cache: dict[float, tuple[float, np.ndarray]] = {}

    def run(log_balance: float) -> float:
        if log_balance not in cache:
            est = np.fft.irfft2(spectrum / (power + 10.0 ** log_balance * d2), s=q.shape)[crop]
            cache[log_balance] = (score(est), est)
        return cache[log_balance][0]

    coarse = max(np.arange(-7.0, 1.0001, 0.25), key=run)
    fine = max(coarse + np.arange(-0.25, 0.2501, 0.025), key=run)
    est = cache[fine][1]
    return (est if clip is None else np.clip(est, clip[0], clip[1])), float(10.0 ** fine)


def oracle_richardson_lucy(image: Any, kernel: Any, truth: Any, max_iterations: int = 500, patience: int = 40,
                           boundary: str = "reflect", clip: tuple[float, float] | None = (0.0, 1.0),
                           eps: float = 1e-12) -> tuple[np.ndarray, int]:
    """Richardson-Lucy stopped at the iteration with the best PSNR against ``truth`` (an oracle).

    Scores every iterate, and stops ``patience`` iterations after the best so far (or at
    ``max_iterations``). Negative input (noise) is clipped to 0, as RL needs. Returns
    (the best iterate, clipped to ``clip``, and its iteration count).
    Shapes: image, truth (H, W) -> (H, W).
    """
    where = "oracle_richardson_lucy"
    x, k = _prepare(image, kernel, where)
    check_ndim(x, 2, where, "image", "(H, W)")
    max_iterations = check_positive_int(max_iterations, where, "max_iterations")
    patience = check_positive_int(patience, where, "patience")
    score = _scorer(truth, x.shape, clip, where)
    q, crop = _extend(np.clip(x, 0.0, None), k, boundary, where, ("reflect", "zero"))
    conv = _linear_convolver(q.shape, k)
    estimate = np.full(q.shape, 0.5)
    best, best_n, best_est = -np.inf, 0, estimate[crop]
    for n in range(1, max_iterations + 1):
        estimate = estimate * conv(q / (conv(estimate) + eps), flipped=True)
        s = score(estimate[crop])
        if s > best:
            best, best_n, best_est = s, n, estimate[crop].copy()
        elif n - best_n >= patience:
            break
    return (best_est if clip is None else np.clip(best_est, clip[0], clip[1])), best_n


def on_padded_copy(method, image: Any, kernel: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``method(padded, kernel, *args, **kwargs)`` on a symmetric extension of ``image`` and crop.

    For FFT methods that treat the image as periodic (e.g. ``skimage.restoration.
    unsupervised_wiener``): the same extension as ``boundary='reflect'`` (twice the
    kernel's size per side). A tuple result has its first item cropped.
    Shapes: (H, W) -> (H, W).
    """
    where = "on_padded_copy"
    x, k = _prepare(image, kernel, where)
    check_ndim(x, 2, where, "image", "(H, W)")
    q, crop = _extend(x, k, "reflect", where, ("reflect",))
    out = method(q, kernel, *args, **kwargs)
    return (out[0][crop],) + tuple(out[1:]) if isinstance(out, tuple) else out[crop]
