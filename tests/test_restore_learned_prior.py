"""deconvolve(prior='learned') internals and prior='auto' (the held-out choice between learned and hand-made)."""
import numpy as np
import pytest

from minieye import restore
from minieye.restore import learned_prior, psf, regweight
from minieye.restore.deconvolve import central_choice
from minieye.restore.intensity import working_units

data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def scene():
    """A held-out image (not in the tuning corpus), grey, in [0, 1]: 72x72, so that 'valid' crops are 64x64 or less."""
    return data.moon()[200:272, 200:272] / 255.0


def test_hidden_pixels_never_reach_the_estimate(scene):
    k = psf.motion(5, 45)
    y = restore.blur(scene[:40, :40], k, mode="reflect") + 0.01 * np.random.default_rng(0).standard_normal((40, 40))
    hidden = np.random.default_rng(1).random(y.shape) < 0.2
    changed = np.where(hidden, 1.0 - y, y)  # the hidden pixels' values, replaced
    first, prediction = learned_prior.hqs(y, k, 0.01, (0.0, 1.0), iterations=4, hidden=hidden)
    second, _ = learned_prior.hqs(changed, k, 0.01, (0.0, 1.0), iterations=4, hidden=hidden)
    np.testing.assert_allclose(first, second, atol=1e-9)
    visible, _ = learned_prior.hqs(changed, k, 0.01, (0.0, 1.0), iterations=4)
    assert np.abs(visible - first).max() > 0.05  # without the mask the wrong values do matter
    assert prediction.shape == y.shape and np.abs(prediction - y)[~hidden].std() < 0.03


def test_hqs_starts_from_the_data_or_from_a_given_estimate(scene):
    k = psf.box(5)
    truth = scene[:40, :40]
    y = restore.blur(truth, k, mode="reflect") + 0.01 * np.random.default_rng(6).standard_normal(truth.shape)
    default, _ = learned_prior.hqs(y, k, 0.01, (0.0, 1.0), iterations=3)
    np.testing.assert_array_equal(default, learned_prior.hqs(y, k, 0.01, (0.0, 1.0), iterations=3, start=y)[0])
    informed, _ = learned_prior.hqs(y, k, 0.01, (0.0, 1.0), iterations=3, start=truth)  # a far better start
    assert np.abs(informed - default).max() > 1e-3  # it is used (the first data steps weigh the data most)
    gentle = learned_prior.Schedule(3, 0.03, learned_prior.LAMBDA)  # from 0.03: the data weigh less at first
    assert restore.psnr(truth, learned_prior.hqs(y, k, 0.01, (0.0, 1.0), start=truth, schedule=gentle)[0]) > \
        restore.psnr(truth, learned_prior.hqs(y, k, 0.01, (0.0, 1.0), schedule=gentle)[0]) + 0.5


def test_hqs_follows_its_schedule_and_the_blend_runs_the_warm_one(scene):
    k = psf.box(5)
    truth = scene[:40, :40]
    y = restore.blur(truth, k, mode="reflect") + 0.01 * np.random.default_rng(7).standard_normal(truth.shape)
    hand = restore.deconvolve(y, k, noise_sigma=0.01, prior="nonlocal")
    default = learned_prior.hqs(y, k, 0.01, (0.0, 1.0), start=hand, iterations=3)[0]
    cold = learned_prior.Schedule(3, learned_prior.START_SIGMA, learned_prior.LAMBDA)
    np.testing.assert_array_equal(default, learned_prior.hqs(y, k, 0.01, (0.0, 1.0), start=hand, schedule=cold)[0])
    for other in (cold._replace(start_sigma=0.04), cold._replace(lam=0.3), cold._replace(end=2.0)):
        assert np.abs(learned_prior.hqs(y, k, 0.01, (0.0, 1.0), start=hand, schedule=other)[0] - default).max() > 1e-4
    blend, learned = learned_prior.blend_learned(y, k, 0.01, (0.0, 1.0), "test", hand, 0.25)
    np.testing.assert_array_equal(learned, learned_prior.hqs(y, k, 0.01, (0.0, 1.0), start=hand,
                                                             schedule=learned_prior.WARM)[0])
    np.testing.assert_allclose(blend, 0.25 * learned + 0.75 * hand)


