"""The tuning set of issue 12: the only images deconvolve's automatic choices were fitted on.

scikit-image's astronaut, camera, coins, shepp_logan_phantom, microaneurysms, lfw_subset and
smoothed binary_blobs; scikit-learn's sample images (china, flower); PyWavelets' aero and
ascent; matplotlib's grace_hopper.jpg, s1045.ima.gz, jacksboro_fault_dem.npz and
topobathy.npz; and two synthetic images. Every image is grayscale float64 in [0, 1].
"""
from __future__ import annotations

import numpy as np

__all__ = ["tuning_images", "TUNING_NAMES", "unit_grey"]


def unit_grey(x: np.ndarray) -> np.ndarray:
    """Shapes: (H, W) or (H, W, C) -> (H, W) float64, grey (Rec. 709 luma), stretched to [0, 1]."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        x = x[..., :3] @ np.array([0.2125, 0.7154, 0.0721])
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo)


def _skimage(name: str) -> np.ndarray:
    from skimage import data
    return unit_grey(getattr(data, name)())


def _lfw() -> np.ndarray:
    from skimage import data
    faces = data.lfw_subset()[:64]  # (64, 25, 25): an 8x8 mosaic
    return unit_grey(faces.reshape(8, 8, 25, 25).transpose(0, 2, 1, 3).reshape(200, 200))


def _blobs() -> np.ndarray:
    from scipy import ndimage
    from skimage import data
    return unit_grey(ndimage.gaussian_filter(data.binary_blobs(256, blob_size_fraction=0.1, rng=3).astype(float), 2.0))


def _sklearn(index: int) -> np.ndarray:
    from sklearn.datasets import load_sample_images
    return unit_grey(load_sample_images().images[index])


def _pywt(name: str) -> np.ndarray:
    import pywt
    return unit_grey(getattr(pywt.data, name)())


def _matplotlib(name: str) -> np.ndarray:
    from matplotlib import cbook
    if name == "grace_hopper.jpg":
        import matplotlib.pyplot as plt
        with cbook.get_sample_data(name) as f:
            return unit_grey(plt.imread(f, format="jpg"))
    if name == "s1045.ima.gz":
        with cbook.get_sample_data(name) as f:
            return unit_grey(np.frombuffer(f.read(), np.uint16).reshape(256, 256))
    data = cbook.get_sample_data(name)
    return unit_grey(data["elevation"] if "elevation" in data.files else data["topo"])


def _synthetic(kind: str) -> np.ndarray:
    yy, xx = np.mgrid[0:256, 0:256] / 256.0
    if kind == "shapes":  # flat regions, sharp edges, a ramp
        img = 0.2 + 0.3 * xx
        img[(yy - 0.35) ** 2 + (xx - 0.3) ** 2 < 0.04] = 0.85
        img[(yy > 0.6) & (yy < 0.85) & (xx > 0.5) & (xx < 0.9)] = 0.1
        return img
    rng = np.random.default_rng(12)  # "texture": a band-limited random field plus stripes
    from scipy import ndimage
    field = ndimage.gaussian_filter(rng.standard_normal((256, 256)), 1.2)
    return unit_grey(field + 0.3 * np.sin(40 * xx + 10 * yy))


TUNING_NAMES = ("astronaut", "camera", "coins", "shepp_logan_phantom", "microaneurysms", "lfw_subset",
                "blobs", "china", "flower", "aero", "ascent", "grace_hopper", "s1045", "jacksboro", "topobathy",
                "shapes", "texture")


def tuning_images() -> dict[str, np.ndarray]:
    """{name: (H, W) float64 image in [0, 1]} for every name in ``TUNING_NAMES``."""
    loaders = {
        "astronaut": lambda: _skimage("astronaut"), "camera": lambda: _skimage("camera"),
        "coins": lambda: _skimage("coins"), "shepp_logan_phantom": lambda: _skimage("shepp_logan_phantom"),
        "microaneurysms": lambda: _skimage("microaneurysms"), "lfw_subset": _lfw, "blobs": _blobs,
        "china": lambda: _sklearn(0), "flower": lambda: _sklearn(1), "aero": lambda: _pywt("aero"),
        "ascent": lambda: _pywt("ascent"), "grace_hopper": lambda: _matplotlib("grace_hopper.jpg"),
        "s1045": lambda: _matplotlib("s1045.ima.gz"), "jacksboro": lambda: _matplotlib("jacksboro_fault_dem.npz"),
        "topobathy": lambda: _matplotlib("topobathy.npz"),
        "shapes": lambda: _synthetic("shapes"), "texture": lambda: _synthetic("texture"),
    }
    return {name: loaders[name]() for name in TUNING_NAMES}
