"""Sequential and Graph: composition, fan-out, shared and frozen weights, nesting, dead branches, errors."""
import numpy as np
import pytest

import minieye as me
from minieye import layers as L
from minieye import losses
from minieye.core import DeltaSet, Layer
from minieye.testing import check_gradients, check_layer

RNG = np.random.default_rng(7)
X = RNG.normal(size=(3, 4))


def dense(i, o, seed=0):
    layer = L.Dense(i, o, dtype="float64", seed=seed)
    layer.bias.value[...] = np.random.default_rng(seed + 100).normal(size=o)
    return layer


class Spy(Layer):
    """Identity that counts its backward calls."""

    def __init__(self, name=None):
        super().__init__(name)
        self.calls = 0

    def forward(self, x):
        def backward(dy, deltas):
            self.calls += 1
            return dy
        return np.asarray(x), backward


def test_sequential_composes_and_passes_the_harness():
    a, b = dense(4, 5), dense(5, 2, seed=1)
    net = me.Sequential(a, L.Tanh(), b)
    assert np.allclose(net(X), b(np.tanh(a(X))))
    assert net.parameters() == [a.weight, a.bias, b.weight, b.bias]
    assert len(net) == 3 and net[1].__class__ is L.Tanh
    check_layer(net, X)


def test_fan_out_gradients_are_summed():
    g = me.Graph()
    x = g.input()
    g.output(g.add(L.Add(), x, x))
    y, backward = g.forward(X)
    dy = RNG.normal(size=X.shape)
    assert np.allclose(backward(dy, DeltaSet()), 2 * dy)

    g = me.Graph()
    x = g.input()
    a = g.add(dense(4, 4), x)
    b = g.add(L.Tanh(), a)
    g.output(g.add(L.Multiply(), a, b))
    check_layer(g, X)


def test_a_layer_at_two_nodes_shares_weights_and_sums_gradients():
    shared = dense(4, 4, seed=3)
    g = me.Graph()
    x = g.input()
    h = g.add(shared, x)
    g.output(g.add(shared, g.add(L.Tanh(), h)))
    assert g.parameters() == [shared.weight, shared.bias]
    check_gradients(g, X)  # a numeric perturbation of the shared weight moves both uses

    y, backward = g.forward(X)
    dy = RNG.normal(size=y.shape)
    deltas = DeltaSet()
    backward(dy, deltas)
    # the same computation with two separate copies of the layer: the shared gradient is their sum
    twin = dense(4, 4, seed=3)
    net = me.Sequential(shared, L.Tanh(), twin)
    y2, backward2 = net.forward(X)
    separate = DeltaSet()
    backward2(dy, separate)
    assert np.allclose(y, y2)
    assert np.allclose(deltas[shared.weight], separate[shared.weight] + separate[twin.weight])


def test_nesting_graph_and_sequential():
    inner = me.Graph()
    x = inner.input()
    inner.output(inner.add(L.Add(), x, inner.add(dense(4, 4, seed=5), x)))
    net = me.Sequential(me.Sequential(dense(4, 4, seed=6), L.Sigmoid()), inner, dense(4, 2, seed=7))
    assert len(net.parameters()) == 6
    check_layer(net, X)


def test_several_inputs_and_outputs_and_none_gradient():
    g = me.Graph()
    a, b = g.input(), g.input()
    s = g.add(L.Multiply(), a, b)
    spy = Spy()
    t = g.add(spy, g.add(dense(4, 3, seed=9), s))
    g.output(s, t)
    assert g.n_inputs == 2
    B = RNG.normal(size=(3, 4))
    (ys, yt), backward = g.forward(X, B)
    assert np.allclose(ys, X * B) and yt.shape == (3, 3)
    check_gradients(g, X, B)
    dy = RNG.normal(size=ys.shape)
    spy.calls = 0
    dxs = backward((dy, None), DeltaSet())
    assert spy.calls == 0  # nothing flows into the branch whose output gradient is None
    zero = backward((dy, np.zeros(yt.shape)), DeltaSet())
    assert np.allclose(dxs[0], zero[0]) and np.allclose(dxs[1], zero[1])
    assert np.allclose(dxs[0], dy * B)


