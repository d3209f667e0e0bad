"""Layer table rows for NonLocalTV: a random guide, its graph, and an input of the guide's shape."""
from hypothesis import strategies as st

from minieye import losses
from minieye.testing import LayerCase
from minieye.testing import strategies as ms


@st.composite
def nonlocal_tv(draw, eps=0.1, leading=2):
    """A (..., H, W) shape with 0 to ``leading`` leading axes, a graph from a random guide, and x."""
    lead = draw(st.lists(st.integers(1, 2), min_size=0, max_size=leading))
    sizes = ms.spatial_sizes(1, 5)
    shape = (*lead, draw(sizes), draw(sizes))
    guide = draw(ms.arrays(shape, low=0.0, high=1.0))
    graph = losses.nonlocal_graph(guide, h=draw(st.sampled_from([0.05, 0.3])), search=draw(st.integers(0, 2)),
                                  patch=draw(st.integers(0, 1)), neighbors=draw(st.integers(0, 4)))
    return losses.NonLocalTV(graph, eps=eps), (draw(ms.arrays(shape, low=-1.0, high=1.0)),)


CASES = [
    # sums run over every plane: the value is not a per-sample quantity (like the regularizers)
    LayerCase(losses.NonLocalTV, nonlocal_tv(), batch_invariant=False),
    LayerCase(losses.NonLocalTV, nonlocal_tv(eps=1e-2), id="NonLocalTV-small-eps", batch_invariant=False,
              options={"rtol": 1e-4}),
]
