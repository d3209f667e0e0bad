"""Spatial inverse kernels and their separable form (Xu et al., seed 001, eqs. (3)-(5)).

A blur is a true convolution ``y = k (*) x`` (the PSF convention of psf.py). With
K = F(k), the Wiener pseudo-inverse of eq. (3) is the transfer function

    K_dagger = (1 / K) * |K|^2 / (|K|^2 + 1/SNR)  =  conj(K) / (|K|^2 + 1/SNR)

and ``k_dagger = F^-1(K_dagger)`` is a spatial kernel with ``x ~ k_dagger (*) y`` (eq. 4).
The 1/SNR term bounds K_dagger where K vanishes, which makes k_dagger decay fast
enough to crop to a finite ``size`` (the "compact, finite support" of the seed).
Computed on a grid much larger than ``size`` and cropped at the centre, so the crop
is a truncation of the true inverse, not a wrapped-around (aliased) one.

Separability (eq. 5): the SVD ``k = sum_j s_j u_j v_j^T`` turns one 2-D convolution
into a sum of rank-1 terms, each a vertical 1-D convolution after a horizontal one:

    k (*) y = sum_j s_j u_j (*) (v_j^T (*) y)

Keeping the r largest singular values is the best rank-r approximation (Eckart-Young):
its Frobenius error is sqrt(sum_{j>r} s_j^2). Cost per pixel: r (kh + kw) instead of
kh kw. Truncating an inverse kernel also changes its sum, the gain at frequency zero:
a rank-1 approximation of a Wiener inverse may brighten the whole image two-fold, which
dwarfs every other error. ``keep_sum=True`` rescales the approximation to the
kernel's own sum (one scalar on the vertical factors), which restores the brightness. ``separable_network`` builds that sum as two minieye convolutions: a (1, kw)
Conv2D with r output channels (one per rank) and a (kh, 1) Conv2D that sums them,
the channel sum of a convolution being exactly the "sum over ranks" (an Add of r
branches, in one layer).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..checks import as_float_array, check_ndim, check_positive_int, fail
from ..layers import Conv2D
from ..network import Sequential

__all__ = ["wiener_inverse_kernel", "separable", "SeparableKernel", "separable_network"]


def _odd_size(size: Any, where: str) -> tuple[int, int]:
    sizes = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(sizes) != 2:
        raise fail(where, "size an int or an (h, w) pair", f"size={size!r}")
    out = tuple(check_positive_int(s, where, "size") for s in sizes)
    if any(s % 2 == 0 for s in out):
        raise fail(where, "odd sizes (the inverse kernel has one centre pixel)", f"size={size!r}",
                   "use size + 1")
    return out  # type: ignore[return-value]


def wiener_inverse_kernel(kernel: Any, snr: float, size: Any = None) -> np.ndarray:
    """The spatial Wiener pseudo-inverse k_dagger of a PSF (seed 001, eq. (3)), cropped to ``size``.

    ``kernel`` is a PSF applied by true convolution (odd sides, centre ``k // 2``);
    ``snr`` the signal-to-noise power ratio (1/snr regularises where |F(k)| is small:
    larger snr, sharper and longer inverse); ``size`` an odd int or (h, w) pair
    (default: 4 times the kernel side plus one). The result is in the same convention:
    ``scipy.ndimage.convolve(blurred, k_dagger)`` restores the image (not ``psf.blur``,
    which rescales a kernel to sum 1); for ``F.conv2d`` (cross-correlation) flip it,
    ``k_dagger[::-1, ::-1]``, or use ``separable_network``.

    Shapes: kernel (kh, kw) -> (size_h, size_w), float64.
    """
    where = "wiener_inverse_kernel"
    k = as_float_array(kernel, where, "kernel", np.float64)
    check_ndim(k, 2, where, "kernel", layout="kh, kw")
    if any(s % 2 == 0 for s in k.shape):
        raise fail(where, "a kernel with odd sides (one centre pixel)", f"kernel.shape == {k.shape}",
                   "pad it with psf.normalize_kernel")
    if not np.isfinite(k).all() or not np.any(k):
        raise fail(where, "a finite, non-zero kernel", "NaN, Inf or all zeros")
    if not (isinstance(snr, (int, float, np.integer, np.floating)) and np.isfinite(snr) and snr > 0):
        raise fail(where, "snr a positive finite number (signal / noise power)", f"snr={snr!r}")
    size_h, size_w = _odd_size(4 * max(k.shape) + 1 if size is None else size, where)
    # A grid far larger than the crop so that the periodic inverse barely wraps around.
    grid = [int(2 ** np.ceil(np.log2(4 * s + 2 * kk))) for s, kk in zip((size_h, size_w), k.shape)]
    padded = np.zeros(grid)
    padded[:k.shape[0], :k.shape[1]] = k
    padded = np.roll(padded, (-(k.shape[0] // 2), -(k.shape[1] // 2)), axis=(0, 1))  # centre at (0, 0)
    transfer = np.fft.rfft2(padded)
    inverse = np.conj(transfer) / (np.abs(transfer) ** 2 + 1.0 / float(snr))
    spatial = np.fft.irfft2(inverse, s=grid)
    spatial = np.roll(spatial, (size_h // 2, size_w // 2), axis=(0, 1))
    return np.ascontiguousarray(spatial[:size_h, :size_w])


class SeparableKernel(NamedTuple):
    """A kernel as a sum of outer products: ``sum_j outer(vertical[j], horizontal[j])``.

    ``vertical[j] = gain * sqrt(s_j) u_j`` and ``horizontal[j] = sqrt(s_j) v_j``; ``singular_values``
    holds every s_j (not only the kept ones) so that the truncation error is at hand;
    ``gain`` is 1 unless ``separable(..., keep_sum=True)`` rescaled the sum.

    Shapes: vertical (r, kh), horizontal (r, kw), singular_values (min(kh, kw),).
    """

    vertical: np.ndarray
    horizontal: np.ndarray
    singular_values: np.ndarray
    gain: float = 1.0

    @property
    def rank(self) -> int:
        return int(self.vertical.shape[0])

    def kernel(self) -> np.ndarray:
        """The rank-r 2-D kernel these pairs add up to. Shapes: -> (kh, kw)."""
        return np.einsum("ri,rj->ij", self.vertical, self.horizontal)

    @property
    def error(self) -> float:
        """Frobenius norm of the plain rank-r truncation's error: sqrt(sum of the dropped s_j^2)
        (with ``gain != 1`` the rescaled kernel differs from that truncation by the gain)."""
        return float(np.sqrt(np.sum(self.singular_values[self.rank:] ** 2)))


def separable(kernel: Any, rank: int = 1, keep_sum: bool = False) -> SeparableKernel:
    """Split a 2-D kernel by SVD into ``rank`` pairs of 1-D kernels (seed 001, eq. (5)).

    The best rank-r approximation in the Frobenius norm; ``rank`` may not exceed
    min(kh, kw). Works in either convention (flipping k flips every u_j and v_j).
    ``keep_sum``: rescale so that the approximation sums to what the kernel sums to
    (ignored when the truncated sum is about 0, where no finite gain would do).

    Shapes: kernel (kh, kw) -> SeparableKernel with vertical (rank, kh), horizontal (rank, kw).
    """
    where = "separable"
    k = as_float_array(kernel, where, "kernel", np.float64)
    check_ndim(k, 2, where, "kernel", layout="kh, kw")
    rank = check_positive_int(rank, where, "rank")
    if rank > min(k.shape):
        raise fail(where, f"rank <= min(kh, kw) = {min(k.shape)}", f"rank={rank}")
    if not np.isfinite(k).all():
        raise fail(where, "a finite kernel", "NaN or Inf entries")
    u, s, vt = np.linalg.svd(k)
    root = np.sqrt(s[:rank])
    vertical = u[:, :rank].T * root[:, None]
    horizontal = vt[:rank] * root[:, None]
    # SVD signs are arbitrary; make each horizontal factor sum to >= 0 for reproducible output.
    flip = np.where(horizontal.sum(axis=1) < 0, -1.0, 1.0)
    vertical, horizontal = vertical * flip[:, None], horizontal * flip[:, None]
    gain = 1.0
    if keep_sum:
        truncated = float(np.sum(vertical.sum(axis=1) * horizontal.sum(axis=1)))
        if abs(truncated) > 1e-12 * max(np.abs(k).sum(), 1e-300):
            gain = float(k.sum()) / truncated
    return SeparableKernel(vertical * gain, horizontal, s, gain)


def separable_network(kernel: Any, rank: int = 1, channels: int = 1, padding: Any = "same",
                      convention: str = "convolution", keep_sum: bool = False, dtype: Any = None) -> Sequential:
    """A minieye network of 1-D convolutions computing ``kernel`` at rank ``rank``.

    Sequential(Conv2D(channels, channels*rank, (1, kw)), Conv2D(channels*rank, channels, (kh, 1))),
    both grouped by channel and without bias: the first makes one horizontally filtered
    copy per rank, the second filters each vertically and sums the copies. With
    ``convention='convolution'`` (default) it computes the true convolution ``kernel (*) x``
    (the PSF convention, e.g. with ``wiener_inverse_kernel``'s output); with
    ``'correlation'`` it computes ``F.conv2d(x, kernel)``. ``padding`` 'same' (odd
    kernels) or 'valid' / 0; ``keep_sum`` as in ``separable``. The weights are ordinary
    Parameters, ready to fine-tune.

    Shapes: x (N, channels, H, W) -> (N, channels, H', W') (H' = H for 'same', H - kh + 1 for 'valid').
    """
    where = "separable_network"
    if convention not in ("convolution", "correlation"):
        raise fail(where, "convention 'convolution' or 'correlation'", f"convention={convention!r}")
    if padding not in ("same", "valid", 0):
        raise fail(where, "padding 'same', 'valid' or 0", f"padding={padding!r}")
    channels = check_positive_int(channels, where, "channels")
    k = as_float_array(kernel, where, "kernel", np.float64)
    check_ndim(k, 2, where, "kernel", layout="kh, kw")
    if convention == "convolution":
        k = k[::-1, ::-1]
    kh, kw = k.shape
    if padding == "same" and (kh % 2 == 0 or kw % 2 == 0):
        raise fail(where, "odd kernel sides with padding='same'", f"kernel.shape == {k.shape}", "use padding='valid'")
    parts = separable(k, rank, keep_sum)
    same = padding == "same"
    rows = Conv2D(channels, channels * rank, (1, kw), padding=(0, kw // 2) if same else 0, groups=channels,
                  bias=False, dtype=dtype, name="separable.rows")
    cols = Conv2D(channels * rank, channels, (kh, 1), padding=(kh // 2, 0) if same else 0, groups=channels,
                  bias=False, dtype=dtype, name="separable.columns")
    # rows.weight (channels*rank, 1, 1, kw); cols.weight (channels, rank, kh, 1): the same pairs per channel.
    rows.weight.value[...] = np.tile(parts.horizontal, (channels, 1))[:, None, None, :]
    cols.weight.value[...] = np.broadcast_to(parts.vertical[None, :, :, None], (channels, rank, kh, 1))
    return Sequential(rows, cols, name=f"separable_rank{rank}")