def test_the_scene_beyond_the_border_is_unknown_not_mirrored(scene):
    """A crop of a larger blurred scene (the camera saw what lies beyond): no border artefacts."""
    from scipy.signal import fftconvolve
    k = psf.motion(9, 45)
    valid = fftconvolve(scene, k, mode="valid")  # 64x64, each pixel from the scene only
    r = k.shape[0] // 2
    truth = scene[r:-r, r:-r]
    y = valid + 0.01 * np.random.default_rng(2).standard_normal(valid.shape)
    sharp = restore.deconvolve(y, k, noise_sigma=0.01, prior="learned")
    ring = np.ones(truth.shape, bool)
    ring[8:-8, 8:-8] = False
    err = (sharp - truth) ** 2
    assert restore.psnr(truth, sharp) > restore.psnr(truth, y) + 2.0
    assert err[ring].mean() < 2.0 * err[~ring].mean(), (err[ring].mean(), err[~ring].mean())


def test_the_default_prior_is_auto():
    import inspect
    for entry in (restore.deconvolve, restore.deconvolve_in_memory, restore.deconvolve_tiled):
        assert inspect.signature(entry).parameters["prior"].default == "auto", entry


def test_blend_share_is_the_held_out_least_squares_share_clipped_to_0_1():
    rng = np.random.default_rng(4)
    learned, handmade = rng.random(500), rng.random(500)
    assert regweight.blend_share(learned, handmade, 0.3 * learned + 0.7 * handmade) == pytest.approx(0.3)
    assert regweight.blend_share(learned, handmade, 2 * handmade - learned) == 0.0  # beyond the hand-made end
    assert regweight.blend_share(learned, handmade, 2 * learned - handmade) == 1.0
    assert regweight.blend_share(learned, learned, handmade) == 0.0  # nothing to blend


def test_learned_share_lifts_the_held_out_share_and_trusts_the_learned_prior_where_its_proxy_fit_misses():
    power, cut, floor = regweight.SHARE_POWER, regweight.PROXY_MISS_RATIO, regweight.PROXY_MISS_SHARE
    assert 0 < power < 1 and cut > 1 and 0 < floor <= 1
    assert regweight.learned_share(0.25, 1.0, 1.0) == pytest.approx(0.25 ** power) and 0.25 ** power > 0.25
    assert regweight.learned_share(0.0, 0.9, 1.0) == 0.0 and regweight.learned_share(1.0, 1.0, 1.0) == 1.0
    assert regweight.learned_share(0.25, cut * 1.0, 1.0) == pytest.approx(0.25 ** power)  # at the cut: not raised
    assert regweight.learned_share(0.0, cut * 1.01, 1.0) == floor  # the learned prior's score far above
    assert regweight.learned_share(1.0, cut * 1.01, 1.0) == 1.0  # never lowered


def test_the_default_blends_the_priors_as_the_held_out_pixels_say(scene):
    truth = scene[:64, :64]
    k = psf.box(5)
    y = restore.blur(truth, k, mode="reflect") + 0.02 * np.random.default_rng(3).standard_normal(truth.shape)
    auto, info = restore.deconvolve(y, k, full=True)
    c, share = info.choice, info.learned_share
    assert info.weight_source == "auto" and np.isfinite(c.learned_score) and np.isfinite(c.handmade_score)
    assert c.learned_wins == (c.learned_score < c.handmade_score) and share == c.learned_share and 0 <= share <= 1
    # the evidence: the raw held-out share is the proxy's least-squares share, the share its calibration
    p = c.proxy
    assert p["observed"].shape == p["learned"].shape == p["handmade"].shape == p["hidden"].shape == (1, 1, 64, 64)
    hidden = p["hidden"]
    assert c.held_out_share == regweight.blend_share(p["learned"][hidden], p["handmade"][hidden], p["observed"][hidden])
    assert share == regweight.learned_share(c.held_out_share, c.learned_score, c.handmade_score)
    gap = np.linalg.norm(p["learned"][hidden] - p["handmade"][hidden])
    assert c.share_error == pytest.approx(info.sigma / gap, rel=1e-6) and 0 < c.share_error < 1
    handmade = restore.deconvolve(y, k, prior="nonlocal")
    if share == 1 or share == 0:  # one prior ran
        np.testing.assert_allclose(auto, restore.deconvolve(y, k, prior="learned") if share else handmade, atol=1e-6)
    else:  # both ran, the learned one from the hand-made restoration; the record keeps them
        _, _, box, _ = working_units(y, y.dtype, None, "auto", None, None, "test")
        learned = learned_prior.deconvolve_learned(y, k / k.sum(), info.sigma, box, start=handmade,
                                                   schedule=learned_prior.WARM)
        np.testing.assert_allclose(info.parts["learned"], learned, atol=1e-6)
        np.testing.assert_allclose(info.parts["handmade"], handmade, atol=1e-6)
        np.testing.assert_allclose(auto, share * learned + (1 - share) * handmade, atol=1e-6)
    assert info.family == ("learned" if share == 1 else c.family)
    given = restore.deconvolve(y, k, tv_weight=1e-3, iterations=5, full=True)[1]  # no choice: the hand-made prior
    assert given.family == "tv" and given.choice is None and given.learned_share == 0


