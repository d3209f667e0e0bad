"""kernels.warm.warm_up runs every kernel and leaves the serial/parallel thresholds as they were."""
import numpy as np
from numba.core.registry import CPUDispatcher

import minieye as me
from minieye.kernels import conv as kconv, conv_direct
from minieye.kernels.warm import warm_up


def test_warm_up_runs_every_kernel_and_restores_the_thresholds():
    from minieye.kernels import conv_blocks, conv_gemm, conv_taps, conv_winograd4_grad
    before = me.options.snapshot()
    warm_up((np.float64,))
    assert me.options.snapshot() == before
    # GEMM per sample and over blocks of samples, products per tap or shift, F(4x4)'s adjoint passes
    for kernel in (conv_gemm.forward_and_grad_weight, conv_gemm.grad_input, conv_blocks.forward_and_grad_weight,
                   conv_blocks.grad_input, conv_taps.forward, conv_taps.grad_input, conv_winograd4_grad.grads_images):
        assert kernel.signatures


def test_warm_up_compiles_the_regularizer_kernels():
    from minieye.kernels import nonlocal_tv, tv
    warm_up((np.float64,))
    for module in (tv, nonlocal_tv):
        # entry points (the row helpers they call are compiled into them, not on their own)
        entries = [f for name, f in vars(module).items() if isinstance(f, CPUDispatcher)
                   and (not name.startswith("_") or name.endswith("_rows"))]
        assert entries and all(f.signatures for f in entries), module.__name__


def test_threaded_paths_need_no_compilation_beyond_warm_up(monkeypatch):
    # warm_up runs serially only: the threaded paths must reuse its kernels
    from minieye.kernels import (activation, conv_blocks, conv_nd, conv_gemm, conv_taps, conv_transpose_phases,
                                 conv_wide, conv_winograd, conv_winograd4, conv_winograd4_grad, nonlocal_tv, pool, tv,
                                 upsample)
    modules = (kconv, conv_direct, conv_wide, conv_gemm, conv_blocks, conv_taps, conv_winograd, conv_winograd4,
               conv_winograd4_grad, conv_nd, conv_transpose_phases,
               pool, upsample, tv, nonlocal_tv, activation)

    def signatures():
        return {(m.__name__, name): len(f.signatures) for m in modules
                for name, f in vars(m).items() if isinstance(f, CPUDispatcher)}

    warm_up((np.float64,))
    before = signatures()
    with me.options(conv_direct_parallel_min_work=0, conv_gemm_parallel_min_work=0, pool_parallel_min_work=0,
                    tv_parallel_min_pixels=0, nonlocal_parallel_min_rows=1, elementwise_parallel_min_size=0,
                    unpool_parallel_min_cells=0):
        warm_up((np.float64,))
        from minieye.functional import activation as FA
        FA.gelu_grad(np.ones(8), FA.relu(np.ones(8)))
    assert signatures() == before
