"""Total variation of images, first and second order: validated sums and their gradients.

    total, gradient = F.total_variation(x, eps=1e-3, power=1.0)
    dx = gradient(2.0)                       # 2 * d total / dx, x's shape and dtype
    total, gradient = F.second_order_tv(x, eps=1e-2)

Both read (..., H, W) arrays as independent planes, with forward differences that are
zero across the last column / row (a Neumann boundary); the maths is in
``minieye.losses.regularizers`` (whose TotalVariation and SecondOrderTV are these sums
divided by ``x.size``). The fused kernels (``minieye.kernels.tv``) compute them; with the
``regularizer_kernels`` knob off (``with me.options(regularizer_kernels=False)``) the NumPy
references below do, the same maths in about 30 passes over the image. The gradient
reads ``x`` again: do not modify it in place before calling ``gradient``.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..checks import as_float_array, check_real, fail
from ..kernels import tv as ktv
from ..options import get

__all__ = ["total_variation", "second_order_tv"]

Gradient = Callable[[float], np.ndarray]


def tv_parameters(eps: Any, power: Any, where: str) -> tuple[float, float]:
    """``eps`` a finite number > 0 and ``power`` in (0, 2], as floats (booleans refused)."""
    eps = check_real(eps, where, "eps", positive=True)
    if check_real(power, where, "power", positive=True) > 2:
        raise fail(where, "0 < power <= 2", f"power={power!r}")
    return eps, float(power)


def _image(x: Any, where: str) -> np.ndarray:
    a = as_float_array(x, where, "x")
    if a.ndim < 2 or a.size == 0:
        raise fail(where, "a non-empty array with at least 2 dimensions", f"x.shape == {a.shape}")
    return a


def _planes(a: np.ndarray) -> np.ndarray:
    """(..., H, W) as a C-contiguous (B, H, W) stack for the kernels."""
    return np.ascontiguousarray(a).reshape((-1,) + a.shape[-2:])


def total_variation(x: Any, eps: float = 1e-3, power: float = 1.0, *,
                    where: str = "total_variation") -> tuple[float, Gradient]:
    """Sum over x of ``m^q - eps^q``, ``m = sqrt(dx_h^2 + dx_v^2 + eps^2)``, q = ``power``, and
    ``gradient(scale)`` = scale * its gradient. ``where`` names the caller in errors.

    Shapes: x (..., H, W) -> (float, gradient(scale) -> x.shape in x's float dtype).
    """
    eps, q = tv_parameters(eps, power, where)
    a = _image(x, where)
    if get("regularizer_kernels"):
        planes = _planes(a)
        total, factor = ktv.tv_forward(planes, eps, q)
        gradient = lambda scale: ktv.tv_backward(planes, factor, scale).reshape(a.shape)  # noqa: E731
    else:
        total, gradient = tv_reference(a, eps, q)
    return total - eps ** q * a.size, gradient


def second_order_tv(x: Any, eps: float = 1e-2, *, where: str = "second_order_tv") -> tuple[float, Gradient]:
    """Sum over x of ``m - eps``, ``m = sqrt(a^2 + b^2 + 2 c^2 + eps^2)`` (a, b, c the second
    differences), and ``gradient(scale)`` = scale * its gradient.

    Shapes: x (..., H, W) -> (float, gradient(scale) -> x.shape in x's float dtype).
    """
    eps = check_real(eps, where, "eps", positive=True)
    a = _image(x, where)
    if get("regularizer_kernels"):
        planes = _planes(a)
        total, m = ktv.tv2_forward(planes, eps)
        gradient = lambda scale: ktv.tv2_backward(planes, m, scale).reshape(a.shape)  # noqa: E731
    else:
        total, gradient = second_order_reference(a, eps)
    return total - eps * a.size, gradient


# -- the NumPy references (the kernels are tested against them) -------------------------------
def differences(x: np.ndarray, dims: int = 2) -> list[np.ndarray]:
    """Forward differences along each of the last ``dims`` axes, last axis first (W, H, D...),
    zero across the last entry of that axis (a Neumann boundary)."""
    out = []
    for axis in range(x.ndim - 1, x.ndim - 1 - dims, -1):
        g = np.zeros_like(x)
        lead = (slice(None),) * axis
        g[lead + (slice(None, -1),)] = np.diff(x, axis=axis)
        out.append(g)
    return out


def neg_divergence(*ps: np.ndarray) -> np.ndarray:
    """The adjoint of ``differences``: the sum over axes of D_axis^T p (= -div), ``ps`` in
    ``differences``' order."""
    out = np.zeros_like(ps[0])
    nd = out.ndim
    for i, p in enumerate(ps):
        lead = (slice(None),) * (nd - 1 - i)
        inner = p[lead + (slice(None, -1),)]
        out[lead + (slice(None, -1),)] -= inner
        out[lead + (slice(1, None),)] += inner
    return out


def tv_reference(a: np.ndarray, eps: float, q: float) -> tuple[float, Gradient]:
    """The sum of m^q (float64) and ``gradient(scale)`` = scale * d/da sum m^q, in NumPy.
    Shapes: (..., H, W)."""
    gh, gv = differences(a)
    e = a.dtype.type(eps)
    m = np.sqrt(gh * gh + gv * gv + e * e)
    mq = m if q == 1 else m ** a.dtype.type(q)

    def gradient(scale: float) -> np.ndarray:
        factor = 1.0 / m if q == 1 else a.dtype.type(q) * mq / (m * m)  # q m^(q-2)
        return neg_divergence(gh * factor, gv * factor) * a.dtype.type(scale)

    return float(mq.sum(dtype=np.float64)), gradient


def second_order_reference(a: np.ndarray, eps: float) -> tuple[float, Gradient]:
    """The sum of m (float64) and ``gradient(scale)`` = scale * d/da sum m, in NumPy.
    Shapes: (..., H, W)."""
    gh, gv = differences(a)
    hh, hv = differences(gh)  # Dh Dh x, Dv Dh x
    vv = differences(gv)[1]  # Dv Dv x
    e = a.dtype.type(eps)
    m = np.sqrt(hh * hh + vv * vv + 2 * hv * hv + e * e)

    def gradient(scale: float) -> np.ndarray:
        zero = np.zeros_like(a)
        # D^T (ph, pv) = Dh^T ph + Dv^T pv, so Dh^T Dh^T p = D^T(D^T(p, 0), 0) and so on
        dh_part = neg_divergence(hh / m, 2 * hv / m)  # Dh^T (hh/m) + Dv^T (2 hv/m): the adjoint of (Dh, Dv) on gh
        dv_part = neg_divergence(zero, vv / m)  # Dv^T (vv/m): the adjoint of Dv on gv
        return neg_divergence(dh_part, dv_part) * a.dtype.type(scale)

    return float(m.sum(dtype=np.float64)), gradient
