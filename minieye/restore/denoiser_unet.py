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
receptive radius, which decide the tiles and margins of apply_denoiser.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..checks import fail
from ..core import Layer
from ..network import Graph, Sequential

__all__ = ["build_unet", "network_reach"]


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
