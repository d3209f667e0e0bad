"""The tuning corpus of issue 12 as grey float32 images in [0, 1] (for training the denoiser only).

scikit-image: astronaut, camera, coins, shepp_logan_phantom, microaneurysms, lfw_subset
(a few faces, tiled), binary_blobs (smoothed); scikit-learn: china, flower; PyWavelets:
aero, ascent; matplotlib: grace_hopper, the s1045 MRI slice, jacksboro_fault_dem and
topobathy (elevation, scaled by their range); synthetic: random rectangles, discs and
ramps; optionally (``smooth=N``) N smooth, low-contrast synthetic images (smooth random
fields with soft-edged blobs, like cells and retinas), the kind the network found hardest.
Never any other scikit-image image: those are the held-out set.
"""
from __future__ import annotations

import gzip

import numpy as np

from tune_images import unit_grey


def _grey(image: np.ndarray) -> np.ndarray:
    return unit_grey(image).astype(np.float32)


def _synthetic(seed: int, size: int = 256) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    image = rng.uniform(0.2, 0.8) + rng.uniform(-0.3, 0.3) * xx + rng.uniform(-0.3, 0.3) * yy
    for _ in range(12):
        a, b = sorted(rng.uniform(0, 1, 2)), sorted(rng.uniform(0, 1, 2))
        if rng.integers(2):
            shape = (yy > a[0]) & (yy < a[1]) & (xx > b[0]) & (xx < b[1])
        else:
            shape = (yy - a[0]) ** 2 + (xx - b[0]) ** 2 < rng.uniform(0.002, 0.04)
        image = np.where(shape, rng.uniform(0, 1), image)
    return _grey(image)


def _smooth_synthetic(seed: int, size: int = 256) -> np.ndarray:
    """A smooth random field (correlation length 4-16 px, contrast 0.02-0.15) plus soft blobs, in [0, 1]."""
    from scipy import ndimage
    rng = np.random.default_rng(1000 + seed)
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), rng.uniform(4, 16), mode="wrap")
    image = field / field.std() * rng.uniform(0.02, 0.15) + rng.uniform(0.2, 0.8)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(int(rng.integers(3, 12))):
        cy, cx = rng.uniform(0, size, 2)
        distance = np.hypot(yy - cy, xx - cx) - rng.uniform(6, 40)
        image += rng.uniform(-0.25, 0.25) / (1 + np.exp(np.clip(distance / rng.uniform(1, 5), -50, 50)))
    return np.clip(image, 0, 1).astype(np.float32)


def _matplotlib() -> list[np.ndarray]:
    from matplotlib import cbook
    from matplotlib import image as mpimg
    hopper = _grey(mpimg.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    with gzip.open(cbook.get_sample_data("s1045.ima.gz", asfileobj=False)) as f:
        mri = _grey(np.frombuffer(f.read(), np.uint16).reshape(256, 256))
    dem = _grey(cbook.get_sample_data("jacksboro_fault_dem.npz")["elevation"])
    topo = _grey(cbook.get_sample_data("topobathy.npz")["topo"])
    return [hopper, mri, dem, topo]


def load_corpus(smooth: int = 0) -> dict[str, np.ndarray]:
    """name -> (H, W) float32 image in [0, 1]; ``smooth`` extra smooth synthetic images."""
    import pywt
    from scipy import ndimage
    from skimage import data
    from sklearn.datasets import load_sample_images
    images = {name: _grey(getattr(data, name)()) for name in
              ("astronaut", "camera", "coins", "shepp_logan_phantom", "microaneurysms")}
    faces = data.lfw_subset()[:16]
    images["lfw_subset"] = _grey(np.block([[faces[4 * r + c] for c in range(4)] for r in range(4)]))
    images["binary_blobs"] = _grey(ndimage.gaussian_filter(data.binary_blobs(256, rng=0).astype(float), 1.5))
    china, flower = load_sample_images().images
    images["china"], images["flower"] = _grey(china), _grey(flower)
    images["aero"], images["ascent"] = _grey(pywt.data.aero()), _grey(pywt.data.ascent())
    for name, image in zip(("grace_hopper", "s1045", "jacksboro_fault_dem", "topobathy"), _matplotlib()):
        images[name] = image
    for seed in range(4):
        images[f"synthetic{seed}"] = _synthetic(seed)
    for seed in range(smooth):
        images[f"smooth{seed}"] = _smooth_synthetic(seed)
    return images



def train_validation_split(corpus: dict[str, np.ndarray]) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Training parts (the left 3/4 of every image) and validation crops (the centre of the right quarter).

    Crops are up to 96x96; the synthetic images, and images whose quarter is under 48
    pixels wide, give no validation crop. Shapes: (H, W) -> (H, 3 W // 4) and (h, w) float64.
    """
    train, valid = [], {}
    for name, image in corpus.items():
        cut = image.shape[1] * 3 // 4
        train.append(image[:, :cut])
        rest = image[:, cut:]
        if name.startswith(("synthetic", "smooth")) or rest.shape[1] < 48:
            continue
        h, w = min(96, rest.shape[0]), min(96, rest.shape[1])
        top, left = (rest.shape[0] - h) // 2, (rest.shape[1] - w) // 2
        valid[name] = rest[top:top + h, left:left + w].astype(np.float64)
    return train, valid


if __name__ == "__main__":
    for name, image in load_corpus().items():
        print(f"{name:22s} {image.shape} {image.dtype} {image.min():.2f}..{image.max():.2f}")
