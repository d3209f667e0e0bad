"""deconvolve's automatic choices (restore/regweight.py) and the kernel-aware noise estimate (restore/noise.py)."""
import importlib

from functools import partial

import numpy as np
import pytest
from scipy import ndimage

from minieye import losses, restore
from minieye.restore import estimate_noise, psf, regweight

# These tests are about the hand-made prior, so they pin prior='nonlocal'; the default, prior='auto'
# (the learned prior blended in by held-out prediction), is tested in test_restore_learned_prior.py.
deconvolve = partial(restore.deconvolve, prior="nonlocal")

K = psf.gaussian(1.2)


def _texture(n: int, seed: int) -> np.ndarray:
    field = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal((n, n)), 0.8)
    return 0.2 + 0.6 * (field - field.min()) / np.ptp(field)


def _smooth(n: int) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n] / n
    return 0.3 + 0.4 * np.exp(-((yy - 0.5) ** 2 + (xx - 0.4) ** 2) / 0.08)


def _noisy(image: np.ndarray, kernel: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    return psf.blur(image, kernel) + sigma * np.random.default_rng(seed).standard_normal(image.shape)


@pytest.mark.parametrize("kernel, sigma, bound", [
    (psf.gaussian(2.0), 0.003, 1.25), (psf.box(5), 0.003, 1.25), (psf.disk(3), 0.003, 1.25),
    (psf.motion(9, 0), 0.01, 1.25), (psf.motion(9, 0), 0.003, 1.7)], ids=["gauss", "box", "disk", "motion", "motion-low"])
def test_kernel_aware_noise_within_a_stated_factor_on_blurred_texture(kernel, sigma, bound):
    # a fine texture under a directional blur keeps detail at the finest scale, which the
    # Haar estimate takes for noise; the frequencies the blur removed hold noise only
    blurred = _noisy(_texture(160, 3), kernel, sigma, seed=2)
    aware = estimate_noise(blurred, kernel=kernel)
    assert 0.9 * sigma < aware < bound * sigma, aware / sigma  # (Haar: up to 1.9x on motion-low)
    assert aware <= estimate_noise(blurred) + 1e-12  # never above the Haar estimate
    rgb = np.stack([blurred, blurred[::-1]], axis=-1)
    assert estimate_noise(rgb, kernel=kernel) == pytest.approx(aware, rel=0.1)


def test_kernel_aware_noise_falls_back_to_haar_when_little_is_removed():
    blurred = _noisy(_texture(24, 4), psf.box(3), 0.01)  # 24x24: too few removed frequencies
    assert estimate_noise(blurred, kernel=psf.box(3)) == estimate_noise(blurred)


def test_weight_follows_the_image_smooth_larger_than_textured():
    weights = {}
    for name, image in (("smooth", _smooth(64)), ("texture", _texture(64, 5))):
        _, info = deconvolve(_noisy(image, K, 0.02), K, full=True, prior="local")
        weights[name] = info.tv_weight
        assert info.weight_source == "auto" and info.choice.weight == info.tv_weight
        assert set(info.choice.scores) >= set(regweight.CANDIDATES)  # the coarse ladder was scored
        assert info.choice.nonlocal_helps is None and not info.nonlocal_ran  # prior='local': not asked
    assert weights["smooth"] > 8 * weights["texture"], weights


def test_record_reports_weight_and_the_nonlocal_verdict():
    blurred = _noisy(_texture(56, 6), K, 0.02)
    _, info = deconvolve(blurred, K, full=True)
    assert info.nonlocal_ran == info.choice.nonlocal_helps == (len(info.stages) == 2)
    assert info.nonlocal_ran == (info.choice.nonlocal_score < info.choice.local_score)
    local_weight = info.tv_weight
    labels = [label.split("(")[0] for _, label in info.weights]
    if info.nonlocal_ran:  # the last stage's terms are derived from the chosen weight
        assert labels[0] == "NonLocalTV" and info.weights[1][0] == pytest.approx(0.3 * local_weight)
    else:
        assert labels == ["TotalVariation", "SecondOrderTV"] and info.weights[0][0] == pytest.approx(local_weight)


def test_given_sigma_and_weight_are_honoured():
    blurred = _noisy(_texture(48, 7), K, 0.01)
    _, info = deconvolve(blurred, K, noise_sigma=0.03, prior="local", full=True)
    assert info.sigma == pytest.approx(0.03)  # used as given, not estimated
    multiple = info.tv_weight / (12 * 0.03 ** 2) / regweight.RISK_TO_IMAGE  # the ladder is in 12 sigma^2, sigma as given
    assert any(multiple == pytest.approx(m) for m in info.choice.scores), (multiple, info.choice.scores)
    _, given = deconvolve(blurred, K, tv_weight=2e-4, prior="local", full=True)
    assert given.tv_weight == 2e-4 and given.weight_source == "given" and given.choice is None
    _, custom = deconvolve(blurred, K, regularizers=[(1e-4, losses.TotalVariation())], iterations=5, full=True)
    assert custom.tv_weight is None and custom.choice is None


def test_held_out_mse_ignores_hidden_pixels():
    rng = np.random.default_rng(0)
    p, t = rng.random((2, 1, 4, 5)), rng.random((2, 1, 4, 5))
    mask = rng.random(p.shape) < 0.7
    loss = regweight.HeldOutMSE(mask)
    value, backward = loss.forward(p, t)
    assert float(value) == pytest.approx(((p - t)[mask] ** 2).sum() / mask.sum())
    dp, dt = backward(1.0, None)
    assert np.all(dp[~mask] == 0) and np.allclose(dp[mask], 2 * (p - t)[mask] / mask.sum()) and np.allclose(dt, -dp)


def test_nearly_noise_free_input_keeps_the_fixed_rule():
    # the held-out error is then only the proxy solves' distance from convergence
    _, info = deconvolve(psf.blur(_smooth(48), K), K, full=True, iterations=5)
    assert info.sigma < regweight.AUTO_MIN_SIGMA and info.weight_source == "rule" and info.choice is None
    assert info.tv_weight == pytest.approx(max(12 * info.sigma ** 2, 1e-7)) and not info.nonlocal_ran


def _scripted_choice(sigma: float, tv_error, smooth_error) -> regweight.WeightChoice:
    """choose_weight with a solver whose held-out error / sigma^2 is a given function of the weight."""
    y = np.zeros((1, 40, 40))

    def solve(observed, start, terms, fidelity, iterations):
        weight, layer = terms[0]
        error = smooth_error(weight) if isinstance(layer, losses.SecondOrderTV) else tv_error(weight)
        return start, observed + sigma * np.sqrt(error)

    return regweight.choose_weight(y, lambda window: window, sigma, solve, lambda w: [(w, "tv")])


def test_smooth_ladder_extends_above_its_top_then_refines_within_the_cap():
    sigma = 0.0025  # a very smooth image at low noise: the quadratic prior's optimum lies at weight 0.7
    choice = _scripted_choice(sigma, lambda w: 1.03, lambda w: 1.02 + 0.01 * np.log(w / 0.7) ** 2)
    assert choice.family == "smooth" and choice.weight == pytest.approx(128000 * sigma ** 2)
    assert max(choice.smooth_scores) * sigma ** 2 <= regweight.EXTEND_MAX_WEIGHT
    # noisier: the next rung up lies past the cap, where short proxy solves flatter large weights
    noisy = _scripted_choice(0.02, lambda w: 1.03, lambda w: 1.02 + 0.01 * np.log(w / 300) ** 2)
    assert set(noisy.smooth_scores) == set(regweight.SMOOTH_CANDIDATES)


def test_smooth_ladder_with_its_best_inside_stays_coarse():
    choice = _scripted_choice(0.01, lambda w: 1.0 + abs(np.log(w / (12e-4))), lambda w: 2.0 + 0.01 * np.log(w / 0.1) ** 2)
    assert choice.family == "tv" and choice.weight == pytest.approx(12e-4)
    assert set(choice.smooth_scores) == set(regweight.SMOOTH_CANDIDATES)  # best inside: no extension, no refinement


def _held_out_scenes(monkeypatch, blurred: np.ndarray, sigma: float) -> dict:
    """deconvolve's proxy solves for ``blurred``: (prior terms' weights and kinds, repeat) -> the scene found."""
    module, problem = importlib.import_module("minieye.restore.deconvolve"), importlib.import_module(
        "minieye.restore.problem")
    scenes = {}

    def recording(*args, **kwargs):
        scene, result = problem.solve_stage(*args, **kwargs)
        if isinstance(args[-1], regweight.HeldOutMSE):
            terms = tuple((round(float(w), 12), type(layer).__name__) for w, layer in args[3])
            scenes[terms, sum(key[0] == terms for key in scenes)] = np.array(scene)
        return scene, result

    monkeypatch.setattr(module, "solve_stage", recording)
    deconvolve(blurred, K, noise_sigma=sigma, full=True, iterations=1, prior="nonlocal")
    return scenes


def test_held_out_predictions_do_not_read_the_hidden_pixels(monkeypatch):
    # the score is honest only if no proxy solve (its start included) sees a hidden pixel's value:
    # changing only those values must leave every solve (TV and smooth ladders, non-local verdict) as it was.
    # (The ladders' later rungs follow the scores, which do read the hidden pixels: solves of the same
    # weights are compared.)
    sigma = 0.01
    blurred = _noisy(_texture(64, 4), K, sigma)
    rows, cols = regweight.proxy_window(blurred.shape)
    window = blurred[rows, cols]
    hidden = regweight.hidden_pixels((1, 1) + window.shape)[0, 0]
    changed = blurred.copy()
    changed[rows, cols] = np.where(hidden, 1.0 - window, window)
    before, after = _held_out_scenes(monkeypatch, blurred, sigma), _held_out_scenes(monkeypatch, changed, sigma)
    common = before.keys() & after.keys()
    assert len(common) >= len(regweight.CANDIDATES) + len(regweight.SMOOTH_CANDIDATES)
    for key in common:
        np.testing.assert_allclose(before[key], after[key], atol=1e-6, err_msg=str(key))


def test_fill_hidden_uses_kept_neighbours_only():
    rng = np.random.default_rng(3)
    window = rng.random((2, 1, 9, 8))
    hidden = rng.random(window.shape) < 0.3
    hidden[0, 0, :5, :5] = True  # a 5x5 hidden block: its centre has no kept pixel within 3x3
    filled = regweight.fill_hidden(window, hidden)
    assert np.array_equal(filled[~hidden], window[~hidden]) and np.isfinite(filled).all()
    other = np.where(hidden, rng.random(window.shape), window)
    assert np.array_equal(regweight.fill_hidden(other, hidden), filled)
    lo, hi = window[~hidden].min(), window[~hidden].max()
    assert np.all((filled >= lo) & (filled <= hi))


def test_learned_prior_held_out_estimate_does_not_read_the_hidden_pixels():
    # prior='auto' scores the learned prior on the same hidden pixels: its start is filled the same way
    from minieye.restore.learned_prior import hqs
    blurred = _noisy(_texture(40, 6), K, 0.02)
    hidden = regweight.hidden_pixels(blurred.shape)
    changed = np.where(hidden, 1.0 - blurred, blurred)
    before, after = (hqs(y, K / K.sum(), 0.02, None, iterations=3, hidden=hidden)[1] for y in (blurred, changed))
    np.testing.assert_allclose(before, after, atol=1e-9)


def test_the_proxy_kept_on_the_choice_holds_no_view_of_the_whole_image():
    """``WeightChoice.proxy`` stays on a user's ``info``: its arrays are the proxy window's, not views that keep
    the whole (working-units) image alive."""
    side = regweight.PROXY_SIDE + 40
    observed = np.random.default_rng(0).random((1, side, side))
    choice = regweight.choose_weight(observed, lambda window: window, 0.05,
                                     lambda obs, start, terms, fidelity, iterations: (start, 0.9 * obs),
                                     lambda w: [], learned=lambda window, hidden: 0.8 * window)
    assert set(choice.proxy) == {"observed", "hidden", "learned", "handmade"}
    for name, array in choice.proxy.items():
        root = array
        while root.base is not None:
            root = root.base
        assert root.nbytes == array.nbytes, f"proxy[{name!r}] keeps {root.nbytes} bytes alive for {array.nbytes}"
    np.testing.assert_array_equal(choice.proxy["observed"][0, 0], observed[0, 20:-20, 20:-20])
