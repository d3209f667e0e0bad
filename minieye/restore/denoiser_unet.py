"""The denoiser's U-Net (DRUNet-like, sized for a CPU) and the reach of any denoiser network.

    level 1 (full size, C channels):  Conv3x3(2 -> C), ReLU, n1 x (Conv3x3, ReLU)
    level 2 (1/2, 2C):  Conv2x2 stride 2, n2 x (Conv3x3, ReLU)
    level 3 (1/4, 4C):  Conv2x2 stride 2, n3 x (Conv3x3, ReLU)
    back up: ConvTranspose2x2 stride 2, + the level's features, m x (Conv3x3, ReLU), ...
    Conv3x3(C -> 1): the noise, scaled (residual learning, as the DnCNN of denoiser.py)

A 3x3 convolution at 1/2 size with twice the channels costs what one at full size costs,
so the lower levels give a receptive field several times wider (smooth images, blur) at
the price of a few full-size layers. The network's input size must be a multiple of
``factor`` (4 for two levels down); ``network_reach`` gives that factor and the exact
receptive radius, which decide the tiles and margins of apply_denoiser. ``widen_unet``
makes a trained network wider without changing what it computes (Net2WiderNet), so that
training can go on from it.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..checks import fail, generator
from ..core import Layer
from ..network import Graph, Sequential

__all__ = ["build_unet", "network_reach", "widen_unet"]


def build_unet(channels: int = 16, down: Sequence[int] = (2, 2), up: Sequence[int] = (1, 1), first: int = 1,
               dtype: Any = "float32", seed: int = 0) -> Graph:
    """The untrained U-Net. Shapes: (N, 2, H, W) -> (N, 1, H, W), H and W multiples of 2**len(down).

    Args:
        channels: C, the full-size width; level k has C * 2**(k-1) channels.
        down: the 3x3 layers at each lower level, on the way down (len(down) levels below the first).
        up: the 3x3 layers after each skip addition on the way up, from the lowest level back
            to level 1 (same length as ``down``).
        first: the 3x3 layers at full size after the first (2 -> C) one.
    """
    from .. import layers
    if channels < 1 or len(down) != len(up) or not down or first < 0 or min(*down, *up) < 0:
        raise fail("build_unet", "channels >= 1 and down, up of the same length >= 1 (counts >= 0)",
                   f"channels={channels}, down={tuple(down)}, up={tuple(up)}, first={first}")
    seeds = iter(range(seed, seed + 1000))
    g = Graph()
    x = g.input()

    def convs(node: Any, width: int, count: int) -> Any:
        for _ in range(count):
            node = g.add(layers.ReLU(), g.add(layers.Conv2D(width, width, 3, padding=1, dtype=dtype,
                                                            seed=next(seeds)), node))
        return node

    h = g.add(layers.ReLU(), g.add(layers.Conv2D(2, channels, 3, padding=1, dtype=dtype, seed=next(seeds)), x))
    skips = [convs(h, channels, first)]
    width = channels
    for count in down:
        h = g.add(layers.Conv2D(width, 2 * width, 2, stride=2, dtype=dtype, seed=next(seeds)), skips[-1])
        width *= 2
        skips.append(convs(h, width, count))
    h = skips.pop()
    for count in up:
        h = g.add(layers.ConvTranspose2D(width, width // 2, 2, stride=2, dtype=dtype, seed=next(seeds)), h)
        width //= 2
        h = convs(g.add(layers.Add(), h, skips.pop()), width, count)
    last = layers.Conv2D(width, 1, 3, padding=1, dtype=dtype, seed=next(seeds))
    last.weight.value *= 0.1  # start near "no noise", as the DnCNN
    g.output(g.add(last, h))
    return g


def _layer_reach(layer: Layer, inputs: list[tuple[int, int]]) -> tuple[int, int]:
    """(radius, stride) of one layer's output from its inputs' (radius, stride).

    A feature of stride s at grid position q stands for input pixels [s q, s q + s - 1] and
    depends on the input within ``radius`` pixels of that block.
    """
    from .. import layers
    radius, stride = max(r for r, _ in inputs), inputs[0][1]
    if any(s != stride for _, s in inputs):
        raise fail("network_reach", "inputs of one size to a combining layer", f"strides {[s for _, s in inputs]}")
    if isinstance(layer, (layers.Conv2D, layers.ConvTranspose2D)):
        k, st = max(layer.kernel_size), max(layer.stride)
        span, pad = max(layer.dilation) * (k - 1), max(layer.geometry.padding)
        if isinstance(layer, layers.Conv2D):  # output q reads input positions q st - pad + [0, span]
            return radius + stride * max(pad, span - pad + 1 - st), stride * st
        if stride % st:
            raise fail("network_reach", "transposed convolutions back to grids the network went down through",
                       f"stride {st} from a grid of stride {stride}")
        fine = stride // st  # output p reads input positions in [(p + pad - span) / st, (p + pad) / st]
        return radius + max(fine * (span - pad), fine * pad + stride - fine), fine
    return radius, stride


def network_reach(net: Layer) -> tuple[int, int]:
    """(radius, factor): how far (pixels) an output pixel sees, and the size multiple the input needs.

    An upper bound on the receptive radius, counting every path (exact for the denoisers of
    this package); ``factor`` is the coarsest stride on the way. For Sequential or Graph
    networks of 2-D (transposed) convolutions and element-wise layers.
    """
    if isinstance(net, Sequential):
        reach = (0, 1)
        for layer in net.layers:
            reach = _layer_reach(layer, [reach])
        return reach[0], 1
    if not isinstance(net, Graph):
        raise fail("network_reach", "a Sequential or Graph network", type(net).__name__)
    structure, steps = net.structure(), net.layers
    reaches: list[tuple[int, int]] = []
    for node in structure["nodes"]:
        reaches.append((0, 1) if node is None else _layer_reach(steps[node[0]], [reaches[i] for i in node[1]]))
    radius, stride = reaches[structure["outputs"][0]]
    if stride != 1:
        raise fail("network_reach", "an output at the input's size", f"stride {stride}")
    return radius, max(s for _, s in reaches)


def _channel_spaces(net: Graph) -> tuple[list[int | None], dict[int, int]]:
    """Each node's channel space (None: not widened) and each space's root (union-find).

    A convolution's output starts a space; element-wise layers keep their input's; an Add
    joins its inputs' spaces into one, since a channel map must agree on everything summed.
    The graph's inputs and output keep their channels.
    """
    from .. import layers
    structure, steps = net.structure(), net.layers
    used = [node[0] for node in structure["nodes"] if node is not None]
    if len(set(used)) < len(used):  # a shared layer would need one channel map for several spaces
        raise fail("widen_unet", "a graph whose layers each appear once", "a layer used at several nodes")
    parent: dict[int, int] = {}

    def root(space: int) -> int:
        while parent[space] != space:
            space = parent[space]
        return space

    spaces: list[int | None] = []
    for index, node in enumerate(structure["nodes"]):
        if node is None:
            spaces.append(None)
            continue
        layer, sources = steps[node[0]], [spaces[i] for i in node[1]]
        if isinstance(layer, (layers.Conv2D, layers.ConvTranspose2D)) and layer.groups == 1:
            spaces.append(None if index in structure["outputs"] else index)
            if index not in structure["outputs"]:
                parent[index] = index
        elif isinstance(layer, layers.Add) and None not in sources:
            for other in sources[1:]:
                parent[root(other)] = root(sources[0])
            spaces.append(sources[0])
        elif isinstance(layer, layers.ReLU):
            spaces.append(sources[0])
        else:
            raise fail("widen_unet", "a graph of ungrouped Conv2D/ConvTranspose2D, ReLU and Add layers "
                       "(Adds of widened features only)", f"{layer.label()} at node {index}")
    return spaces, {space: root(space) for space in parent}


def widen_unet(net: Graph, widths: float | Mapping[int, int] = 4 / 3, seed: int = 0,
               noise: float = 0.1) -> Graph:
    """A wider copy of ``net`` that computes the same function (Net2WiderNet, Chen et al. 2016).

    Every channel space (a convolution's output, joined with what an Add sums it with) gets
    a map g from its new channels to its old ones: the old channels first, then old ones
    drawn at random. Layers writing into the space copy the output filters and biases of
    g(j); layers reading it split the input weights of an old channel among its copies.
    The split is uneven, weight by weight (fractions 1/k (1 + noise z), z normal, centred
    over the k copies so that they sum to 1): the output is unchanged up to rounding, while
    the copies' gradients differ in direction (a scale alone would not do: Adam's steps do
    not see it), so training tells them apart; noise=0 splits evenly (copies stay copies).

    Args:
        net: a Graph of ungrouped 2-D (transposed) convolutions, ReLU and Add, such as
            build_unet's; its inputs and output keep their channels.
        widths: the factor every widened space grows by (rounded), or {old: new} channel
            counts (a space whose count is missing keeps it).
        seed: draws the repeated channels and the split fractions.
    Returns a new Graph (evaluation mode, the dtype of each layer kept); ``net`` is unchanged.
    """
    if not isinstance(net, Graph):
        raise fail("widen_unet", "a Graph network (build_unet's)", type(net).__name__)
    if not noise >= 0:
        raise fail("widen_unet", "noise >= 0", f"noise={noise!r}")
    rng = generator(seed, None, "widen_unet")
    spaces, roots = _channel_spaces(net)
    structure, steps = net.structure(), net.layers
    maps: dict[int, np.ndarray] = {}
    for space in sorted(set(roots.values())):
        old = steps[structure["nodes"][space][0]].out_channels
        new = widths.get(old, old) if isinstance(widths, Mapping) else int(round(old * widths))
        if new < old:
            raise fail("widen_unet", f"at least the {old} channels a space has", f"{new}")
        maps[space] = np.concatenate([np.arange(old), rng.integers(0, old, size=new - old)])

    def channel_map(space: int | None, count: int) -> np.ndarray:
        return np.arange(count) if space is None else maps[roots[space]]

    def split(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Fractions (..., len(g)) that sum to 1 over the copies of each old channel."""
        one_hot = np.eye(int(g.max()) + 1)[g]  # (new, old)
        counts = one_hot.sum(axis=0)
        z = rng.standard_normal(shape + (len(g),))
        z -= (z @ one_hot / counts) @ one_hot.T
        return (1.0 + noise * z) / counts[g]

    wide = Graph()
    nodes: list[Any] = []
    for index, node in enumerate(structure["nodes"]):
        if node is None:
            nodes.append(wide.input())
            continue
        layer = steps[node[0]]
        config = layer.config()
        if hasattr(layer, "weight"):
            g_in = channel_map(spaces[node[1][0]], layer.in_channels)
            g_out = channel_map(spaces[index], layer.out_channels)
            config.update(in_channels=len(g_in), out_channels=len(g_out))
            copy = type(layer)(**config, seed=0)
            if layer.transposed:  # weight (in, out, kh, kw)
                w = layer.weight.value[g_in][:, g_out]
                w = w * np.moveaxis(split(g_in, w.shape[1:]), -1, 0)
            else:  # weight (out, in, kh, kw)
                w = layer.weight.value[g_out][:, g_in]
                w = w * np.moveaxis(split(g_in, (w.shape[0],) + w.shape[2:]), -1, 1)
            copy.weight.value[...] = w
            if layer.bias is not None:
                copy.bias.value[...] = layer.bias.value[g_out]
        else:
            copy = type(layer)(**config)
        nodes.append(wide.add(copy, *(nodes[i] for i in node[1])))
    wide.output(*(nodes[i] for i in structure["outputs"]))
    wide.eval()
    return wide