def test_frozen_parameters_get_no_delta_but_inputs_still_get_gradients():
    first, second = dense(4, 4, seed=11), dense(4, 2, seed=12)
    net = me.Sequential(first, L.Tanh(), second)
    second.freeze()
    y, backward = net.forward(X)
    deltas = DeltaSet()
    dx = backward(np.ones(y.shape), deltas)
    assert set(deltas) == {first.weight, first.bias}
    second.unfreeze()
    deltas2 = DeltaSet()
    dx2 = net.forward(X)[1](np.ones(y.shape), deltas2)
    assert np.allclose(dx, dx2) and np.allclose(deltas[first.weight], deltas2[first.weight])
    first.freeze()
    check_layer(net, X)  # gradient checks cover only unfrozen parameters


def test_dead_branches_never_run_backward():
    constant = L.Source(value=np.ones((3, 4)), dtype="float64").freeze()
    spy = Spy()
    g = me.Graph()
    x = g.input()
    c = g.add(spy, g.add(constant))
    g.output(g.add(L.Add(), x, c))
    y, backward = g.forward(X)
    assert np.allclose(y, X + 1)
    assert np.allclose(backward(np.ones(y.shape), DeltaSet()), np.ones(y.shape))
    assert spy.calls == 0

    seq_spy = Spy()
    chain = me.Sequential(constant, seq_spy)
    y, backward = chain.forward()
    assert backward(np.ones(y.shape), DeltaSet()) is None and seq_spy.calls == 0

    constant.unfreeze()  # a trainable source makes the branch alive
    deltas = DeltaSet()
    g.forward(X)[1](np.ones(y.shape), deltas)
    assert spy.calls == 1 and np.allclose(deltas[constant.value], np.ones((3, 4)))


def test_learning_an_input_through_a_source():
    image = L.Source((2, 3), dtype="float64")
    target = RNG.normal(size=(2, 3))
    net = me.Sequential(image, L.Scale(2.0, dtype="float64").freeze())
    loss = losses.MSE()
    for _ in range(50):
        y, backward = net.forward()
        value, loss_backward = loss.forward(y, target)
        deltas = DeltaSet()
        backward(loss_backward(1.0, deltas)[0], deltas)
        deltas.apply(-0.2)
    assert np.allclose(image.value.value, target / 2, atol=1e-6)


def test_errors_name_the_network_and_what_was_expected():
    g = me.Graph(name="net")
    x = g.input()
    with pytest.raises(ValueError, match="Graph.*'net'.*expected a Layer"):
        g.add(np.tanh, x)
    with pytest.raises(ValueError, match="expected 2 input node"):
        g.add(losses.MSE(), x)
    other = me.Graph().input()
    with pytest.raises(ValueError, match="input nodes made by this graph"):
        g.add(L.ReLU(), other)
    with pytest.raises(ValueError, match="output nodes declared"):
        g.forward(X)
    g.output(g.add(L.ReLU(), x))
    with pytest.raises(ValueError, match="expected 1 input array"):
        g.forward(X, X)
    y, backward = g.forward(X)
    with pytest.raises(ValueError, match=r"dy of the output's shape \(3, 4\)"):
        backward(np.ones((2, 4)), DeltaSet())
    with pytest.raises(ValueError, match=r"Dense\(4->2\) forward"):
        me.Sequential(L.ReLU(), L.Dense(4, 2))(np.zeros((3, 5)))


def test_sequential_refuses_non_layers_and_multi_input_layers():
    with pytest.raises(ValueError, match="Layer instances"):
        me.Sequential(L.ReLU(), "tanh")
    with pytest.raises(ValueError, match="use a Graph"):
        me.Sequential(L.ReLU(), losses.MSE())


