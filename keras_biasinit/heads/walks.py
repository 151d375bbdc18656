"""The walk from each output to its head, and what `layer=` changes.

`walkers_of(model, sample)` gives, per output, a function that walks back
from that output (`keras_biasinit.heads.graph` for a model with a graph,
`keras_biasinit.heads.trace` for a subclassed one, traced on `sample()`).
`output_paths` runs them with the `layer=` and `activation=` of each output:
an unproven walk is an error naming both, unless `layer=` names the head,
which is then taken on the caller's word.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

import keras

from keras_biasinit.heads.arguments import activation_arg
from keras_biasinit.heads.arguments import layer_arg
from keras_biasinit.heads.arguments import per_output
from keras_biasinit.heads.graph import graph_outputs
from keras_biasinit.heads.graph import walk_graph
from keras_biasinit.heads.graph import walk_layers
from keras_biasinit.heads.path import Path
from keras_biasinit.heads.path import Unproven
from keras_biasinit.heads.trace import trace
from keras_biasinit.heads.trace import walk_trace

__all__ = ["NAME_IT", "output_paths", "walkers_of"]

NAME_IT = (
    "Pass `layer=` (the layer whose bias to set, by name or as the layer; a dict "
    "by output name for several outputs) and, if an operation outside any layer "
    "follows it, `activation=` (e.g. 'softmax')."
)

def _walk(walk: Callable, target: Any, where: str) -> Path:
    """The path from one output; `target` (from `layer=`) is taken on the
    caller's word where the walk cannot see."""
    try:
        path = walk(target)
    except Unproven as stop:
        if target is None:
            raise ValueError(f"{where}: the head cannot be found: {stop.reason}. "
                             f"{NAME_IT}") from None
        return Path(target, None, [], proven=False)
    if target is not None and path.head is not target:
        raise ValueError(
            f"{where}: layer '{target.name}' is not its head: the output comes from "
            f"layer '{path.head.name}' ({type(path.head).__name__}) through "
            "output-preserving layers only. Pass that layer, or none."
        )
    return path


def walkers_of(model: keras.Model, sample: Optional[Callable]):
    """`(name or None, walk(target, activation_fn))` per output, and whether
    the model has a graph (else its `call()` was traced)."""
    outputs = graph_outputs(model)
    if outputs is not None:
        return [(name, lambda target, _, t=tensor: walk_graph(t, target))
                for name, tensor in outputs], True
    if isinstance(model, keras.Sequential):  # not built: its list of layers
        return [(model.layers[-1].name if model.layers else None,
                 lambda target, _: walk_layers(model.layers, target))], True
    if sample is None:
        def unseen(target, _):
            raise Unproven("the model is subclassed, and no data was given to "
                           "trace `call()` with")
        return [(None, unseen)], False
    recorded = trace(model, sample())
    return [(name, lambda target, fn, t=tensor: walk_trace(recorded, t, target, fn))
            for name, tensor in recorded.named_outputs()], False


def _one_output(target: Any, walkers, names) -> List[Any]:
    """A single `layer=` on a model with several outputs: it names the head
    of the one output it feeds."""
    hits = []
    for i, (_, walk) in enumerate(walkers):
        try:
            hits += [i] if walk(None, None).head is target else []
        except Unproven:
            pass
    if len(hits) != 1:
        raise ValueError(
            f"The model has several outputs {names}, and layer '{target.name}' is "
            "not the head of exactly one of them: pass `layer=` as a dict by "
            "output name."
        )
    return [target if i == hits[0] else None for i in range(len(walkers))]


def output_paths(model, layer, activation, walkers, graph) -> List[Tuple[Path, Any]]:
    names = [name for name, _ in walkers]
    targets = [layer_arg(model, t) for t in per_output(layer, names, "layer")]
    if layer is not None and not isinstance(layer, dict) and len(walkers) > 1:
        targets = _one_output(targets[0], walkers, names)
    acts = [activation_arg(a) for a in per_output(activation, names, "activation")]
    paths = []
    for (name, walk), target, (act, fn) in zip(walkers, targets, acts):
        where = f"Output '{name}'" if name else "The model's output"
        path = _walk(lambda t, w=walk, f=fn: w(t, f), target, where)
        if graph and path.proven and act not in (None, "linear"):
            raise ValueError(
                f"{where}: `activation='{act}'` is for an operation outside any "
                f"layer after the head, but the model's graph shows every layer "
                f"from layer '{path.head.name}' to the output. Leave it out."
            )
        paths.append((path, act))
    return paths
