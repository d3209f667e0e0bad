"""kernels.conv_blas.gemm: xGEMM on strided views, with transposes and accumulation, both dtypes."""
import numpy as np
import pytest

from minieye.kernels import conv_blas


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_multiplies_strided_views_and_accumulates(dtype, trans_a, trans_b):
    rng = np.random.default_rng(0)
    m, n, k = 5, 7, 3
    # operands stored with padded rows (leading dimension > row length), as the taps' views are
    a_store = rng.standard_normal((k, m + 4) if trans_a else (m, k + 4)).astype(dtype)
    b_store = rng.standard_normal((n, k + 2) if trans_b else (k, n + 2)).astype(dtype)
    c_store = rng.standard_normal((m, n + 3)).astype(dtype)
    a = a_store[:, :m].T if trans_a else a_store[:, :k]
    b = b_store[:, :k].T if trans_b else b_store[:, :n]
    want = c_store.copy()
    want[:, :n] = 0.5 * want[:, :n] + a @ b        # the columns past n stay as they were
    ints, scalars = np.zeros(8, dtype=conv_blas.int_dtype()), np.zeros(2, dtype=dtype)
    got = c_store.copy()
    conv_blas.gemm(trans_a, trans_b, a_store.reshape(-1), a_store.shape[1], b_store.reshape(-1), b_store.shape[1],
                   got.reshape(-1), got.shape[1], m, n, k, 0.5, ints, scalars)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_a_blas_is_bound_at_import():
    assert conv_blas.library() in ("NumPy's OpenBLAS", "SciPy's cython_blas")
    assert conv_blas.int_dtype() in (np.int64, np.int32)
