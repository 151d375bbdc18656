"""The graph rewrite behind `keras_biasinit.data.prune` (its docstring says how).

The chain of dataset ops from the output down, the components each of its
edges must carry, and the rewritten `GraphDef` (the function bodies are
`keras_biasinit.data._prune_functions`'s). Indices are the element's flat
components, as in the ops' `output_types`.
"""

from __future__ import annotations

from typing import Iterable, List, Set, Tuple

import tensorflow as tf
from tensorflow.core.framework import graph_pb2
from keras_biasinit.data import _prune_functions as functions
from keras_biasinit.data._prune_functions import Unsafe

#: Ops that carry each component through on its own.
PASS_THROUGH = frozenset({
    "PrefetchDataset", "BatchDataset", "BatchDatasetV2", "ParallelBatchDataset",
    "PaddedBatchDatasetV2", "TakeDataset", "SkipDataset", "RepeatDataset",
    "ShuffleDataset", "ShuffleDatasetV2", "ShuffleDatasetV3",
    "ShuffleAndRepeatDataset", "ShuffleAndRepeatDatasetV2", "ShardDataset",
    "UnbatchDataset", "RebatchDataset", "RebatchDatasetV2", "ModelDataset",
    "OptionsDataset", "MaxIntraOpParallelismDataset", "PrivateThreadPoolDataset",
    "AssertCardinalityDataset",
})
MAPS = frozenset({"MapDataset", "ParallelMapDataset", "ParallelMapDatasetV2"})
FILTERS = frozenset({"FilterDataset"})

def prune(dataset: tf.data.Dataset, needed: List[int],
          width: int) -> Tuple[tf.Tensor, List[int], int]:
    """The dataset's variant computing only (at least) the components `needed`
    of its `width`.

    Returns `(variant, carried, maps)`: the rebuilt dataset, the components its
    elements carry (sorted, a superset of `needed`) and how many map
    functions lost work. Raises `Unsafe` with the reason where it cannot.
    """
    try:  # captured variables and tables are copied as they are now
        serialized = dataset._as_serialized_graph(  # noqa: SLF001
            external_state_policy=tf.data.experimental.ExternalStatePolicy.IGNORE)
    except Exception as error:  # noqa: BLE001
        raise Unsafe(f"its graph cannot be serialized: {type(error).__name__}")
    graph_def = graph_pb2.GraphDef.FromString(serialized.numpy())
    nodes = {node.name: node for node in graph_def.node}
    library = {f.signature.name: f for f in graph_def.library.function}
    chain, bottom = _chain(graph_def, nodes)
    if _width((chain or [nodes[bottom]])[0]) != width:
        raise Unsafe("an unexpected dataset graph")
    edges = _edges(chain, library, needed, _width(nodes[bottom]))
    maps = 0
    for node, above, below in zip(chain, edges, edges[1:]):
        maps += _rewrite(node, above, below, library, graph_def)
    if not maps:
        raise Unsafe("no map computes what the pass skips")
    if len(edges[-1]) < _width(nodes[bottom]):
        _insert_projection(graph_def, chain[-1], nodes[bottom], edges[-1])
    return tf.raw_ops.DatasetFromGraph(
        graph_def=graph_def.SerializeToString()), edges[0], maps


def _width(node) -> int:
    return len(_types(node))


def _types(node) -> List[int]:
    key = "output_types" if "output_types" in node.attr else "Toutput_types"
    return list(node.attr[key].list.type)


def _chain(graph_def, nodes) -> Tuple[list, str]:
    """The known ops from the output down, and the name of the op below them."""
    output = next(n for n in graph_def.node if n.op == "_Retval")
    name, chain = functions.source(output.input[0]), []
    while nodes[name].op in PASS_THROUGH | MAPS | FILTERS:
        chain.append(nodes[name])
        name = functions.source(nodes[name].input[0])
    return chain, name


