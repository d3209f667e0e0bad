"""kernels.warm.warm_up runs every kernel and leaves the serial/parallel thresholds as they were."""
import numpy as np

from minieye.kernels import conv as kconv, conv_direct, pool as kpool
from minieye.kernels.warm import warm_up


def test_warm_up_runs_every_kernel_and_restores_the_thresholds():
    before = kpool.PARALLEL_MIN_WORK, conv_direct._PARALLEL_MIN_WORK, kconv._GEMM_PARALLEL_MIN_WORK
    warm_up((np.float64,))
    assert (kpool.PARALLEL_MIN_WORK, conv_direct._PARALLEL_MIN_WORK, kconv._GEMM_PARALLEL_MIN_WORK) == before
