"""Fused element-wise activation kernels (reached through ``minieye.functional.activation``).

In NumPy, ReLU's backward ``dy * (x > 0).astype(dtype)`` is three passes and two
temporaries, and GELU's ``x * ndtr(x)`` with its slope ``ndtr(x) + x exp(-x^2/2) / sqrt(2 pi)``
some six: these do each direction in one pass over flat contiguous arrays, writing into ``out``:

    relu_forward    out = max(x, 0)                       (NaN stays NaN, as np.maximum)
    relu_backward   out = dy * [x > 0]                    (or the forward's output y: y > 0 iff x > 0)
    gelu_forward*   out = x Phi(x)
    gelu_backward*  out = dy (Phi(x) + x phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)

GELU has two precisions. float64 (gradient checks, restoration) calls libm:
``Phi(x) = erfc(-x / sqrt 2) / 2``, accurate to the last digits even where Phi is tiny
(x << 0). Those scalar calls do not vectorise (~10 ns an element), so float32 uses what
PyTorch's float32 GELU uses, ``Phi(x) = (1 + erf(x / sqrt 2)) / 2`` (the same absolute
error, ~1e-7, where Phi is tiny), with erf a rational function on [-4, 4] (Eigen's
``generic_fast_erf_float``: absolute error 3.3e-7 measured against scipy) and
``exp(-x^2 / 2)`` by Cephes' ``expf`` polynomial with the power of two built from its bits
(relative error 8.4e-8): no library calls, so LLVM vectorises the loop.

``dy * 0`` where ReLU's mask is off keeps a NaN or Inf in dy visible, as the NumPy form
did. Each kernel runs over the whole of its (flat) arrays: a caller splitting the work over
threads passes slices (a loop over ``range(lo, hi)`` compiled to scalar code, several times
slower than over ``range(n)``).
"""
from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._jit import kernel

__all__ = ["relu_forward", "relu_backward", "gelu_forward32", "gelu_backward32", "gelu_forward64", "gelu_backward64"]

_ROOT_HALF = 0.7071067811865476  # 1 / sqrt(2)
_INV_ROOT_TAU = 0.3989422804014327  # 1 / sqrt(2 pi)
f32 = np.float32


@intrinsic
def _float32_from_bits(typingctx, bits):  # pragma: no cover - compiled
    """The float32 whose IEEE bits are the int32 ``bits`` (LLVM's bitcast: vectorises)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


if numba.config.DISABLE_JIT:  # an intrinsic only runs compiled: its plain-Python twin
    def _float32_from_bits(bits):  # noqa: F811
        return np.int32(bits).view(np.float32)


@kernel
def _erf32(v):  # pragma: no cover - compiled
    """erf(v) in float32: Eigen's rational approximation, odd numerator over even denominator."""
    v = min(max(v, f32(-4.0)), f32(4.0))  # erf(+-4) rounds to +-1 in float32
    v2 = v * v
    p = v2 * f32(-2.72614225801306e-10) + f32(2.77068142495902e-08)
    p = v2 * p + f32(-2.10102402082508e-06)
    p = v2 * p + f32(-5.69250639462346e-05)
    p = v2 * p + f32(-7.34990630326855e-04)
    p = v2 * p + f32(-2.95459980854025e-03)
    p = v2 * p + f32(-1.60960333262415e-02)
    q = v2 * f32(-1.45660718464996e-05) + f32(-2.13374055278905e-04)
    q = v2 * q + f32(-1.68282697438203e-03)
    q = v2 * q + f32(-7.37332916720468e-03)
    q = v2 * q + f32(-1.42647390514189e-02)
    return v * p / q


@kernel
def _exp_nonpositive32(a):  # pragma: no cover - compiled
    """exp(a) in float32 for a <= 0 (Cephes' expf): e^a = 2^k e^r, |r| <= ln2 / 2, below
    exp(-87) (float32's smallest normal) it returns about exp(-87)."""
    a = max(a, f32(-87.0))
    k = np.int32(a * f32(1.4426950408889634) - f32(0.5))  # round(a / ln 2): truncation, as a <= 0
    fk = f32(k)
    r = a - fk * f32(0.693359375) - fk * f32(-2.12194440e-4)  # ln 2 in two parts: r exact
    p = r * f32(1.9875691500e-4) + f32(1.3981999507e-3)
    p = p * r + f32(8.3334519073e-3)
    p = p * r + f32(4.1665795894e-2)
    p = p * r + f32(1.6666665459e-1)
    p = p * r + f32(5.0000001201e-1)
    p = p * r * r + r + f32(1.0)
    return p * _float32_from_bits((k + np.int32(127)) << np.int32(23))


@kernel
def relu_forward(x, out):  # pragma: no cover - compiled
    """``out[i] = max(x[i], 0)``. Shapes: x, out (n,)."""
    zero = x.dtype.type(0)
    for i in range(out.shape[0]):
        v = x[i]
        out[i] = zero if v < zero else v


@kernel
def relu_backward(dy, x, out):  # pragma: no cover - compiled
    """``out[i] = dy[i] * [x[i] > 0]``. Shapes: dy, x, out (n,)."""
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    for i in range(out.shape[0]):
        out[i] = dy[i] * (one if x[i] > zero else zero)


@kernel
def gelu_forward32(x, out):  # pragma: no cover - compiled
    """``out[i] = x[i] Phi(x[i])``, float32 (fast erf). Shapes: x, out (n,)."""
    for i in range(out.shape[0]):
        v = x[i]
        out[i] = v * (f32(0.5) + f32(0.5) * _erf32(v * f32(_ROOT_HALF)))


@kernel
def gelu_backward32(dy, x, out):  # pragma: no cover - compiled
    """``out[i] = dy[i] (Phi(x[i]) + x[i] phi(x[i]))``, float32 (fast erf and exp). Shapes: dy, x, out (n,)."""
    for i in range(out.shape[0]):
        v = x[i]
        cdf = f32(0.5) + f32(0.5) * _erf32(v * f32(_ROOT_HALF))
        out[i] = dy[i] * (cdf + v * f32(_INV_ROOT_TAU) * _exp_nonpositive32(f32(-0.5) * v * v))


@kernel
def gelu_forward64(x, out):  # pragma: no cover - compiled
    """``out[i] = x[i] Phi(x[i])``, float64 (libm's erfc). Shapes: x, out (n,)."""
    for i in range(out.shape[0]):
        v = x[i]
        out[i] = v * (0.5 * math.erfc(-_ROOT_HALF * v))


@kernel
def gelu_backward64(dy, x, out):  # pragma: no cover - compiled
    """``out[i] = dy[i] (Phi(x[i]) + x[i] phi(x[i]))``, float64 (libm). Shapes: dy, x, out (n,)."""
    for i in range(out.shape[0]):
        v = x[i]
        out[i] = dy[i] * (0.5 * math.erfc(-_ROOT_HALF * v) + v * _INV_ROOT_TAU * math.exp(-0.5 * v * v))
