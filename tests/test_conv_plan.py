"""kernels.conv_plan: one Plan per convolution call, from the shapes and the options in force."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import minieye as me
import minieye.functional as F
from minieye.kernels import _blas
from minieye.kernels.conv_geometry import Geometry
from minieye.kernels.conv_plan import Algorithm, Plan, plan

G1 = Geometry((1, 1), (1, 1), (1, 1), 1)
G2 = Geometry((2, 2), (1, 1), (1, 1), 1)


def test_auto_picks_direct_for_few_channels_and_gemm_for_many(monkeypatch):
    monkeypatch.setattr(_blas, "avx512_blas", lambda: False)
    assert plan((8, 1, 32, 32), (8, 1, 3, 3), G1).algorithm is Algorithm.SMALL    # one input channel, "same"
    valid = Geometry((1, 1), (0, 0), (1, 1), 1)
    assert plan((8, 1, 32, 32), (8, 1, 3, 3), valid).algorithm is Algorithm.DIRECT  # ... or not
    assert plan((8, 4, 32, 32), (4, 4, 3, 3), G1).algorithm is Algorithm.DIRECT    # 16 channel pairs
    assert plan((8, 8, 32, 32), (64, 8, 3, 3), G1).algorithm is Algorithm.GEMM     # too few inputs per tap
    assert plan((8, 32, 32, 32), (64, 32, 3, 3), G1).algorithm is Algorithm.WINOGRAD4
    assert plan((8, 32, 32, 32), (64, 32, 5, 5), G1).algorithm is Algorithm.TAPS
    assert plan((8, 32, 32, 32), (64, 32, 3, 3), G2).algorithm is Algorithm.TAPS
    assert plan((8, 8, 32, 32), (64, 8, 3, 3), G2).algorithm is Algorithm.GEMM
    assert plan((8, 64, 32, 32), (64, 64, 3, 3), G1).algorithm is Algorithm.WINOGRAD4  # 3x3, stride 1, many channels
    assert plan((8, 64, 32, 32), (64, 64, 3, 3), G2).algorithm is Algorithm.TAPS
    grouped = Geometry((1, 1), (1, 1), (1, 1), 2)
    assert plan((8, 64, 32, 32), (64, 32, 3, 3), grouped).algorithm is Algorithm.GEMM
    assert plan((8, 16, 16, 16), (24, 16, 3, 3), G1).algorithm is Algorithm.WINOGRAD4  # from 16 channels, 16x16
    assert plan((8, 12, 32, 32), (32, 12, 3, 3), G1).algorithm is Algorithm.GEMM       # 12 channels in
    assert plan((8, 64, 8, 8), (64, 64, 3, 3), G1).algorithm is Algorithm.TAPS         # planes below 16x16
    with me.options(conv_taps_min_channels=64):
        assert plan((8, 32, 16, 8), (64, 32, 3, 3), G1).algorithm is Algorithm.GEMM
    with me.options(conv_winograd_min_pixels=64):
        assert plan((8, 64, 8, 8), (64, 64, 3, 3), G1).algorithm is Algorithm.WINOGRAD4
    with me.options(conv_winograd_min_channels=12):
        assert plan((8, 12, 32, 32), (32, 12, 3, 3), G1).algorithm is Algorithm.WINOGRAD4
    depthwise = Geometry((1, 1), (1, 1), (1, 1), 32)
    assert plan((8, 32, 32, 32), (32, 1, 3, 3), depthwise).algorithm is Algorithm.DIRECT


def test_winograd4_thresholds_are_the_same_with_avx512_blas(monkeypatch):
    """From 16 channels on 16x16 planes whatever the BLAS kernels (measured, docs/kernels.md "Sixth pass")."""
    monkeypatch.setattr(_blas, "avx512_blas", lambda: True)
    assert plan((8, 16, 32, 32), (32, 16, 3, 3), G1).algorithm is Algorithm.WINOGRAD4  # bench_kernels' row
    assert plan((8, 64, 16, 16), (64, 64, 3, 3), G1).algorithm is Algorithm.WINOGRAD4
    assert plan((8, 64, 8, 8), (64, 64, 3, 3), G1).algorithm is Algorithm.TAPS         # planes below 16x16
    with me.options(conv_winograd_min_channels=32, conv_winograd_min_pixels=1024):
        assert plan((8, 16, 32, 32), (32, 16, 3, 3), G1).algorithm is Algorithm.TAPS
        assert plan((8, 32, 16, 16), (32, 32, 3, 3), G1).algorithm is Algorithm.TAPS


def test_taps_run_the_input_gradient_per_tap_without_more_outputs_than_inputs_or_with_avx512_blas(monkeypatch):
    for avx512 in (False, True):
        monkeypatch.setattr(_blas, "avx512_blas", lambda avx512=avx512: avx512)
        assert plan((8, 32, 32, 32), (32, 32, 3, 3), G1).taps_grad_input
        assert plan((8, 32, 32, 32), (64, 32, 3, 3), G1).taps_grad_input is avx512


def test_winograd_runs_the_weight_gradient_by_winograd_with_avx2_blas_and_f4x4_on_large_planes(monkeypatch):
    for avx512 in (False, True):
        monkeypatch.setattr(_blas, "avx512_blas", lambda avx512=avx512: avx512)
        with me.options(conv_algorithm="winograd"):
            assert plan((8, 32, 32, 32), (32, 32, 3, 3), G1).winograd_grad_weight is not avx512
        with me.options(conv_algorithm="winograd4"):  # F(4x4): with AVX-512 kernels from 32x32 planes
            assert plan((8, 32, 32, 32), (32, 32, 3, 3), G1).winograd_grad_weight
            assert plan((8, 32, 16, 16), (32, 32, 3, 3), G1).winograd_grad_weight is not avx512


def test_one_input_channel_runs_small_on_same_planes_else_as_gemm_from_6_outputs_with_avx512_blas_else_16(
        monkeypatch):
    lenet1, deblur = ((64, 1, 28, 28), (6, 1, 5, 5)), ((1, 1, 64, 64), (1, 1, 5, 5))
    same5, valid = Geometry((1, 1), (2, 2), (1, 1), 1), Geometry((1, 1), (0, 0), (1, 1), 1)
    for avx512, expected in ((False, Algorithm.DIRECT), (True, Algorithm.GEMM)):
        monkeypatch.setattr(_blas, "avx512_blas", lambda avx512=avx512: avx512)
        assert plan(*lenet1, same5).algorithm is Algorithm.SMALL  # LeNet's first layer
        assert plan(*lenet1, G1).algorithm is expected  # padding 1: smaller than its input
        assert plan(*deblur, same5).algorithm is Algorithm.DIRECT  # one channel out stays direct
        assert plan((8, 1, 32, 32), (4, 1, 3, 3), valid).algorithm is Algorithm.DIRECT
        assert plan((8, 1, 32, 32), (2, 1, 3, 3), G1).algorithm is Algorithm.SMALL
        assert plan((256, 1, 8, 8), (16, 1, 3, 3), G1).algorithm is Algorithm.SMALL  # the digits layer
        assert plan((256, 1, 8, 8), (16, 1, 3, 3), valid).algorithm is Algorithm.GEMM


def test_options_force_the_algorithm_and_unknown_ones_are_refused():
    with me.options(conv_algorithm="direct"):
        assert plan((8, 32, 32, 32), (64, 32, 3, 3), G1).algorithm is Algorithm.DIRECT
    with me.options(conv_algorithm="gemm"):
        assert plan((8, 1, 32, 32), (16, 1, 3, 3), G1).algorithm is Algorithm.GEMM
    with pytest.raises(ValueError, match="conv_algorithm one of"):
        with me.options(conv_algorithm="fft"):
            pass
    with me.options(conv_algorithm="winograd"):
        assert plan((8, 32, 32, 32), (64, 32, 3, 3), G1).algorithm is Algorithm.WINOGRAD
        with pytest.raises(ValueError, match="3x3 kernel with stride 1"):
            plan((8, 32, 32, 32), (64, 32, 3, 3), G2)
        with pytest.raises(ValueError, match="3x3 kernel with stride 1"):
            plan((8, 32, 32, 32), (64, 32, 5, 5), G1)
    with me.options(conv_algorithm="taps"):
        assert plan((8, 4, 32, 32), (8, 4, 5, 5), G1).algorithm is Algorithm.TAPS
        assert plan((8, 32, 32, 32), (64, 32, 3, 3), G2).algorithm is Algorithm.TAPS
        with pytest.raises(ValueError, match="groups 1"):
            plan((8, 32, 32, 32), (64, 16, 3, 3), Geometry((1, 1), (1, 1), (1, 1), 2))
    with pytest.raises(TypeError, match="algorithm an Algorithm"):
        Plan("gemm", 1, True, False, 4096, 1 << 20)


def test_threads_follow_the_work_thresholds_and_the_threads_knob():
    small, big = ((2, 8, 8, 8), (8, 8, 3, 3)), ((32, 32, 32, 32), (32, 32, 3, 3))
    assert plan(*small, G1).threads == 1
    with me.options(threads=2):
        assert plan(*big, G1).threads == 2
        with me.options(conv_gemm_parallel_min_work=0):
            assert plan(*small, G1).threads == 2
            assert plan((1, 8, 8, 8), (8, 8, 3, 3), G1).threads == 1  # GEMM threads take whole samples
        with me.options(conv_algorithm="direct", conv_direct_parallel_min_work=0):
            assert plan((1, 8, 8, 8), (8, 8, 3, 3), G1).threads == 2  # direct splits rows
    with me.options(threads=1):
        assert plan(*big, G1).threads == 1


def test_the_direct_paths_are_chosen_by_stride_and_plane_size():
    p = plan((1, 1, 512, 512), (1, 1, 5, 5), Geometry((1, 1), (2, 2), (1, 1), 1))
    assert p.wide and not p.small_planes                       # the deblur shape: tiles of wide rows
    assert plan((256, 1, 8, 8), (16, 1, 3, 3), G1).small_planes   # digits: per-tap rows over samples
    strided = plan((4, 1, 16, 16), (2, 1, 3, 3), G2)
    assert not strided.wide and not strided.small_planes       # row kernels
    with me.options(conv_wide_tile=1):
        assert not plan((256, 1, 8, 8), (16, 1, 3, 3), G1).small_planes


def test_a_layer_gives_the_same_result_under_every_plan():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 6, 9, 9))
    layer = me.layers.Conv2D(6, 8, 3, padding=1, dtype="float64", seed=0)
    results = []
    for algorithm in ("direct", "gemm", "winograd", "winograd4", "taps"):
        with me.options(conv_algorithm=algorithm, conv_direct_parallel_min_work=0, conv_gemm_parallel_min_work=0):
            y, backward = layer.forward(x)
        deltas = me.DeltaSet()
        dx = backward(np.ones_like(y), deltas)   # the backward keeps its forward's plan
        results.append((y, dx, deltas[layer.weight]))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[0][0], F.conv2d(x, layer.weight.value, layer.bias.value, padding=1),
                               rtol=1e-12)


def test_blas_keeps_the_users_setting():
    controllers = _blas.blas_controllers()
    if not controllers:
        pytest.skip("no BLAS found by threadpoolctl")
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((4, 8, 12, 12)), rng.standard_normal((8, 8, 3, 3))
    with threadpool_limits(limits=2, user_api="blas"):
        with me.options(threads=2, conv_gemm_parallel_min_work=0, conv_algorithm="gemm"):
            F.conv2d(x, w, padding=1)                  # BLAS was held to 1 during the call, then restored
        assert all(c.get_num_threads() == 2 for c in controllers)
        with _blas.single_threaded_blas():
            assert all(c.get_num_threads() == 1 for c in controllers)
            controllers[0].set_num_threads(3)          # the user changes it meanwhile: that setting stays
        assert controllers[0].get_num_threads() == 3


def test_avx512_detection_sees_a_pinned_avx2_core_type():
    import os
    assert isinstance(_blas.avx512_blas(), bool)
    if os.environ.get("OPENBLAS_CORETYPE", "").lower() == "haswell":
        assert not _blas.avx512_blas()


def test_many_small_samples_thread_although_their_multiply_adds_are_few():
    """The 256 digits of 8x8 (2.4 million multiply-adds) split over 2 threads; as many multiply-adds
    in 4 large samples, or 64 tiny samples, stay on one thread; without the per-sample cost, none split."""
    digits, few_large, few_tiny = ((256, 1, 8, 8), (16, 1, 3, 3)), ((4, 16, 16, 16), (32, 16, 3, 3)), \
        ((64, 4, 8, 8), (8, 4, 3, 3))
    with me.options(threads=2, conv_algorithm="gemm"):
        assert plan(*digits, G1).threads == 2
        assert plan(*few_large, G1).threads == 1
        assert plan(*few_tiny, G1).threads == 1
        with me.options(conv_gemm_sample_work=0):
            assert plan(*digits, G1).threads == 1


def test_samples_share_a_product_only_where_one_sample_s_product_is_small():
    """"auto" lets GEMM products span blocks of samples up to 100,000 multiply-adds per sample's product
    (the digits layer, 9,200), not for LeNet's layers (118,000 and 240,000); the knob forces a size or
    per sample, and a negative size is refused."""
    digits = ((256, 1, 8, 8), (16, 1, 3, 3))
    assert plan(*digits, G1).sample_block == 0
    assert plan((64, 1, 28, 28), (6, 1, 5, 5), Geometry((1, 1), (2, 2), (1, 1), 1)).sample_block == 1
    assert plan((64, 6, 14, 14), (16, 6, 5, 5), Geometry((1, 1), (0, 0), (1, 1), 1)).sample_block == 1
    for forced in (1, 5):
        with me.options(conv_sample_block=forced):
            assert plan(*digits, G1).sample_block == forced
            assert plan((64, 6, 14, 14), (16, 6, 5, 5), G1).sample_block == forced
    with pytest.raises(ValueError, match="conv_sample_block"):
        with me.options(conv_sample_block=-1):
            pass