def _edges(chain, library, needed, bottom_width) -> List[List[int]]:
    """The components each edge carries: `edges[i]` above `chain[i]`,
    `edges[-1]` below the last; grown to a fixed point."""
    sets: List[Set[int]] = [set(needed)] + [set() for _ in chain]
    changed = True
    while changed:
        changed = False
        for i, node in enumerate(chain):  # down: what each op needs below it
            below = _needs_below(node, sets[i], library)
            changed |= not below <= sets[i + 1]
            sets[i + 1] |= below
        for i in reversed(range(len(chain))):  # up: what passes through
            if _passes_through(chain[i]) and not sets[i + 1] <= sets[i]:
                sets[i] |= sets[i + 1]
                changed = True
    if max(sets[-1], default=-1) >= bottom_width:
        raise Unsafe("an unexpected dataset graph")
    return [sorted(s) for s in sets]


def _passes_through(node) -> bool:
    return node.op not in MAPS


def _needs_below(node, above: Set[int], library) -> Set[int]:
    """The components `node` needs from below to give `above`."""
    if node.op in PASS_THROUGH:
        return set(above)
    function = library[_function_name(node)]
    outputs = sorted(above) if node.op in MAPS else [0]
    nodes, args = functions.cone(function, outputs)
    functions.check_stateless(nodes, function, library)
    names = [a.name for a in function.signature.input_arg]
    needed = {i for i in range(_components_in(node, function)) if names[i] in args}
    return needed | (set(above) if node.op in FILTERS else set())


def _function_name(node) -> str:
    return node.attr["f" if node.op in MAPS else "predicate"].func.name


def _components_in(node, function) -> int:
    """How many of the function's arguments are components (the rest are
    captured tensors)."""
    captured = len(node.attr["Targuments"].list.type)
    return len(function.signature.input_arg) - captured


def _rewrite(node, above, below, library, graph_def) -> int:
    """Rewrites `node` to carry `above` from `below`; 1 if a map lost work."""
    _keep_outputs(node, above if node.op in MAPS else below)
    if node.op == "PaddedBatchDatasetV2":
        _keep_padding(node, below)
    if node.op in PASS_THROUGH:
        return 0
    function = library[_function_name(node)]
    outputs = above if node.op in MAPS else [0]
    new, dropped = functions.pruned_function(function, below, outputs,
                                    _components_in(node, function), library)
    graph_def.library.function.append(new)
    library[new.signature.name] = new
    node.attr["f" if node.op in MAPS else "predicate"].func.name = new.signature.name
    return int(node.op in MAPS and bool(dropped - functions.TRIVIAL))


def _keep_outputs(node, kept: List[int]) -> None:
    for key in ("output_types", "Toutput_types", "output_shapes"):
        if key in node.attr:
            values = node.attr[key].list
            field = values.type if key != "output_shapes" else values.shape
            kept_values = [field[i] for i in kept]
            del field[:]
            field.extend(kept_values)


def _keep_padding(node, kept: List[int]) -> None:
    """`padded_batch`'s inputs: dataset, batch size, N shapes, N values, drop."""
    n = node.attr["N"].i
    shapes, values = node.input[2:2 + n], node.input[2 + n:2 + 2 * n]
    rest = node.input[2 + 2 * n:]
    inputs = list(node.input[:2]) + [shapes[i] for i in kept] + [
        values[i] for i in kept] + list(rest)
    del node.input[:]
    node.input.extend(inputs)
    node.attr["N"].i = len(kept)


def _insert_projection(graph_def, consumer, bottom, kept: List[int]) -> None:
    """A `map` selecting components `kept` of `bottom`'s elements, fed to
    `consumer` (the lowest op of the chain)."""
    types, shapes = _types(bottom), list(bottom.attr["output_shapes"].list.shape)
    function = graph_def.library.function.add()
    function.signature.name = f"kbi_projection_{len(graph_def.library.function)}"
    for i, dtype in enumerate(types):
        function.signature.input_arg.add(name=f"component_{i}", type=dtype)
    for i in kept:
        function.signature.output_arg.add(name=f"kept_{i}", type=types[i])
        function.ret[f"kept_{i}"] = f"component_{i}"
    node = graph_def.node.add(name="kbi_projection", op="MapDataset",
                              input=[bottom.name])
    node.attr["f"].func.name = function.signature.name
    node.attr["Targuments"].list.SetInParent()
    node.attr["output_types"].list.type.extend(types[i] for i in kept)
    node.attr["output_shapes"].list.shape.extend(shapes[i] for i in kept)
    node.attr["use_inter_op_parallelism"].b = True
    node.attr["preserve_cardinality"].b = True
    consumer.input[0] = node.name
