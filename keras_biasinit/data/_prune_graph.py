"""The graph rewrite behind `keras_biasinit.data.prune` (its docstring says how).

Everything here works on the `GraphDef` of a dataset: a chain of dataset
nodes and a library of `FunctionDef`s. Indices are the element's flat
components, as in the ops' `output_types`.
"""

from __future__ import annotations

from typing import Iterable, List, Set, Tuple

import tensorflow as tf
from tensorflow.core.framework import function_pb2
from tensorflow.core.framework import graph_pb2
from tensorflow.python.framework import op_def_registry

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

#: Stateful ops that may be dropped: no other op reads what they change.
DROPPABLE = frozenset({
    "Assert", "Print", "PrintV2", "ReadVariableOp", "LookupTableFindV2",
    "LookupTableSizeV2", "RandomUniform", "RandomUniformInt",
    "RandomStandardNormal", "TruncatedNormal", "RandomShuffle", "RandomGamma",
    "RandomPoisson", "RandomPoissonV2", "Multinomial",
})
#: Nodes whose removal saves nothing.
TRIVIAL = frozenset({"Identity", "IdentityN", "NoOp", "Const"})


class Unsafe(Exception):
    """The rewrite cannot be proved to give the same numbers (the reason)."""


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
    name, chain = _source(output.input[0]), []
    while nodes[name].op in PASS_THROUGH | MAPS | FILTERS:
        chain.append(nodes[name])
        name = _source(nodes[name].input[0])
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
            if node_passes(chain[i]) and not sets[i + 1] <= sets[i]:
                sets[i] |= sets[i + 1]
                changed = True
    if max(sets[-1], default=-1) >= bottom_width:
        raise Unsafe("an unexpected dataset graph")
    return [sorted(s) for s in sets]


def node_passes(node) -> bool:
    return node.op not in MAPS


def _needs_below(node, above: Set[int], library) -> Set[int]:
    """The components `node` needs from below to give `above`."""
    if node.op in PASS_THROUGH:
        return set(above)
    function = library[_function_name(node)]
    outputs = sorted(above) if node.op in MAPS else [0]
    cone, args = _cone(function, outputs)
    _check_stateless(cone, function, library)
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


def _cone(function, outputs: Iterable[int]) -> Tuple[Set[str], Set[str]]:
    """Names of the nodes and arguments the given outputs are computed from.

    Data edges only: a control edge orders stateful ops (tf.function adds one
    from each to the outputs), and a cone without stateful ops needs no order.
    """
    arg_names = {a.name for a in function.signature.input_arg}
    by_name = {n.name: n for n in function.node_def}
    rets = [function.ret[function.signature.output_arg[i].name] for i in outputs]
    todo, nodes, args = [_source(r) for r in rets], set(), set()
    while todo:
        name = todo.pop()
        if name in arg_names:
            args.add(name)
        elif name not in nodes:
            nodes.add(name)
            todo.extend(_source(i) for i in by_name[name].input
                        if not i.startswith("^"))
    return nodes, args


def _source(tensor_name: str) -> str:
    """The node (or argument) of `node:output:index`, `arg` or `^node`."""
    return tensor_name.lstrip("^").split(":")[0]


def _check_stateless(cone: Set[str], function, library) -> None:
    ops = set()
    for node in function.node_def:
        if node.name in cone:
            ops |= _stateful_ops(node, library)
    if ops:
        raise Unsafe(f"what the pass reads is computed by stateful ops "
                     f"{sorted(ops)} (random, py_function, variables, tables)")


def _stateful_ops(node, library) -> Set[str]:
    """The stateful ops `node` runs, through the functions it calls."""
    callees = [name for name in _called(node) if name in library]
    if callees:
        ops: Set[str] = set()
        for name in callees:
            for inner in library[name].node_def:
                ops |= _stateful_ops(inner, library)
        return ops
    op_def = op_def_registry.get(node.op)
    return {node.op} if op_def is None or op_def.is_stateful else set()


def _called(node) -> List[str]:
    names = [node.op]
    for value in node.attr.values():
        if value.HasField("func"):
            names.append(value.func.name)
        elif value.HasField("list"):
            names.extend(f.name for f in value.list.func)
    return names


def _rewrite(node, above, below, library, graph_def) -> int:
    """Rewrites `node` to carry `above` from `below`; 1 if a map lost work."""
    _keep_outputs(node, above if node.op in MAPS else below)
    if node.op == "PaddedBatchDatasetV2":
        _keep_padding(node, below)
    if node.op in PASS_THROUGH:
        return 0
    function = library[_function_name(node)]
    outputs = above if node.op in MAPS else [0]
    new, dropped = _pruned_function(function, below, outputs,
                                    _components_in(node, function), library)
    graph_def.library.function.append(new)
    library[new.signature.name] = new
    node.attr["f" if node.op in MAPS else "predicate"].func.name = new.signature.name
    return int(node.op in MAPS and bool(dropped - TRIVIAL))


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


def _pruned_function(function, inputs, outputs, n_components, library):
    """A copy of `function` taking components `inputs` (and every captured
    argument), returning `outputs`, holding only the nodes they need.
    Returns it and the set of ops dropped."""
    cone, _ = _cone(function, outputs)
    dropped = [n for n in function.node_def if n.name not in cone]
    unsafe = set().union(*(_stateful_ops(n, library) for n in dropped)) - DROPPABLE
    if unsafe:
        raise Unsafe(f"the skipped part runs stateful ops {sorted(unsafe)}")
    new = function_pb2.FunctionDef()
    new.CopyFrom(function)
    new.signature.name = f"{function.signature.name}_kbi_pruned_{len(library)}"
    kept_args = [i for i in range(len(function.signature.input_arg))
                 if i >= n_components or i in inputs]
    _keep(new.signature.input_arg, function.signature.input_arg, kept_args)
    _reindex(new.arg_attr, function.arg_attr, kept_args)
    _reindex(new.resource_arg_unique_id, function.resource_arg_unique_id, kept_args)
    _keep(new.signature.output_arg, function.signature.output_arg, outputs)
    kept_rets = {a.name for a in new.signature.output_arg}
    for name in list(new.ret):
        if name not in kept_rets:
            del new.ret[name]
    del new.node_def[:]
    new.node_def.extend(n for n in function.node_def if n.name in cone)
    for node in new.node_def:  # control edges from dropped nodes go with them
        inputs = [i for i in node.input if _source(i) in cone or i[0] != "^"]
        del node.input[:]
        node.input.extend(inputs)
    for name, target in list(new.control_ret.items()):
        if target not in cone:
            del new.control_ret[name]
    _keep(new.signature.control_output, function.signature.control_output,
          [i for i, name in enumerate(function.signature.control_output)
           if name in new.control_ret])
    return new, {n.op for n in dropped}


def _keep(field, original, indices) -> None:
    del field[:]
    field.extend(original[i] for i in indices)


def _reindex(field, original, kept) -> None:
    """A map keyed by argument index, for the kept arguments renumbered."""
    values = {new: original[old] for new, old in enumerate(kept) if old in original}
    field.clear()
    for index, value in values.items():
        if isinstance(value, int):
            field[index] = value
        else:
            field[index].CopyFrom(value)


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