class AskingSpy(Spy):
    """A Spy that records whether each backward call's input gradient was wanted."""

    def __init__(self, name=None):
        super().__init__(name)
        self.wanted = []

    def forward(self, x):
        y, inner = super().forward(x)

        def backward(dy, deltas):
            self.wanted.append(me.core.input_grad_needed())
            return inner(dy, deltas)
        return y, backward


def test_data_inputs_skip_input_gradients_and_leading_parameter_free_layers():
    lead, mid = Spy("lead"), AskingSpy("mid")
    first = dense(4, 4)
    net = me.Sequential(lead, first, mid, dense(4, 2, seed=1))
    y, backward = net.forward(X)
    with me.core.input_grad(False):          # the caller (e.g. a Problem) treats X as data
        deltas = DeltaSet()
        assert backward(np.ones_like(y), deltas) is None
    assert lead.calls == 0 and mid.wanted == [True] and len(deltas) == 4
    reference = DeltaSet()
    dx = net.forward(X)[1](np.ones_like(y), reference)     # by default the input gradient is computed
    assert dx.shape == X.shape and lead.calls == 1
    for p in net.parameters():
        np.testing.assert_array_equal(deltas[p], reference[p])


def test_graph_inputs_that_are_data_get_no_gradient_work():
    g = me.Graph()
    x = g.input()
    spy, asking = Spy("data branch"), AskingSpy("after dense")
    h = g.add(dense(4, 4), g.add(spy, x))
    g.output(g.add(L.Add(), g.add(asking, h), x))
    y, backward = g.forward(X)
    with me.core.input_grad(False):
        assert backward(np.ones_like(y), DeltaSet()) is None
    assert spy.calls == 0 and asking.wanted == [True]


def test_problem_does_not_ask_the_first_dense_layer_for_its_input_gradient():
    first = dense(4, 3)
    net = me.Sequential(first, L.Tanh(), dense(3, 1, seed=1))
    problem = me.train.Problem(net, losses.MSE(), X, np.zeros((3, 1)))
    value, deltas = problem.evaluate()
    assert np.isfinite(value) and set(deltas) == set(net.parameters())
    check_gradients(net, X)  # the harness still sees full input gradients


def test_two_output_graph_given_one_array_says_it_wants_a_tuple():
    g = me.Graph(name="two")
    x = g.input()
    g.output(g.add(L.ReLU(), x), g.add(L.Tanh(), x))
    (a, b), backward = g.forward(X)
    with pytest.raises(ValueError, match=r"Graph.*'two' backward: expected a tuple of 2 output gradients.*"
                                         r"got one ndarray of shape \(3, 4\)"):
        backward(np.ones_like(a), DeltaSet())
    with pytest.raises(ValueError, match="expected 2 output gradients; got 3"):
        backward((a, b, a), DeltaSet())
    dx = backward([np.ones_like(a), None], DeltaSet())  # a list works too
    np.testing.assert_array_equal(dx, (X > 0).astype(float))


def test_sequential_constructor_errors_name_the_sequential_not_an_empty_one():
    with pytest.raises(ValueError, match=r"^Sequential: expected Layer instances; got item 1 is str"):
        me.Sequential(L.ReLU(), "tanh")
    with pytest.raises(ValueError, match=r"^Sequential 'enc': expected single-input layers"):
        me.Sequential(L.ReLU(), losses.MSE(), name="enc")


class CountingDense(L.Dense):
    """A Dense layer that counts how often its parameters are listed."""

    listed = 0

    def parameters(self):
        CountingDense.listed += 1
        return super().parameters()


