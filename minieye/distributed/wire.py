"""What travels to the workers: the network and loss in minieye's file format, as bytes.

A model is packed once per problem with ``me.io.encode`` (the same description
``me.io.save`` writes: ``meta.json`` + ``arrays.npz``), as a JSON string and the
bytes of an ``.npz`` file read back with ``allow_pickle=False``. Workers rebuild it
with ``me.io.decode``, so they run the same registered layer classes a loaded file
would, and no minieye object is ever pickled. Only plain values travel: str, bytes,
lists of ints.

Which parameters the problem optimises is sent as positions in the list of the
model's distinct parameters (the net's first, then the loss's), the order that
``Layer.parameters()`` gives on both sides.
"""
from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from ..core import Layer, Parameter, unique_parameters
from ..io import decode, encode
from ..randomness import layer_generators

__all__ = ["LayerState", "buffer_copies", "distinct_parameters", "generators", "layer_state", "pack_model",
           "partition_states", "set_layer_state", "unpack_model"]

# What the client sends with every evaluation, for the layers in ``Problem.layers()`` order:
# each layer's training flag, every buffer (running statistics), and a seed for every random
# generator (Dropout's masks), drawn for this partition from the client's own generator.
LayerState = tuple[list[bool], list[np.ndarray], list[int]]


def distinct_parameters(net: Layer, loss: Layer) -> list[Parameter]:
    """Every Parameter of ``net`` then ``loss``, each once, frozen ones included."""
    return unique_parameters(net, loss)


def _layer_bytes(layer: Layer) -> tuple[str, bytes]:
    meta, arrays = encode(layer)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return json.dumps(meta, allow_nan=False), buffer.getvalue()


def _layer_from(packed: tuple[str, bytes], where: str) -> Layer:
    meta_json, npz = packed
    with np.load(io.BytesIO(npz), allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    return decode(json.loads(meta_json), arrays, where=where)


def pack_model(net: Layer, loss: Layer, chosen: list[Parameter]) -> dict[str, Any]:
    """``net``, ``loss`` and the positions of ``chosen`` among their distinct parameters.

    A parameter shared between the net and the loss would be stored twice (they are
    encoded separately) and lose its tie on the workers, so it is refused.
    """
    net_ids = {id(p) for p in net.parameters()}
    shared = [p for p in loss.parameters() if id(p) in net_ids]
    if shared:
        raise ValueError(f"minieye.distributed: the loss {loss.label()} shares parameter "
                         f"{shared[0].name!r} with the network; a loss that holds network parameters "
                         f"cannot be sent to workers. Put that term inside the network instead")
    everything = distinct_parameters(net, loss)
    position = {id(p): i for i, p in enumerate(everything)}
    return {"net": _layer_bytes(net), "loss": _layer_bytes(loss),
            "chosen": [position[id(p)] for p in chosen],
            "shapes": [list(p.shape) for p in chosen]}


def unpack_model(model: dict[str, Any]) -> tuple[Layer, Layer, list[Parameter]]:
    """The worker's own ``(net, loss, chosen parameters)`` rebuilt from ``pack_model``'s output."""
    net = _layer_from(model["net"], "minieye.distributed worker (network)")
    loss = _layer_from(model["loss"], "minieye.distributed worker (loss)")
    everything = distinct_parameters(net, loss)
    chosen = [everything[i] for i in model["chosen"]]
    got = [list(p.shape) for p in chosen]
    if got != model["shapes"]:
        raise ValueError(f"minieye.distributed worker: the rebuilt network's parameters have shapes {got}; "
                         f"the client's have {model['shapes']} (different minieye versions on client and worker?)")
    return net, loss, chosen


def generators(layers: list[Layer]) -> list[np.random.Generator]:
    """Every random generator the layers keep, in order."""
    return [g for layer in layers for g in layer_generators(layer).values()]


def buffer_copies(layers: list[Layer]) -> list[np.ndarray]:
    """Copies of every buffer (running statistics) of ``layers``, in order."""
    return [np.array(value, copy=True) for layer in layers for value in layer.buffers().values()]


def layer_state(layers: list[Layer]) -> LayerState:
    """The modes of ``layers`` and copies of their buffers, without seeds (the generators stay as they are)."""
    return [bool(layer.training) for layer in layers], buffer_copies(layers), []


def partition_states(layers: list[Layer], partitions: int) -> list[LayerState]:
    """``layer_state`` for each of ``partitions`` partitions, each with a fresh seed per generator
    drawn from the layers' own generators: a run is reproducible, and every partition draws its
    own masks."""
    modes, buffers, _ = layer_state(layers)
    found = generators(layers)
    return [(modes, buffers, [int(g.integers(2 ** 63)) for g in found]) for _ in range(partitions)]


def set_layer_state(layers: list[Layer], state: LayerState) -> None:
    """Write a ``layer_state`` or ``partition_states`` entry (from the client's copy of the same
    network) into ``layers``; an empty seeds list leaves the generators as they are."""
    modes, buffers, seeds = state
    targets = [value for layer in layers for value in layer.buffers().values()]
    found = generators(layers)
    if len(modes) != len(layers) or len(buffers) != len(targets) or len(seeds) not in (0, len(found)):
        raise ValueError(f"minieye.distributed worker: the client sent the state of {len(modes)} layers, "
                         f"{len(buffers)} buffers and {len(seeds)} generators; this network has {len(layers)}, "
                         f"{len(targets)} and {len(found)} (different minieye versions on client and worker?)")
    shapes = [(np.shape(value), target.shape) for value, target in zip(buffers, targets)]
    if any(sent != own for sent, own in shapes):
        raise ValueError(f"minieye.distributed worker: the client sent buffers of shapes {[s for s, _ in shapes]}; "
                         f"this network's have {[o for _, o in shapes]} (different networks on client and worker?)")
    for layer, mode in zip(layers, modes):
        layer.training = mode
    for target, value in zip(targets, buffers):
        np.copyto(target, value)
    for g, seed in zip(found, seeds):
        g.bit_generator.state = type(g.bit_generator)(seed).state
