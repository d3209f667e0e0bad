"""Image restoration: blur kernels, classic baselines, metrics and deconvolution as learning.

    from minieye import restore
    k = restore.psf.motion(9, 30)                      # a PSF, applied as a true convolution
    sharp = restore.deconvolve(blurred, k)             # TV-regularised, L-BFGS, no tuning needed
    clean = restore.denoise(noisy)                     # the shipped, minieye-trained denoiser
    print(restore.psnr(truth, sharp), restore.ssim(truth, sharp))

See docs/restoration.md.
"""
from . import psf
from .blind import blind_deconvolve
from .baselines import inverse_filter, richardson_lucy, transfer_function, wiener
from .budget import deconvolve
from .denoiser import denoise
from .deconvolve import Deconvolution, deconvolve_in_memory, default_tv_weight
from .inverse import SeparableKernel, separable, separable_network, wiener_inverse_kernel  # noqa: F401
from .filters import learn_filter
from .metrics import mse, psnr, ssim
from .noise import estimate_noise
from .psf import blur
from .intensity import Intensity
from .tiled import deconvolve_tiled

__all__ = [
    "psf", "blur", "deconvolve", "deconvolve_in_memory", "Deconvolution", "default_tv_weight", "blind_deconvolve", "learn_filter",
    "wiener", "richardson_lucy", "inverse_filter", "transfer_function",
    "psnr", "ssim", "mse", "estimate_noise",
    "wiener_inverse_kernel", "separable", "SeparableKernel", "separable_network",
    "deconvolve_tiled", "Intensity", "denoise", "train_denoiser",
]


def train_denoiser(images, **kwargs):  # type: ignore[no-untyped-def]
    """Train a denoiser on grey images in [0, 1]; see restore.denoiser_training.train_denoiser."""
    from .denoiser_training import train_denoiser as train
    return train(images, **kwargs)
