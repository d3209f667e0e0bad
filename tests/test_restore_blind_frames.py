"""blind_deconvolve(kernel_size=None): the kernel's frame chosen from the data; estimate_kernel's l0_start."""
import numpy as np
import pytest

from minieye import restore
from minieye.restore import blind, blind_estimate, psf


@pytest.mark.parametrize("shape, expected", [
    ((256, 256), [(25, 25), (15, 15), (9, 9)]), ((512, 384, 3), [(25, 25), (15, 15), (9, 9)]),
    ((64, 80, 3), [(15, 15), (9, 9)]), ((40, 200), [(9, 9)]), ((20, 30), [(5, 5)]), ((8, 8), [(3, 3)]),
    ((2, 5), [(1, 1)])])
def test_auto_frames_are_capped_at_a_quarter_of_the_shorter_side(shape, expected):
    assert blind.auto_frames(shape) == expected


def test_without_a_kernel_size_the_data_chooses_the_frame(monkeypatch):
    # two frames (11 and 7 instead of 25, 15 and 9, for speed) for a 5 px horizontal streak
    monkeypatch.setattr(blind, "auto_frames", lambda shape: [(11, 11), (7, 7)])
    data = pytest.importorskip("skimage.data")
    truth = data.camera()[100:228, 180:308] / 255.0
    k = np.pad(psf.motion(5, 0), ((2, 2), (0, 0)))
    blurred = restore.blur(truth, k) + 0.002 * np.random.default_rng(0).standard_normal(truth.shape)
    result = restore.blind_deconvolve(blurred, full=True)
    tried = {name: score for name, score in result.scores.items() if "x" in name}
    assert sorted(tried) == ["11x11", "7x7"] and result.accepted
    side = int(min(tried, key=tried.get).split("x")[0])  # the frame that predicted held-out pixels best ...
    assert result.kernel.shape == (side, side) and result.kernel.sum() == pytest.approx(1.0)  # ... is returned
    middle = result.kernel.shape[0] // 2
    assert result.kernel[middle].sum() > 0.6  # horizontal
    assert restore.psnr(truth, result.image) > restore.psnr(truth, blurred) + 3  # measured +4.5 dB (7x7 chosen)


def test_without_a_kernel_size_an_initial_kernel_gives_the_frame():
    data = pytest.importorskip("skimage.data")
    truth = data.camera()[100:164, 180:244] / 255.0
    k = np.pad(psf.motion(5, 0), ((2, 2), (0, 0)))
    _, estimate = restore.blind_deconvolve(restore.blur(truth, k), initial_kernel=k, iterations=1)
    assert estimate.shape == (5, 5)
    with pytest.raises(ValueError, match="odd kernel sides"):
        restore.blind_deconvolve(truth, initial_kernel=np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"initial_kernel of shape \(kh, kw\); got initial_kernel.shape == \(5,\)"):
        restore.blind_deconvolve(truth, initial_kernel=np.ones(5))
    with pytest.raises(ValueError, match=r"^blind_deconvolve: expected initial_kernel convertible to a numeric array"):
        restore.blind_deconvolve(truth, initial_kernel=[[1, 2, 3], [1, 2]])  # was NumPy's inhomogeneous-shape error


def test_l0_start_sets_the_schedule_and_is_checked():
    data = pytest.importorskip("skimage.data")
    truth = data.camera()[100:164, 180:244] / 255.0
    blurred = restore.blur(truth, psf.box(3)) + 0.005 * np.random.default_rng(0).standard_normal(truth.shape)
    default = blind_estimate.estimate_kernel(blurred, 5, rounds=2)
    same = blind_estimate.estimate_kernel(blurred, 5, rounds=2, l0_start=blind_estimate.LAMBDA_START)
    higher = blind_estimate.estimate_kernel(blurred, 5, rounds=2, l0_start=8 * blind_estimate.LAMBDA_START)
    assert np.array_equal(default, same) and not np.array_equal(default, higher)
    for bad, error in ((0, ValueError), (-1e-3, ValueError), (np.nan, ValueError), (np.inf, ValueError),
                       ("high", TypeError), (True, TypeError)):
        with pytest.raises(error, match=r"^estimate_kernel: expected l0_start a positive real number; got"):
            blind_estimate.estimate_kernel(blurred, 5, l0_start=bad)


def test_the_progress_bar_is_closed_when_the_estimation_is_interrupted(monkeypatch):
    closed = []

    class Bar:
        def update(self, *args):
            pass

        def set_postfix(self, *args, **kwargs):
            pass

        def close(self):
            closed.append(True)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(blind, "progress_bar", lambda *args, **kwargs: Bar())
    monkeypatch.setattr(blind, "estimate_kernel", interrupted)
    data = pytest.importorskip("skimage.data")
    with pytest.raises(KeyboardInterrupt):
        restore.blind_deconvolve(data.camera()[100:164, 180:244] / 255.0, 5, progress=True)
    assert closed == [True]
