"""The walk: one forward pass over cached inputs, solving each gain on the way.

The data's batches enter the model's input; each node, in topological order,
is called once per batch on its inputs' cached values (already computed with
every earlier gain applied), and its outputs are cached until their last
consumer has run. A kernel layer is measured on its cached inputs, its kernel
scaled, and its output recomputed only when the output does not scale exactly
with the gain: the pass is linear in depth, as one `predict` over the batches.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Optional

import keras
import numpy as np
from keras import ops

from keras_biasinit.network import _solve
from keras_biasinit.network._layers import is_homogeneous
from keras_biasinit.network._layers import kernel_part
from keras_biasinit.network._layers import scale_variables
from keras_biasinit.network._plan import Plan
from keras_biasinit.network._plan import Step
from keras_biasinit.stats import SecondMoment

TOLERANCE = 0.02  # an iterated gain stops within 2% of the target moment
MAX_ITERATIONS = 8
# A residual branch whose shortcut alone is (nearly) at the target keeps this
# share of the target as its own second moment (SkipInit/Fixup: small, not 0).
MIN_BRANCH = 0.01


@dataclasses.dataclass
class LayerScale:
    """One line of the report: a kernel layer (or a sum) and what was done.

    `before` and `after` are the second moments at `measured_at` (the layer's
    output, the sum its branch feeds, or for an output layer its kernel part
    `W x`) with the earlier layers already scaled, before and after its gain.
    """

    name: str
    role: str
    gain: float = 1.0
    before: float = math.nan
    after: float = math.nan
    measured_at: str = ""
    note: str = ""
    homogeneous: bool = False


class Walk:
    """Runs a `Plan` over batches, solving and applying each gain."""

    def __init__(self, plan: Plan, batches, weights, reducer, *, target: float,
                 output_target: float) -> None:
        self.plan, self.reducer, self.weights = plan, reducer, weights
        self.target, self.output_target = target, output_target
        self.values: Dict[int, List[Any]] = {id(plan.inputs[0]): batches}
        self.uses = dict(plan.uses)
        self.records: Dict[str, LayerScale] = {}

    def run(self) -> Dict[str, LayerScale]:
        handlers = {"scale": self._scale, "output": self._output, "sum": self._sum}
        for step in self.plan.steps:
            inputs = self._inputs(step.node)
            if step.role in ("normalised", "nested"):
                self.records[step.name] = LayerScale(
                    step.name, step.role, note=step.note)
            outputs = handlers.get(step.role, self._call)(step, inputs)
            for tensor, values in zip(step.node.outputs, zip(*outputs)):
                self.values[id(tensor)] = list(values)
            self._release(step.node)
        return self.records

    def _inputs(self, node) -> List[Dict[int, Any]]:
        ids = [id(t) for t in node.input_tensors]
        return [{key: self.values[key][b] for key in ids}
                for b in range(len(self.weights))]

    def _release(self, node) -> None:
        for tensor in node.input_tensors:
            self.uses[id(tensor)] -= 1
            if self.uses[id(tensor)] == 0:
                del self.values[id(tensor)]

    def _call(self, step: Step, inputs) -> List[List[Any]]:
        """The node's outputs, per batch (each a flat list)."""
        op, results = step.op, []
        for tensors in inputs:
            args, kwargs = step.node.arguments.fill_in(tensors)
            if "training" in getattr(op, "_call_context_args", ()):
                # What training sees: batch statistics; dropout and noise off.
                kwargs["training"] = isinstance(op, keras.layers.BatchNormalization)
            results.append(keras.tree.flatten(op(*args, **kwargs)))
        return results

    def moment(self, values: List[Any], name: str, allow_zero=False) -> float:
        """`E[v^2]` over the batches (and workers), checked: ValueError naming
        the layer where it is not finite (or zero, unless `allow_zero`)."""
        state = SecondMoment()
        try:
            for value, weights in zip(values, self.weights):
                array = ops.convert_to_numpy(value).astype(np.float64)
                if not np.isfinite(array).all():
                    raise ValueError(
                        f"Layer '{name}' outputs NaN or inf on the data: check the "
                        "data for NaN/inf and the layer's weights. Nothing was "
                        "changed.")
                state.update(array, weights)
        except Exception as error:  # pylint: disable=broad-except
            self.reducer.abort(error)
            raise
        value = self.reducer(state).mean_square
        if not math.isfinite(value):
            raise ValueError(
                f"The second moment of layer '{name}' overflows float64 on the "
                "data. Check the data's scale. Nothing was changed.")
        if value == 0 and not allow_zero:
            raise ValueError(
                f"Layer '{name}' outputs only zeros on the data (e.g. inputs "
                "that are all 0, a zero kernel, or ReLUs that are all off), so "
                "no gain can "
                "bring it to the target. Check the data and the layers before "
                "it. Nothing was changed.")
        return value

    def _scale(self, step: Step, inputs) -> List[List[Any]]:
        outputs = self._call(step, inputs)
        moment = self.moment([o[0] for o in outputs], step.name)
        record = self.records[step.name] = LayerScale(
            step.name, step.role, before=moment, measured_at=step.name,
            homogeneous=is_homogeneous(step.op))
        if record.homogeneous:
            gain = _solve.homogeneous_gain(moment, self.target)
            scale_variables(step.kernels, gain)
            record.gain, record.after = gain, moment * gain * gain
            return [[value * gain for value in out] for out in outputs]
        return self._iterate(step, inputs, outputs, record)

    def _iterate(self, step, inputs, outputs, record) -> List[List[Any]]:
        """Newton steps in log-log until the moment is within `TOLERANCE`."""
        moment, power = record.before, step.kernels.nominal_power
        for _ in range(MAX_ITERATIONS):
            if abs(moment / self.target - 1) <= TOLERANCE:
                break
            factor = _solve.next_factor(moment, self.target, power)
            scale_variables(step.kernels, factor)
            record.gain *= factor
            outputs = self._call(step, inputs)
            previous, moment = moment, self.moment([o[0] for o in outputs],
                                                   step.name)
            power = _solve.local_power(previous, moment, factor, power)
        record.after = moment
        if abs(moment / self.target - 1) > TOLERANCE:
            record.note = (f"target not reached in {MAX_ITERATIONS} steps "
                           "(a saturating activation?)")
        return outputs

    def _output(self, step: Step, inputs) -> List[List[Any]]:
        """An output layer's kernel part `W x` is scaled down to
        `output_target`, never up, so the loss at init is its bias's."""
        record = self.records[step.name] = LayerScale(
            step.name, step.role, measured_at=f"{step.name} (W x)")
        if not hasattr(step.op, "activation") and \
                not isinstance(step.op, keras.layers.Embedding):
            record.note = "left alone (no kernel part to measure)"
            return self._call(step, inputs)
        with kernel_part(step.op):
            parts = self._call(step, inputs)
        record.before = record.after = self.moment(
            [p[0] for p in parts], step.name, allow_zero=True)
        if record.before == 0:
            record.note = "a zero kernel: left alone"
        elif record.before > self.output_target:
            record.gain = math.sqrt(self.output_target / record.before)
            scale_variables(step.kernels, record.gain)
            record.after = self.output_target
        return self._call(step, inputs)

    def _sum(self, step: Step, inputs) -> List[List[Any]]:
        """Scales the branches of a residual sum so the sum is at the target."""
        tensors = step.node.input_tensors
        branches = {p: s for p, s in step.branches.items()
                    if self.records[s.name].homogeneous}
        if not branches:
            self.records[step.name] = LayerScale(
                step.name, "sum", note=_sum_note(branches, 0.0, self.target))
            return self._call(step, inputs)
        fixed_ids = [id(t) for p, t in enumerate(tensors) if p not in branches]
        branch_ids = [id(tensors[p]) for p in branches]
        parts = [(_total(b, fixed_ids), _total(b, branch_ids)) for b in inputs]
        shortcut = (self.moment([s for s, _ in parts], step.name)
                    if fixed_ids else 0.0)
        branch = self.moment([b for _, b in parts], step.name)
        total = (self.moment([s + b for s, b in parts], step.name)
                 if fixed_ids else branch)
        cross = (total - shortcut - branch) / 2
        gain = _solve.sum_gain(shortcut, branch, cross, self.target)
        floor = math.sqrt(MIN_BRANCH * self.target / branch)
        record = self.records[step.name] = LayerScale(
            step.name, "sum", before=total, measured_at=step.name)
        if gain is None or gain < floor:
            record.note = _sum_note(branches, shortcut, self.target)
            gain = floor
        record.gain = gain
        record.after = shortcut + 2 * gain * cross + gain * gain * branch
        for branch_step in branches.values():
            scale_variables(branch_step.kernels, gain)
            end = self.records[branch_step.name]
            end.gain, end.after, end.measured_at = end.gain * gain, record.after, \
                step.name
        for tensors_b in inputs:
            for key in branch_ids:
                tensors_b[key] = tensors_b[key] * gain
        return self._call(step, inputs)


def _total(tensors: Dict[int, Any], ids: List[int]) -> Optional[Any]:
    total = None
    for key in ids:
        total = tensors[key] if total is None else total + tensors[key]
    return total


def _sum_note(branches, shortcut: float, target: float) -> str:
    if not branches:
        return "no branch scales linearly with its gain: left as it is"
    return (f"shortcut alone at {shortcut:.3g} (target {target:g}): the branch "
            f"starts small, at {MIN_BRANCH:.0%} of the target")
