"""Layer table rows for the core layers: dense, activation, shape, combine, source."""
from hypothesis import strategies as st

from minieye import layers as L
from minieye.testing import LayerCase
from minieye.testing import strategies as ms

F64 = "float64"


def _with(layer_strategy, *input_strategies):
    """(layer, inputs) from a layer strategy and input strategies."""
    return st.tuples(layer_strategy, st.tuples(*input_strategies))


@st.composite
def dense(draw):
    n, fin, fout = draw(ms.batch_sizes()), draw(ms.features()), draw(ms.features())
    lead = draw(st.sampled_from([(n,), (n, 2)]))
    layer = L.Dense(fin, fout, bias=draw(st.booleans()), init=draw(st.sampled_from(["he", "glorot"])),
                    dtype=F64, seed=draw(ms.seeds()))
    if layer.bias is not None and draw(st.booleans()):  # a non-zero bias shows a wrong one in the output too
        layer.bias.value[...] = draw(ms.arrays((fout,)))
    return layer, (draw(ms.arrays((*lead, fin))),)


@st.composite
def bias(draw):
    shape = draw(ms.image_shapes())
    if draw(st.booleans()):
        layer, bshape = L.Bias((shape[1], 1, 1), dtype=F64), (shape[1], 1, 1)
    else:
        layer, bshape = L.Bias(shape[-1], dtype=F64), (shape[-1],)
    layer.bias.value[...] = draw(ms.arrays(bshape))
    return layer, (draw(ms.arrays(shape)),)


@st.composite
def linear(draw, cls):
    scale = draw(st.floats(-2, 2))
    layer = L.Linear(scale, draw(st.floats(-2, 2)), dtype=F64) if cls is L.Linear else L.Scale(scale, dtype=F64)
    return layer, (draw(ms.arrays(ms.matrix_shapes())),)


def elementwise(layer, **values):
    shapes = st.one_of(ms.matrix_shapes(), ms.image_shapes())
    return _with(st.just(layer) if not isinstance(layer, st.SearchStrategy) else layer, ms.arrays(shapes, **values))


@st.composite
def clamp(draw):
    low, high = sorted(draw(st.lists(st.floats(-1.5, 1.5), min_size=2, max_size=2)))
    high += 0.2  # room between the bounds for values
    low, high = draw(st.sampled_from([(low, high), (None, high), (low, None)]))
    kinks = [k for k in (low, high) if k is not None]
    return L.Clamp(low, high), (draw(ms.arrays(ms.image_shapes(), away_from=kinks)),)


@st.composite
def softplus(draw):
    """Values kept off the switch to the identity at beta * x == threshold (a jump unless it is large)."""
    beta, threshold = draw(st.sampled_from([0.5, 1.0, 3.0])), draw(st.sampled_from([1.0, 2.0, 20.0]))
    x = draw(ms.arrays(st.one_of(ms.matrix_shapes(), ms.image_shapes()), low=-3, high=3,
                       away_from=(threshold / beta,)))
    return L.Softplus(beta, threshold), (x,)


@st.composite
def softmax(draw):
    shape = draw(st.one_of(ms.matrix_shapes(), ms.image_shapes()))
    axis = draw(st.sampled_from([-1, *range(1, len(shape))]))
    return L.Softmax(axis), (draw(ms.arrays(shape, low=-3, high=3)),)


@st.composite
def reshape(draw):
    n, a, b = draw(ms.batch_sizes()), draw(ms.features()), draw(ms.features())
    target = draw(st.sampled_from([(b, a), (-1,), (a, -1), (1, a * b)]))
    return L.Reshape(target), (draw(ms.arrays((n, a, b))),)


@st.composite
def crop(draw):
    amount = draw(st.one_of(st.integers(0, 1), st.tuples(st.integers(0, 2), st.integers(0, 2)),
                            st.tuples(*[st.integers(0, 2)] * 4)))
    layer = L.Crop(amount)
    left, right, top, bottom = layer.amount
    shape = draw(ms.image_shapes(height=st.integers(top + bottom + 1, top + bottom + 4),
                                 width=st.integers(left + right + 1, left + right + 4)))
    return layer, (draw(ms.arrays(shape)),)


