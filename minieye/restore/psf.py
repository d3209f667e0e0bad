"""Blur kernels (point-spread functions), each a float64 (kh, kw) array summing to 1
(or (kd, kh, kw) for volumes: ``gaussian3d``).

A PSF ``k`` blurs an image by *true convolution*, as ``scipy.ndimage.convolve`` and
scikit-image do::

    blurred[i, j] = sum_{a, b} k[a, b] * image[i - a + ch, j - b + cw],   (ch, cw) = (kh // 2, kw // 2)

``F.conv2d`` computes a cross-correlation, so the network form of the same blur uses
the flipped kernel ``k[::-1, ::-1]`` (``as_conv_weight`` does that). Every kernel made
here has odd sides, so its centre is one pixel; ``normalize_kernel`` pads an even side
with a zero row/column at the end, which keeps the centre at ``k // 2`` (the convention
of ``scipy.ndimage.convolve`` for even kernels).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..checks import (as_float_array, check_allocation, check_bool, check_ndim, check_nonneg_int, check_positive_int,
                      check_real, fail, pair)

__all__ = ["box", "gaussian", "gaussian3d", "disk", "motion", "camera_shake", "load_kernel", "normalize_kernel", "odd_kernel", "as_conv_weight", "blur"]


def _odd(n: int) -> int:
    return n if n % 2 else n + 1


_RANKS = {2: "(kh, kw)", 3: "(kd, kh, kw)"}


def odd_kernel(kernel: Any, where: str = "odd_kernel", ndim: int | tuple[int, ...] = 2) -> np.ndarray:
    """``kernel`` as a finite float64 (kh, kw) array with odd sides, *not* rescaled.

    For filters that are not PSFs (a zero-sum edge filter, a k-dagger inverse).
    ``ndim`` (2 or (2, 3)) says which ranks are accepted; 3 is a (kd, kh, kw) volume PSF.
    Shapes: (kh, kw) -> (kh', kw') with kh' = kh rounded up to odd (zeros appended).
    """
    k = as_float_array(kernel, where, "kernel", dtype=np.float64)
    ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if k.ndim not in ranks:  # "2 dimensions" stays in the message for the 2-D callers' tests
        expected = " or ".join(f"{r} dimensions {_RANKS[r]}" for r in ranks)
        raise fail(where, f"kernel with {expected}", f"kernel.shape == {k.shape}")
    if k.size == 0 or not np.isfinite(k).all():
        got = f"kernel.shape == {k.shape}" if k.size == 0 else "NaN or Inf values"
        raise fail(where, "a non-empty, finite kernel", got)
    return np.pad(k, [(0, 1 - n % 2) for n in k.shape])


def normalize_kernel(kernel: Any, where: str = "normalize_kernel", ndim: int | tuple[int, ...] = 2) -> np.ndarray:
    """``kernel`` as a float64 (kh, kw) array with odd sides, summing to 1 (a PSF).

    ``ndim`` as for ``odd_kernel`` ((2, 3) also accepts (kd, kh, kw) volume PSFs).
    Shapes: (kh, kw) -> (kh', kw') with kh' = kh rounded up to odd.
    """
    k = odd_kernel(kernel, where, ndim)
    total = k.sum()
    if not total > 0:
        raise fail(where, "a kernel with a positive sum (a PSF)", f"sum {total:g}")
    return k / total


def box(size: int | tuple[int, int] = 5) -> np.ndarray:
    """A uniform (size x size) box blur; ``size`` odd (even sizes are zero-padded to odd)."""
    h, w = pair(size, "box", "size", minimum=1)
    check_allocation((h, w), np.float64, "box", "the kernel")
    return normalize_kernel(np.ones((h, w)), "box")


def gaussian(sigma: float = 1.5, size: int | None = None) -> np.ndarray:
    """An isotropic Gaussian, sampled at pixel centres; size defaults to 2*ceil(3 sigma)+1."""
    sigma = check_real(sigma, "gaussian", "sigma", positive=True)
    size = _odd(check_positive_int(size, "gaussian", "size") if size is not None else 2 * int(np.ceil(3 * sigma)) + 1)
    check_allocation((size, size), np.float64, "gaussian", "the kernel")
    r = np.arange(size) - size // 2
    g = np.exp(-0.5 * (r / sigma) ** 2)
    return normalize_kernel(np.outer(g, g), "gaussian")


def gaussian3d(sigma: float | tuple[float, float, float] = 1.0, size: int | tuple[int, int, int] | None = None
               ) -> np.ndarray:
    """A separable 3-D Gaussian PSF for (D, H, W) volumes, sampled at voxel centres.

    ``sigma`` per axis as (sd, sh, sw) or one number (anisotropic stacks, e.g. microscopy,
    are usually wider along D); ``size`` per axis defaults to 2*ceil(3 sigma)+1.
    Shapes: -> (kd, kh, kw), odd sides, summing to 1.
    """
    sigmas = (sigma,) * 3 if np.isscalar(sigma) else tuple(sigma)
    sizes = (size,) * 3 if size is None or np.isscalar(size) else tuple(size)
    if len(sigmas) != 3:
        raise fail("gaussian3d", "sigma > 0, one number or three", f"sigma={sigma!r}")
    sigmas = tuple(check_real(s, "gaussian3d", "sigma", positive=True) for s in sigmas)
    if len(sizes) != 3:
        raise fail("gaussian3d", "size as one int or three", f"size={size!r}")
    sizes = tuple(None if n is None else check_positive_int(n, "gaussian3d", "size") for n in sizes)
    axes = []
    for s, n in zip(sigmas, sizes):
        n = _odd(int(n) if n else 2 * int(np.ceil(3 * s)) + 1)
        r = np.arange(n) - n // 2
        axes.append(np.exp(-0.5 * (r / s) ** 2))
    return normalize_kernel(np.einsum("i,j,k->ijk", *axes), "gaussian3d", ndim=3)


def _supersample(inside, size: int, factor: int = 8) -> np.ndarray:
    """Area fraction of each pixel for which ``inside(y, x)`` holds (centre at 0)."""
    offsets = (np.arange(factor) + 0.5) / factor - 0.5
    c = np.arange(size) - size // 2
    y = (c[:, None] + offsets[None, :]).reshape(-1)
    yy, xx = np.meshgrid(y, y, indexing="ij")
    mask = inside(yy, xx).astype(np.float64)
    return mask.reshape(size, factor, size, factor).mean(axis=(1, 3))


def disk(radius: float = 3.0) -> np.ndarray:
    """Defocus blur: a uniform disk of ``radius`` pixels, anti-aliased at its rim."""
    radius = check_real(radius, "disk", "radius", positive=True)
    size = 2 * int(np.ceil(radius)) + 1
    check_allocation((size * 8, size * 8), np.float64, "disk", "the supersampled kernel")
    return normalize_kernel(_supersample(lambda y, x: x * x + y * y <= radius * radius, size), "disk")


def motion(length: float = 9.0, angle: float = 0.0) -> np.ndarray:
    """Linear motion blur: a segment of ``length`` pixels through the centre.

    ``angle`` in degrees, counter-clockwise from the +x (column) axis with rows
    pointing down, so ``angle=90`` is a vertical streak. The segment is one pixel
    wide and anti-aliased by supersampling.
    """
    if not check_real(length, "motion", "length", signed=True) >= 1:
        raise fail("motion", "length >= 1", f"length={length!r}")
    angle = check_real(angle, "motion", "angle", signed=True)
    theta = np.deg2rad(angle)
    c, s = np.cos(theta), -np.sin(theta)  # image rows grow downwards
    half = length / 2.0
    size = _odd(int(np.ceil(length)) + 2)
    check_allocation((size * 16, size * 16), np.float64, "motion", "the supersampled kernel")

    def inside(y, x):
        along = x * c + y * s
        across = -x * s + y * c
        return (np.abs(along) <= half) & (np.abs(across) <= 0.5)

    k = _supersample(inside, size, factor=16)
    # trim empty border rows/columns symmetrically (keeps the centre)
    while k.shape[0] > 1 and not k[0].any() and not k[-1].any():
        k = k[1:-1]
    while k.shape[1] > 1 and not k[:, 0].any() and not k[:, -1].any():
        k = k[:, 1:-1]
    return normalize_kernel(k, "motion")


def camera_shake(size: int = 15, seed: int = 0, steps: int = 64, momentum: float = 0.85) -> np.ndarray:
    """A random camera-shake PSF: the path of a random walk with momentum, in a (size, size) frame.

    The camera's velocity is updated by ``v <- momentum v + 2 (1 - momentum) w`` with w a
    random unit vector, for ``steps`` steps (so the path turns smoothly, sometimes doubles
    back, like a hand-held exposure); the path is centred on its centroid and scaled so
    its farthest point is one pixel inside the frame, and drawn by bilinear splatting at 8 samples
    per step (one pixel wide, equal time per step, so slow parts are brighter).
    ``size``: odd, >= 3 (even sizes become the next odd); ``seed``: an int for
    ``np.random.default_rng``. Shapes: -> (size, size), float64, >= 0, sum 1, centred on
    the frame's centre (its centroid), reaching to one pixel inside the frame's edge.
    """
    if not (isinstance(size, (int, np.integer)) and size >= 3):
        raise fail("camera_shake", "an integer size >= 3", f"size={size!r}")
    if not 0 <= check_real(momentum, "camera_shake", "momentum") < 1:
        raise fail("camera_shake", "0 <= momentum < 1", f"momentum={momentum!r}")
    steps = check_positive_int(steps, "camera_shake", "steps")
    size = _odd(int(size))
    rng = np.random.default_rng(check_nonneg_int(seed, "camera_shake", "seed"))
    angles = rng.uniform(0.0, 2 * np.pi, steps)
    v = np.array([np.cos(angles[0]), np.sin(angles[0])])
    points = [np.zeros(2)]
    for a in angles[1:]:
        v = momentum * v + (1 - momentum) * np.array([np.cos(a), np.sin(a)]) * 2.0
        points.append(points[-1] + v)
    path = np.array(points)
    t = np.linspace(0.0, len(path) - 1, 8 * len(path))
    path = np.stack([np.interp(t, np.arange(len(path)), path[:, i]) for i in range(2)], axis=1)
    path -= path.mean(axis=0)  # centroid (equal time per sample) at the frame's centre
    reach = np.abs(path).max()
    if reach > 0:
        path *= (size - 3) / 2 / reach  # the farthest sample a pixel inside the frame's edge
    k = np.zeros((size, size))
    pos = path + size // 2
    lo = np.floor(pos).astype(int)
    frac = pos - lo
    for dy in (0, 1):
        for dx in (0, 1):
            wgt = (frac[:, 0] if dy else 1 - frac[:, 0]) * (frac[:, 1] if dx else 1 - frac[:, 1])
            np.add.at(k, (lo[:, 0] + dy, lo[:, 1] + dx), wgt)
    return normalize_kernel(k, "camera_shake")


def load_kernel(path: str | os.PathLike) -> np.ndarray:
    """A PSF from a .npy file (2-D array) or an image file (grayscale; colour is averaged).

    The result is normalised to sum 1 (see ``normalize_kernel``).
    """
    where = f"load_kernel({os.fspath(path)!r})"
    if not os.path.exists(path):
        raise fail(where, "an existing file", "no such file")
    if os.fspath(path).lower().endswith(".npy"):
        k = np.load(path, allow_pickle=False)
    else:
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - pillow is in the demo extra
            raise fail(where, "pillow installed to read images", hint="pip install minieye[demo]") from None
        with Image.open(path) as im:
            k = np.asarray(im.convert("F"), dtype=np.float64)
    k = as_float_array(k, where, "kernel", dtype=np.float64)
    if k.ndim == 3:
        k = k.mean(axis=2)
    return normalize_kernel(k, where)


def as_conv_weight(kernel: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """The (1, 1, kh, kw) ``F.conv2d`` weight whose cross-correlation equals convolving with ``kernel``.

    A (kd, kh, kw) kernel gives the (1, 1, kd, kh, kw) ``Conv3D`` weight (flipped on every axis).
    """
    return np.ascontiguousarray(np.flip(np.asarray(kernel)), dtype=dtype)[None, None]


def check_channels_last(shape: tuple[int, ...], where: str, name: str = "blurred") -> None:
    """Refuse a channels-first colour image (C, H, W) given to a 2-D kernel: colour is (H, W, C)."""
    if len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4):
        raise fail(where, "a colour image channels-last, (H, W, C)", f"{name}.shape == {tuple(shape)}, "
                   "which looks channels-first", f"pass np.moveaxis({name}, 0, -1)")


def blur(image: Any, kernel: Any, mode: str = "reflect", normalize: bool = True) -> np.ndarray:
    """Convolve a (H, W) or (H, W, C) image with ``kernel`` (NumPy only).

    ``normalize=True`` (default) treats ``kernel`` as a PSF and rescales it to sum 1;
    ``normalize=False`` applies it as given (any finite kernel: an edge filter with
    zero sum, a k-dagger inverse from ``wiener_inverse_kernel``). ``mode``: 'reflect' (scipy.ndimage's 'reflect' = numpy's 'symmetric': edge pixel
    repeated), 'wrap' (periodic), 'constant' (zeros), 'nearest' (edge). The result has
    the image's shape, float64. Equals ``scipy.ndimage.convolve(image, kernel, mode=mode)``
    per channel.
    """
    where = "blur"
    k = normalize_kernel(kernel, where) if check_bool(normalize, where, "normalize") else odd_kernel(kernel, where)
    x = as_float_array(image, where, "image", dtype=np.float64)
    check_ndim(x, (2, 3), where, "image", "(H, W) or (H, W, C)")
    check_channels_last(x.shape, where, "image")  # else a (3, H, W) image blurs across its channels
    if k.shape[0] > x.shape[0] or k.shape[1] > x.shape[1]:
        raise fail(where, "a kernel no larger than the image",
                   f"kernel.shape == {k.shape}, image.shape == {x.shape}", "crop the kernel or pad the image")
    np_mode = {"reflect": "symmetric", "wrap": "wrap", "constant": "constant", "nearest": "edge",
               "mirror": "reflect"}.get(mode)
    if np_mode is None:
        raise fail(where, "mode one of 'reflect', 'mirror', 'wrap', 'constant', 'nearest'", f"mode={mode!r}")
    rh, rw = k.shape[0] // 2, k.shape[1] // 2
    pad = ((rh, rh), (rw, rw)) + (((0, 0),) if x.ndim == 3 else ())
    xp = np.pad(x, pad, mode=np_mode)
    out = np.zeros_like(x)
    h, w = x.shape[:2]
    flipped = k[::-1, ::-1]  # true convolution = correlation with the flipped kernel
    for a in range(k.shape[0]):
        for b in range(k.shape[1]):
            if flipped[a, b] != 0.0:
                out += flipped[a, b] * xp[a:a + h, b:b + w]
    return out
