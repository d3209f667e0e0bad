"""Layer table rows for the regularizers (one-input losses on images; they average over the batch)."""
from hypothesis import strategies as st

from minieye import losses
from minieye.testing import LayerCase
from minieye.testing import strategies as ms


@st.composite
def image(draw, layer, low=-1.0, high=1.0, away=None):
    shape = draw(ms.image_shapes())
    kwargs = {"away_from": away, "margin": 0.05} if away else {}
    return layer, (draw(ms.arrays(shape, low=low, high=high, **kwargs)),)


@st.composite
def volume(draw, layer):
    sizes = ms.spatial_sizes(1, 4)
    shape = (draw(ms.batch_sizes(1, 2)), draw(ms.channels(1, 2)), draw(sizes), draw(sizes), draw(sizes))
    return layer, (draw(ms.arrays(shape, low=-1.0, high=1.0)),)


CASES = [
    LayerCase(losses.TotalVariation, image(losses.TotalVariation(eps=0.1)), batch_invariant=False),
    LayerCase(losses.TotalVariation, image(losses.TotalVariation(eps=1e-3), away=(0.0,)), id="TotalVariation-small-eps",
              batch_invariant=False, options={"rtol": 1e-4}),
    LayerCase(losses.TotalVariation, image(losses.TotalVariation(eps=0.1, power=0.7)), id="TotalVariation-power",
              batch_invariant=False),
    LayerCase(losses.TotalVariation3D, volume(losses.TotalVariation3D(eps=0.1)), batch_invariant=False),
    LayerCase(losses.TotalVariation3D, volume(losses.TotalVariation3D(eps=0.1, power=0.7)),
              id="TotalVariation3D-power", batch_invariant=False),
    LayerCase(losses.SecondOrderTV, image(losses.SecondOrderTV(eps=0.1)), batch_invariant=False),
    LayerCase(losses.Tikhonov, image(losses.Tikhonov(0)), batch_invariant=False),
    LayerCase(losses.Tikhonov, image(losses.Tikhonov(1)), id="Tikhonov-order1", batch_invariant=False),
    # NonNegativity's second derivative jumps at 0: keep values away from it
    LayerCase(losses.NonNegativity, image(losses.NonNegativity(), away=(0.0,)), batch_invariant=False),
    LayerCase(losses.Entropy, image(losses.Entropy(), low=0.1, high=2.0), batch_invariant=False),
]
