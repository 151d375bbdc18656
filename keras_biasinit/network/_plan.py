"""The plan of the walk: a functional model's nodes in topological order, each
with its role.

Roles: `"scale"` (a kernel layer scaled to the target), `"output"` (a kernel
layer whose output reaches a model output through activations and
pass-through ops only: only ever scaled down), `"normalised"` (a kernel layer
whose every use is normalised right after, through pass-through ops: left
alone), `"sum"` (a residual sum, not normalised right after, with at least one branch
that ends in a scaled layer through pass-through ops and is used nowhere
else), `"nested"` (a model used as a layer: run whole, left alone) and
`"run"` (everything else, and a layer's second and later calls).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

import keras

from keras_biasinit.network._layers import NORMALISATION
from keras_biasinit.network._layers import Kernels
from keras_biasinit.network._layers import is_sum
from keras_biasinit.network._layers import kernels_of
from keras_biasinit.network._layers import passes_scale

_ACTIVATIONS = (keras.layers.Activation, keras.layers.Softmax)


@dataclasses.dataclass
class Step:
    node: Any
    role: str = "run"
    kernels: Optional[Kernels] = None
    note: str = ""
    # For a "sum": Add input position -> the "scale" step its branch ends in.
    branches: Dict[int, "Step"] = dataclasses.field(default_factory=dict)

    @property
    def op(self):
        return self.node.operation

    @property
    def name(self) -> str:
        return self.op.name


@dataclasses.dataclass
class Plan:
    inputs: List[Any]  # the model's symbolic inputs
    steps: List[Step]
    uses: Dict[int, int]  # symbolic tensor id -> how many nodes consume it


def functional_graph(model: keras.Model):
    """The Functional model behind `model`; ValueError for a subclassed one."""
    graph = model._functional if isinstance(model, keras.Sequential) else model
    if graph is None or not hasattr(graph, "_nodes_by_depth"):
        raise ValueError(
            f"Model '{model.name}' has no graph of layers to walk: "
            "adapt_kernel_scales needs a functional or Sequential model built "
            "on a `keras.Input` (a subclassed model's `call()` cannot be "
            "followed). Build the same layers with the functional API."
        )
    return graph


def _ordered_nodes(graph) -> List[Any]:
    nodes = []
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        nodes += [n for n in graph._nodes_by_depth[depth]
                  if n.operation is not None and not n.is_input]
    return nodes


def _walk_back_to_kernel(tensor, producer, allowed) -> Optional[Any]:
    """The node of the kernel layer that `tensor` comes from through ops
    accepted by `allowed(op, tensor)` only, or None."""
    node = producer.get(id(tensor))
    while node is not None and kernels_of(node.operation) is None:
        if len(node.input_tensors) != 1 or not allowed(node.operation, tensor):
            return None
        tensor = node.input_tensors[0]
        node = producer.get(id(tensor))
    return node if node is not None and allowed(None, tensor) else None


class _Graph:
    def __init__(self, graph) -> None:
        self.graph = graph
        self.nodes = _ordered_nodes(graph)
        self.producer = {id(t): n for n in self.nodes for t in n.outputs}
        self.consumers: Dict[int, List[Any]] = {}
        for node in self.nodes:
            for tensor in node.input_tensors:
                self.consumers.setdefault(id(tensor), []).append(node)
        self.outputs = {id(t) for t in graph.outputs}

    def uses(self, tensor) -> int:
        return len(self.consumers.get(id(tensor), [])) + (id(tensor) in self.outputs)

    def output_nodes(self) -> set:
        found = set()
        for tensor in self.graph.outputs:
            node = _walk_back_to_kernel(
                tensor, self.producer,
                lambda op, t: op is None or isinstance(op, _ACTIVATIONS)
                or passes_scale(op))
            if node is not None:
                found.add(id(node))
        return found

    def normaliser(self, tensor) -> Optional[str]:
        """The name of the layer that normalises every use of `tensor`."""
        users = self.consumers.get(id(tensor), [])
        if not users or id(tensor) in self.outputs:
            return None
        names = []
        for user in users:
            if isinstance(user.operation, NORMALISATION):
                names.append(user.operation.name)
            elif passes_scale(user.operation) and len(user.outputs) == 1:
                names.append(self.normaliser(user.outputs[0]))
            else:
                return None
        return names[0] if all(names) else None

    def branch_end(self, tensor) -> Optional[Any]:
        """The kernel node a sum's input comes from, used by that sum only."""
        return _walk_back_to_kernel(
            tensor, self.producer,
            lambda op, t: self.uses(t) == 1 and (op is None or passes_scale(op)))


def make_plan(model: keras.Model) -> Plan:
    graph = _Graph(functional_graph(model))
    outputs, seen, steps = graph.output_nodes(), set(), {}
    for node in graph.nodes:
        step = steps[id(node)] = Step(node)
        if isinstance(node.operation, keras.Model):
            step.role = "nested"
            step.note = "a nested model: its layers are not walked (left alone)"
            continue
        kernels = kernels_of(node.operation)
        if kernels is None or id(node.operation) in seen:
            continue
        seen.add(id(node.operation))
        normaliser = graph.normaliser(node.outputs[0])
        if id(node) in outputs:
            step.role, step.kernels = "output", kernels
        elif normaliser is not None:
            step.role, step.note = "normalised", f"normalised by '{normaliser}'"
        else:
            step.role, step.kernels = "scale", kernels
    for node in graph.nodes:
        if not is_sum(node.operation):
            continue
        step = steps[id(node)]
        normaliser = graph.normaliser(node.outputs[0])
        if normaliser is not None:  # its scale cannot matter: branches as usual
            step.role, step.note = "normalised", f"normalised by '{normaliser}'"
            continue
        for position, tensor in enumerate(node.input_tensors):
            end = graph.branch_end(tensor)
            if end is not None and steps[id(end)].role == "scale":
                step.branches[position] = steps[id(end)]
        step.role = "sum" if step.branches else "run"
    uses = {key: len(users) for key, users in graph.consumers.items()}
    return Plan(list(graph.graph.inputs), [steps[id(n)] for n in graph.nodes], uses)