@st.composite
def pad(draw):
    mode = draw(st.sampled_from(L.Pad.MODES))
    amount = draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
                            st.tuples(*[st.integers(0, 3)] * 4)))
    layer = L.Pad(amount, mode=mode)
    least = max(layer.amount) + 1 if mode == "reflect" else 1
    shape = draw(ms.image_shapes(height=st.integers(least, least + 3), width=st.integers(least, least + 3)))
    return layer, (draw(ms.arrays(shape)),)


@st.composite
def broadcasting(draw, cls):
    """1-3 inputs sharing the batch axis; later ones may have size-1 axes that broadcast."""
    shape = draw(ms.image_shapes())
    k = draw(st.integers(1, 3))
    shapes = [shape] + [tuple(d if i == 0 or draw(st.booleans()) else 1 for i, d in enumerate(shape))
                        for _ in range(k - 1)]
    return cls(), tuple(draw(ms.arrays(s)) for s in shapes)


@st.composite
def concat(draw):
    shape = draw(ms.image_shapes())
    axis = draw(st.sampled_from([1, 2, 3, -1]))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    shapes = [tuple(s if i == axis % 4 else d for i, d in enumerate(shape)) for s in sizes]
    return L.Concat(axis), tuple(draw(ms.arrays(s)) for s in shapes)


@st.composite
def reduce(draw, cls):
    shape = draw(ms.image_shapes())
    axis = draw(st.sampled_from([None, 1, -1, (2, 3), [1, 3]]))
    return cls(axis, keepdims=draw(st.booleans())), (draw(ms.arrays(shape)),)


@st.composite
def source(draw):
    shape = draw(st.one_of(ms.image_shapes(), ms.matrix_shapes()))
    if draw(st.booleans()):
        return L.Source(shape, dtype=F64), ()
    return L.Source(value=draw(ms.arrays(shape)), dtype=F64), ()


CASES = [
    LayerCase(L.Dense, dense()),
    LayerCase(L.Bias, bias()),
    LayerCase(L.Linear, linear(L.Linear)),
    LayerCase(L.Scale, linear(L.Scale)),
    LayerCase(L.ReLU, elementwise(L.ReLU(), away_from=(0.0,))),
    LayerCase(L.LeakyReLU, elementwise(st.floats(0.0, 0.5).map(L.LeakyReLU), away_from=(0.0,))),
    LayerCase(L.Sigmoid, elementwise(L.Sigmoid(), low=-4, high=4)),
    LayerCase(L.Tanh, elementwise(L.Tanh())),
    LayerCase(L.Softmax, softmax()),
    LayerCase(L.Abs, elementwise(L.Abs(), away_from=(0.0,))),
    LayerCase(L.Square, elementwise(L.Square())),
    LayerCase(L.Log, elementwise(L.Log(), low=0.2, high=3.0)),
    LayerCase(L.Clamp, clamp()),
    LayerCase(L.GELU, elementwise(L.GELU(), low=-4, high=4)),
    LayerCase(L.SiLU, elementwise(L.SiLU(), low=-4, high=4)),
    LayerCase(L.ELU, elementwise(st.floats(0.0, 2.0).map(L.ELU), away_from=(0.0,))),
    LayerCase(L.Softplus, softplus()),
    LayerCase(L.Reshape, reshape()),
    LayerCase(L.Flatten, _with(st.just(L.Flatten()), ms.arrays(st.one_of(ms.matrix_shapes(), ms.image_shapes())))),
    LayerCase(L.Crop, crop()),
    LayerCase(L.Pad, pad()),
    LayerCase(L.Add, broadcasting(L.Add)),
    LayerCase(L.Multiply, broadcasting(L.Multiply)),
    LayerCase(L.Concat, concat()),
    LayerCase(L.Sum, reduce(L.Sum)),
    LayerCase(L.Mean, reduce(L.Mean)),
    LayerCase(L.Source, source(), batch_invariant=False),
]