def test_tiled_runs_blend_every_tile_with_the_share_chosen_on_the_centre(scene, monkeypatch):
    import importlib
    method = importlib.import_module("minieye.restore.deconvolve")  # the module (restore.deconvolve is the function)
    y = restore.blur(scene[:48, :48], psf.box(3), mode="reflect")
    y = y + 0.02 * np.random.default_rng(5).standard_normal(y.shape)
    fixed = regweight.WeightChoice(2e-3, False, learned_share=0.25)
    monkeypatch.setattr(method, "auto_weight", lambda *args, **kwargs: fixed)
    settings = dict(tile=24, halo=8, noise_sigma=0.02, iterations=20)
    blended, info = restore.deconvolve_tiled(y, psf.box(3), full=True, **settings)
    # each tile as untiled: its hand-made restoration, then the learned one from it, blended
    given = restore.deconvolve_tiled(y, psf.box(3), prior="local", tv_weight=2e-3, learned_share=0.25, **settings)
    handmade = restore.deconvolve_tiled(y, psf.box(3), prior="local", tv_weight=2e-3, **settings)
    np.testing.assert_allclose(blended, given, atol=1e-6)
    assert np.abs(blended - handmade).max() > 1e-3
    assert info.weights[0][0] == 2e-3 and info.learned_share == 0.25
    whole, part = restore.deconvolve(y, psf.box(3), prior="local", tv_weight=2e-3, learned_share=0.25,
                                     noise_sigma=0.02, iterations=20, full=True)
    np.testing.assert_allclose(whole, 0.25 * part.parts["learned"] + 0.75 * part.parts["handmade"], atol=1e-6)
    assert part.learned_share == 0.25 and part.choice is None
    for bad in (1.5, -0.1):
        with pytest.raises(ValueError, match="learned_share"):
            restore.deconvolve(y, psf.box(3), learned_share=bad)
    with pytest.raises(ValueError, match="learned_share"):
        restore.deconvolve(y, psf.box(3), prior="learned", learned_share=0.5)


def test_tiled_runs_keep_the_learned_prior():
    weight, prior, terms, share = central_choice(lambda at: np.zeros((at[1] - at[0], at[3] - at[2])), (64, 64),
                                                 psf.box(3), 0.01, (0.0, 1.0), {"prior": "learned"})
    assert prior == "learned" and terms is None and share == 0


def test_ctrl_c_in_the_learned_part_keeps_the_hand_made_restoration(scene, monkeypatch):
    import importlib
    method = importlib.import_module("minieye.restore.deconvolve")
    monkeypatch.setattr(method, "auto_weight", lambda *args, **kwargs: regweight.WeightChoice(2e-3, False,
                                                                                             learned_share=0.5))
    y = restore.blur(scene[:32, :32], psf.box(3), mode="reflect")
    monkeypatch.setattr(learned_prior, "deconvolve_learned_image", lambda *args, start=None, **kwargs: start)
    _, finished = restore.deconvolve(y, psf.box(3), noise_sigma=0.02, full=True)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(learned_prior, "deconvolve_learned_image", interrupted)
    with pytest.warns(RuntimeWarning, match="interrupted during the learned prior"):
        out, info = restore.deconvolve(y, psf.box(3), noise_sigma=0.02, full=True)
    assert info.learned_share == 0 and info.parts is None and info.interrupted and not finished.interrupted
    np.testing.assert_array_equal(out, finished.parts["handmade"])


