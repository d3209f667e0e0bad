"""kernels.warm.warm_up runs every kernel and leaves the serial/parallel thresholds as they were."""
import numpy as np
from numba.core.registry import CPUDispatcher

from minieye.kernels import conv as kconv, conv_direct, pool as kpool
from minieye.kernels.warm import warm_up


def test_warm_up_runs_every_kernel_and_restores_the_thresholds():
    before = kpool.PARALLEL_MIN_WORK, conv_direct._PARALLEL_MIN_WORK, kconv._GEMM_PARALLEL_MIN_WORK
    warm_up((np.float64,))
    assert (kpool.PARALLEL_MIN_WORK, conv_direct._PARALLEL_MIN_WORK, kconv._GEMM_PARALLEL_MIN_WORK) == before


def test_warm_up_compiles_the_regularizer_kernels():
    from minieye.kernels import nonlocal_tv, tv
    warm_up((np.float64,))
    for module in (tv, nonlocal_tv):
        # entry points (the row helpers they call are compiled into them, not on their own)
        entries = [f for name, f in vars(module).items() if isinstance(f, CPUDispatcher)
                   and (not name.startswith("_") or name.endswith("_rows"))]
        assert entries and all(f.signatures for f in entries), module.__name__
