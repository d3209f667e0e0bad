"""Layer table rows for the basic losses (a loss is not batch-invariant: it averages the batch)."""
from hypothesis import strategies as st

import minieye as me
from minieye import layers as L
from minieye import losses
from minieye.testing import LayerCase
from minieye.testing import strategies as ms

SHAPES = st.one_of(ms.matrix_shapes(), ms.image_shapes())


@st.composite
def pair(draw, loss, away=False):
    shape = draw(SHAPES)
    prediction = draw(ms.arrays(shape))
    # L1 has a kink where prediction == target: keep their difference away from 0
    offset = draw(ms.arrays(shape, away_from=(0.0,), margin=0.1)) if away else draw(ms.arrays(shape))
    return loss, (prediction, prediction + offset)


@st.composite
def cross_entropy(draw):
    n, c = draw(ms.batch_sizes()), draw(st.integers(1, 5))
    spatial = draw(st.sampled_from([(), (1, 3), (2, 2), (3, 1)]))
    logits = draw(ms.arrays((n, c, *spatial), low=-3, high=3))
    return losses.SoftmaxCrossEntropy(), (logits, draw(ms.labels((n, *spatial), c)))


@st.composite
def weighted_sum(draw):
    """A fidelity term on (prediction, target) beside a one-input regularizer on the prediction."""
    shape = draw(ms.matrix_shapes())
    w1, w2 = draw(st.floats(-2, 2)), draw(st.floats(-2, 2))
    regularizer = me.Sequential(L.Square(), L.Mean(axis=(0, 1)))  # mean(p^2), a 0-d output
    loss = draw(st.sampled_from([
        w1 * losses.MSE() + w2 * losses.L1(),
        losses.WeightedSum([(w1, losses.MSE()), (w2, regularizer)]),
        losses.MSE() - losses.L1() / 4,
    ]))
    prediction = draw(ms.arrays(shape))
    return loss, (prediction, prediction + draw(ms.arrays(shape, away_from=(0.0,), margin=0.1)))


CASES = [
    LayerCase(losses.MSE, pair(losses.MSE()), batch_invariant=False),
    LayerCase(losses.L1, pair(losses.L1(), away=True), batch_invariant=False),
    LayerCase(losses.SoftmaxCrossEntropy, cross_entropy(), batch_invariant=False, options={"nondiff": (1,)}),
    LayerCase(losses.WeightedSum, weighted_sum(), batch_invariant=False),
]