def test_a_stopped_hand_made_part_is_returned_without_the_learned_part(scene, monkeypatch):
    import importlib
    method = importlib.import_module("minieye.restore.deconvolve")
    monkeypatch.setattr(method, "auto_weight", lambda *args, **kwargs: regweight.WeightChoice(2e-3, False,
                                                                                             learned_share=0.5))

    def never(*args, **kwargs):
        raise AssertionError("the learned part ran after the hand-made part was stopped")
    monkeypatch.setattr(learned_prior, "deconvolve_learned_image", never)
    y = restore.blur(scene[:32, :32], psf.box(3), mode="reflect")
    out, info = restore.deconvolve(y, psf.box(3), noise_sigma=0.02, timeout=1e-9, full=True)
    assert info.result.stop_reason == "timeout" and info.learned_share == 0 and info.parts is None
    assert out.shape == y.shape and np.isfinite(out).all()


def test_ctrl_c_in_prior_learned_returns_the_estimate_reached(scene, monkeypatch):
    y = restore.blur(scene[:32, :32, None] * np.array([1.0, 0.8, 0.6]), psf.box(3), mode="reflect")
    finished = restore.deconvolve(y, psf.box(3), prior="learned", noise_sigma=0.02)
    calls, reached = [], []
    clip, denoise = learned_prior.clip_to_box, learned_prior._denoise_views

    def recorded(z, box):
        reached.append(clip(z, box))
        return reached[-1]

    def interrupted_in_the_second_channel(*args):
        calls.append(1)
        if len(calls) == learned_prior.ITERATIONS + 3:  # its third iteration
            raise KeyboardInterrupt
        return denoise(*args)
    monkeypatch.setattr(learned_prior, "clip_to_box", recorded)
    monkeypatch.setattr(learned_prior, "_denoise_views", interrupted_in_the_second_channel)
    with pytest.warns(RuntimeWarning, match="interrupted during the learned prior's iterations"):
        out, info = restore.deconvolve(y, psf.box(3), prior="learned", noise_sigma=0.02, full=True)
    assert info.interrupted and out.shape == y.shape
    np.testing.assert_allclose(out[..., 0], finished[..., 0], atol=1e-12)  # the channel that finished
    pad = 3 + learned_prior.MIN_PAD
    np.testing.assert_allclose(out[..., 1], reached[-1][pad:-pad, pad:-pad], atol=1e-12)  # after two iterations
    np.testing.assert_allclose(out[..., 2], y[..., 2], atol=1e-12)  # not reached: the data


def test_very_smooth_images_get_a_smaller_lift_of_the_held_out_share(scene):
    # the rule alone: a smaller power where the quadratic prior won at a very large weight, not past the ratio rule
    for s in (0.1, 0.3, 0.7):
        assert regweight.learned_share(s, 1.0, 1.0, very_smooth=True) == pytest.approx(s ** regweight.VERY_SMOOTH_POWER)
        assert s < regweight.learned_share(s, 1.0, 1.0, very_smooth=True) < regweight.learned_share(s, 1.0, 1.0)
    miss = regweight.PROXY_MISS_RATIO * 1.01
    assert regweight.learned_share(0.1, miss, 1.0, very_smooth=True) == regweight.learned_share(0.1, miss, 1.0)
    # on the proxy: a smooth low-contrast field (as the synthetic tuning set) takes it, a textured crop does not
    from scipy import ndimage
    from minieye.restore.deconvolve import auto_weight
    field = ndimage.gaussian_filter(np.random.default_rng(5).standard_normal((48, 48)), 8.0, mode="wrap")
    k = psf.box(5)
    for truth, sigma, smooth in ((0.45 + 0.04 * field / field.std(), 0.0025, True), (scene[:48, :48], 0.0025, False)):
        y = restore.blur(truth, k, mode="reflect") + sigma * np.random.default_rng(1).standard_normal(truth.shape)
        c = auto_weight(y[None], k, sigma, (0.0, 1.0), np.float32, "auto", 0.05)
        very = c.family == "smooth" and c.weight >= regweight.VERY_SMOOTH_WEIGHT * sigma ** 2
        assert very == smooth and 0 < c.held_out_share < 1
        assert c.learned_score < regweight.PROXY_MISS_RATIO * c.handmade_score  # the ratio rule stays out of it
        power = regweight.VERY_SMOOTH_POWER if smooth else regweight.SHARE_POWER
        assert c.learned_share == pytest.approx(c.held_out_share ** power)
