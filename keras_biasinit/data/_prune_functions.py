"""Function bodies for `keras_biasinit.data.prune`: cones and statefulness.

A `map` / `filter` function is a `FunctionDef`: arguments (the element's
components, then captured tensors), nodes, and `ret` naming the tensor of each
output. What an output is computed from is its backward cone over data
edges; the rest can go, where nothing stateful goes with it.
"""

from __future__ import annotations

from typing import Iterable, List, Set, Tuple

from tensorflow.core.framework import function_pb2
from tensorflow.python.framework import op_def_registry

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


def cone(function, outputs: Iterable[int]) -> Tuple[Set[str], Set[str]]:
    """Names of the nodes and arguments the given outputs are computed from.

    Data edges only: a control edge orders stateful ops (tf.function adds one
    from each to the outputs), and a cone without stateful ops needs no order.
    """
    arg_names = {a.name for a in function.signature.input_arg}
    by_name = {n.name: n for n in function.node_def}
    rets = [function.ret[function.signature.output_arg[i].name] for i in outputs]
    todo, nodes, args = [source(r) for r in rets], set(), set()
    while todo:
        name = todo.pop()
        if name in arg_names:
            args.add(name)
        elif name not in nodes:
            nodes.add(name)
            todo.extend(source(i) for i in by_name[name].input
                        if not i.startswith("^"))
    return nodes, args


def source(tensor_name: str) -> str:
    """The node (or argument) of `node:output:index`, `arg` or `^node`."""
    return tensor_name.lstrip("^").split(":")[0]


def check_stateless(cone: Set[str], function, library) -> None:
    ops = set()
    for node in function.node_def:
        if node.name in cone:
            ops |= stateful_ops(node, library)
    if ops:
        raise Unsafe(f"what the pass reads is computed by stateful ops "
                     f"{sorted(ops)} (random, py_function, variables, tables)")


def stateful_ops(node, library) -> Set[str]:
    """The stateful ops `node` runs, through the functions it calls."""
    callees = [name for name in _called(node) if name in library]
    if callees:
        ops: Set[str] = set()
        for name in callees:
            for inner in library[name].node_def:
                ops |= stateful_ops(inner, library)
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


def pruned_function(function, inputs, outputs, n_components, library):
    """A copy of `function` taking components `inputs` (and every captured
    argument), returning `outputs`, holding only the nodes they need.
    Returns it and the set of ops dropped."""
    kept, _ = cone(function, outputs)
    dropped = [n for n in function.node_def if n.name not in kept]
    unsafe = set().union(*(stateful_ops(n, library) for n in dropped)) - DROPPABLE
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
    new.node_def.extend(n for n in function.node_def if n.name in kept)
    for node in new.node_def:  # control edges from dropped nodes go with them
        edges = [i for i in node.input if source(i) in kept or i[0] != "^"]
        del node.input[:]
        node.input.extend(edges)
    for name, target in list(new.control_ret.items()):
        if target not in kept:
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
