"""The network, Problem and one L-BFGS stage of a deconvolution (used by deconvolve.py and regweight.py).

The network is ``Source`` (the learned scene, larger than the observation by the
kernel's half-width on every side) -> a frozen 'valid' ``Conv2D`` (``Conv3D`` for
volumes) holding the flipped PSF; the objective is fidelity(blurred prediction,
observed) + sum_r w_r R_r(scene), minimised by L-BFGS with a strong-Wolfe line search,
a box enforced by projection (see deconvolve.py).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core import Layer
from ..network import Graph
from ..layers import Conv2D, Conv3D, Source
from ..losses import MSE, Loss
from .. import train
from .psf import as_conv_weight

__all__ = ["deconvolution_problem", "solve_stage"]


class _Objective(Loss):
    """fidelity(blurred prediction, observed) + sum_r w_r R_r(image).

    Routes the Graph's two outputs to their terms: the fidelity term sees the blurred
    prediction and the observation, the regularizers see the learned image.
    Shapes: prediction (N, 1, H, W), image (N, 1, H + kh - 1, W + kw - 1), observed like prediction -> ().
    """

    n_inputs = 3

    def __init__(self, fidelity: Layer, terms: Sequence[tuple[float, Layer]]):
        super().__init__()
        self.fidelity, self.terms_ = fidelity, list(terms)

    def forward(self, prediction: Any, image: Any, observed: Any):
        value, back_fid = self.fidelity.forward(prediction, observed)
        total = float(value)
        backs = []
        for weight, reg in self.terms_:
            v, b = reg.forward(image)
            total += weight * float(v)
            backs.append((weight, b))
        out = np.asarray(total, dtype=np.asarray(value).dtype)

        def backward(dy: Any, deltas: Any):
            s = self.scalar_dy(dy)
            d_pred = back_fid(s, deltas)[0]
            d_image = None
            for weight, b in backs:
                g = b(s * weight, deltas)
                d_image = g if d_image is None else d_image + g
            if d_image is None:
                d_image = np.zeros_like(image)
            return d_pred, d_image, None

        return out, backward


def deconvolution_problem(observed: np.ndarray, kernel: np.ndarray, init: np.ndarray,
                          terms: Sequence[tuple[float, Layer]], box: tuple[float | None, float | None] | None,
                          dtype: Any = np.float32, fidelity: Layer | None = None) -> tuple[train.Problem, Source, Graph]:
    """The network and Problem of one deconvolution (exposed for experiments and blind.py).

    ``fidelity``: the data term (prediction, observed) -> (); None: ``losses.MSE()``.

    Shapes: observed (N, 1, H, W), kernel (kh, kw) PSF, init (N, 1, H + kh - 1, W + kw - 1);
    or, for volumes, observed (N, 1, D, H, W), kernel (kd, kh, kw), init (N, 1, D + kd - 1, ...).
    """
    image = Source(value=init, dtype=dtype, name="image")
    blur = (Conv3D if kernel.ndim == 3 else Conv2D)(1, 1, kernel.shape, bias=False, dtype=dtype, name="psf")
    blur.weight.value[...] = as_conv_weight(kernel, dtype)
    blur.freeze()
    g = Graph(name="deconvolution")
    u = g.add(image)
    g.output(g.add(blur, u), u)
    constraints = [] if box is None else [train.Box(image.value, box[0], box[1])]
    problem = train.Problem(g, _Objective(MSE() if fidelity is None else fidelity, terms), (), observed.astype(dtype),
                            params=[image.value], constraints=constraints)
    return problem, image, g


def solve_stage(observed: np.ndarray, kernel: np.ndarray, start: np.ndarray, terms: Sequence[tuple[float, Layer]],
                box: Any, dtype: Any, iterations: int, timeout: float | None, progress: bool,
                label: str, fidelity: Layer | None = None) -> tuple[np.ndarray, Any]:
    """One stage: L-BFGS + strong Wolfe from ``start``; returns the learned image and the train.Result."""
    problem, image, _ = deconvolution_problem(observed, kernel, start, terms, box, dtype, fidelity)
    monitors = [train.ProgressBar(label)] if progress else []
    result = train.Trainer(problem, train.LBFGS(), train.ArmijoWolfe(), monitors).run(
        max_iterations=iterations, timeout=timeout)
    return image.value.value, result
