"""The loss each head should show at init, and where that number comes from.

For `verify_loss_at_init`: a head's expected loss is its `bias_initializer`'s
`expected_loss` when that initializer was made for the compiled loss. When it
was made for another loss (a `ClassPriorBias` under focal loss), or cannot
say (a `Zeros` bias after a KerasHub task is reloaded: its head is rebuilt
from constructor arguments), it is the best constant's loss for the compiled
loss, computed from the data with the same table
(`keras_biasinit.best_constant`), in one pass for all such heads.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

from keras_biasinit.best_constant import made_for
from keras_biasinit.best_constant import matches
from keras_biasinit.best_constant import searched
from keras_biasinit.best_constant._state import RowsPerExample
from keras_biasinit.best_constant.counting import per_example
from keras_biasinit.data.outputs import read_outputs
from keras_biasinit.initializers import MappedBias
from keras_biasinit.loss_view import loss_view

__all__ = ["Expected", "expected_losses"]

#: Where an expected loss came from.
GIVEN, INITIALIZER, TABLE = "given", "initializer", "table"


@dataclasses.dataclass
class Expected:
    """A head's expected loss, `how` it was found (`GIVEN`, `INITIALIZER`
    or `TABLE`), and what its bias initializer was made for."""

    value: float
    how: str
    initializer: str
    made_for: Optional[str]
    mismatch: bool


def loss_initializer(layer: Any) -> Any:
    """The layer's bias initializer, as the loss sees it (a `MappedBias`'s
    `source`)."""
    initializer = getattr(layer, "bias_initializer", None)
    return initializer.source if isinstance(initializer, MappedBias) else initializer


def _from_table(heads: List[Any], dataset: Any, steps: Optional[int], model: Any,
                class_weight: Any) -> List[float]:
    """The best constant's loss of each head's compiled loss, one pass, with
    the elements, masks and class weights the loss counts."""
    elements, masks = loss_view(model, heads, class_weight)
    source = read_outputs(dataset, [(h.name, h.index) for h in heads], steps=steps,
                          verbose=0, num_outputs=heads[0].num_outputs,
                          elements=elements, masks=masks)
    states = [h.rule.start(h.spec, h.units, h.activation, name=f"output '{h.name}'")
              for h in heads]
    for batches in source:
        for state, batch in zip(states, batches):
            if len(batch[0]):  # a batch may mask all of an output's rows
                state.update(*batch)
    return [float(per_example(
        s.finish(source.output(k)) if searched(s) else s.result(),
        RowsPerExample(source.rows[k], source.examples)).expected_loss)
        for k, s in enumerate(states)]


def _unknown(head: Any, initializer: Any) -> ValueError:
    return ValueError(
        f"Cannot tell the expected loss of output '{head.name}': the "
        f"bias_initializer of layer '{head.layer.name}' "
        f"({type(initializer).__name__}) does not know it, and the loss table has "
        f"no row for {head.spec.describe() if head.spec.kind else head.spec.name} "
        f"with a '{head.activation}' output. Pass `expected=`."
    )


def expected_losses(heads: List[Any], dataset: Any, steps: Optional[int],
                    given: Optional[float] = None, *, model: Any = None,
                    class_weight: Any = None) -> Dict[str, Expected]:
    """Each head's `Expected`, by output name (`given` for a single head)."""
    found, pending = {}, []
    for head in heads:
        initializer = loss_initializer(head.layer)
        made = made_for(initializer)
        mismatch = bool(head.rule and made and not matches(initializer, head.spec))
        name = type(initializer).__name__
        own = getattr(initializer, "expected_loss", None)
        if given is not None:
            found[head.name] = Expected(float(given), GIVEN, name, made, mismatch)
        elif own is not None and not mismatch:
            found[head.name] = Expected(float(own), INITIALIZER, name, made, False)
        elif head.rule is None:
            raise _unknown(head, initializer)
        else:
            pending.append((head, Expected(0.0, TABLE, name, made, mismatch)))
    if pending:
        values = _from_table([h for h, _ in pending], dataset, steps, model,
                             class_weight)
        for (head, expected), value in zip(pending, values):
            expected.value = value
            found[head.name] = expected
    return found