def test_trainable_flags_are_computed_once_per_pass_in_nested_networks():
    leaves = [CountingDense(4, 4, dtype="float64", seed=i) for i in range(6)]
    inner = me.Graph()
    x = inner.input()
    inner.output(inner.add(L.Add(), inner.add(leaves[0], x), inner.add(leaves[1], x)))
    net = me.Sequential(me.Sequential(inner, L.ReLU(), leaves[2]), me.Sequential(leaves[3], leaves[4]), leaves[5])
    reference = net(X)
    CountingDense.listed = 0
    y, backward = net.forward(X)
    with me.core.input_grad(False):
        backward(np.ones_like(y), DeltaSet())
    assert CountingDense.listed == len(leaves)  # once each; before: at every level, in forward and backward
    leaves[5].freeze()  # the next pass sees it: the memo lives as long as one pass
    _, backward = net.forward(X)
    deltas = DeltaSet()
    backward(np.ones_like(y), deltas)
    assert leaves[5].weight not in deltas and leaves[0].weight in deltas
    np.testing.assert_array_equal(net(X), reference)


def test_graph_layers_cache_follows_add():
    g = me.Graph()
    x = g.input()
    a = g.add(dense(4, 4), x)
    assert len(g.layers) == 1 and len(g.parameters()) == 2
    g.layers.append(L.ReLU())  # a copy: the graph is unchanged
    assert len(g.layers) == 1
    relu = L.ReLU()
    g.add(relu, a)
    assert g.layers[-1] is relu and g.trainable
    g.layers[0].freeze()
    assert not g.trainable


def test_a_sequential_may_end_in_a_graph_with_several_outputs():
    g = me.Graph()
    x = g.input()
    h = g.add(dense(4, 3), x)
    g.output(h, g.add(L.Tanh(), h))
    net = me.Sequential(dense(4, 4, seed=2), g)
    (a, b), backward = net.forward(X)
    deltas = DeltaSet()
    dx = backward((np.ones_like(a), None), deltas)
    assert dx.shape == X.shape and len(deltas) == 4
    with pytest.raises(ValueError, match=r"a tuple of 2 output gradients"):
        backward(np.ones_like(a), DeltaSet())


def test_sequential_n_inputs_follows_its_first_layer_when_the_list_changes():
    net = me.Sequential(dense(4, 4))
    net.layers.insert(0, L.Source(value=X))
    assert net.n_inputs == 0
    assert net().shape == (3, 4)  # called without inputs, as its new first layer asks
    net.layers.pop(0)
    assert net.n_inputs == 1 and net(X).shape == (3, 4)


def _loops():
    """Networks inside themselves: last, first (so that reading n_inputs recurses), and through a
    nested network (the loop may be named from either of its networks); with the chain (a regex)
    each error must name."""
    last = me.Sequential(dense(4, 4), name="last")
    last.layers.append(last)
    first = me.Sequential(dense(4, 4), name="first")
    first.layers.insert(0, first)
    inner = me.Sequential(dense(4, 4), name="inner")
    outer = me.Sequential(inner, dense(4, 4), name="outer")
    inner.layers.insert(0, outer)
    return [(last, r"'last' -> Sequential\[2\] 'last'"), (first, r"'first' -> Sequential\[2\] 'first'"),
            (outer, r"'(outer|inner)' -> Sequential\[2\] '(inner|outer)' -> Sequential\[2\] '\1'")]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the repeated Dense overflows before the loop is seen
@pytest.mark.parametrize("use", ["call", "parameters", "n_inputs"])
def test_a_sequential_inside_itself_is_refused_naming_the_loop(use):
    for net, chain in _loops():
        if use == "n_inputs" and net.name == "last":
            assert net.n_inputs == 1  # its first layer is a Dense: no loop is followed
            continue
        with pytest.raises(ValueError, match=r"expected no network inside itself; got Sequential\[2\] "
                                             + chain + r" \(each"):
            {"call": lambda: net(X), "parameters": net.parameters, "n_inputs": lambda: net.n_inputs}[use]()


def test_a_network_too_deep_for_python_but_without_a_loop_keeps_its_recursion_error():
    net = dense(4, 4)
    for _ in range(3000):
        net = me.Sequential(net)
    with pytest.raises(RecursionError):
        net.parameters()
