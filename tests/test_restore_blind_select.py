"""blind_select: the held-out prediction that picks the kernel frame and refuses to deblur what is not blurred."""
import numpy as np
import pytest

from minieye import restore
from minieye.restore import blind_select, psf


def _camera(noise=0.01, seed=0, k=None):
    data = pytest.importorskip("skimage.data")
    truth = data.camera()[100:228, 180:308] / 255.0  # 128x128: tripod, coat, sky and grass
    blurred = truth if k is None else restore.blur(truth, k)
    return truth, blurred + noise * np.random.default_rng(seed).standard_normal(truth.shape)


@pytest.mark.parametrize("bound, expected", [
    ((25, 25), [(25, 25), (17, 17)]), ((13, 9), [(13, 9), (9, 7)]), ((7, 7), [(7, 7), (5, 5)]),
    ((5, 5), [(5, 5)]), ((1, 1), [(1, 1)]), ((9, 3), [(9, 3), (7, 3)])])
def test_frames_are_the_bound_and_a_smaller_odd_one(bound, expected):
    assert blind_select.frames(bound) == expected


def test_embed_centres_a_kernel_in_a_larger_frame():
    k = np.arange(1.0, 16.0).reshape(3, 5)
    out = blind_select.embed(k, (9, 7))
    assert out.shape == (9, 7) and out.sum() == k.sum()
    assert np.array_equal(out[3:6, 1:6], k) and out[4, 3] == k[1, 2]  # centre on centre


def test_paired_evidence_counts_standard_errors():
    rng = np.random.default_rng(0)
    reference = rng.exponential(1.0, 4000)
    assert blind_select.paired_evidence(reference, reference) == 0.0
    better = reference * 0.8
    assert blind_select.paired_evidence(reference, better) > 10
    assert blind_select.paired_evidence(better, reference) < -10
    noisy = reference + 0.05 * rng.standard_normal(reference.size)  # no real difference
    assert abs(blind_select.paired_evidence(reference, noisy)) < 3


def test_the_true_kernel_beats_no_blur_and_a_wrong_one():
    k = psf.motion(9, 0)
    _, blurred = _camera(k=k)
    choice = blind_select.select_kernel(blurred, [psf.motion(9, 90), k], 0.01)
    assert choice.best == choice.chosen == 1 and choice.reason == ""
    assert choice.scores[1] < min(choice.delta_score, choice.minimal_score, choice.scores[0])
    assert choice.evidence > blind_select.EVIDENCE_MIN  # measured 14.4 (over the minimal blur)


def test_a_sharp_photo_is_returned_as_it_is_with_the_reason():
    truth, noisy = _camera()  # not blurred at all: any kernel only adds ringing
    result = restore.blind_deconvolve(noisy, 7, full=True)
    assert not result.accepted and "no kernel predicts held-out pixels clearly better" in result.reason
    assert np.array_equal(result.image, noisy)
    assert set(result.scores) == {"no blur", "minimal blur", "7x7", "5x5"}
    assert result.evidence < blind_select.EVIDENCE_MIN
    # measured held-out errors: the minimal blur 4.5, no blur 5.6, this branch's estimates 18.6 and 12.4
    # (evidence -11.4); blindk's near-delta estimates 4.4 and 4.6 would have beaten the delta alone


def test_a_near_delta_kernel_on_a_sharp_photo_is_refused():
    # an estimator's typical answer on an unblurred photo; it beats the delta alone (held-out error 12.8 against
    # 10.2 here: with a delta a hidden pixel is inpainted by the prior, with any spread it is read from its
    # neighbours) but not clearly the minimal blur (10.4); accepted, it cost 11.7 dB
    _, noisy = _camera()
    k = np.zeros((7, 7))
    k[2, 3], k[4, 3] = 0.1, 0.07
    k[3, 2:6] = [0.11, 0.56, 0.12, 0.04]
    choice = blind_select.select_kernel(noisy, [k / k.sum()], 0.01)
    assert choice.scores[0] < choice.minimal_score < choice.delta_score
    assert choice.chosen is None and "clearly better than no blur" in choice.reason
    assert choice.evidence < blind_select.EVIDENCE_MIN
