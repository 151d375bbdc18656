"""Verify the loss at init: measure a fresh model's loss and explain any gap.

A model whose output bias predicts the best constant, and whose final kernel
adds ~0 at init, starts at a loss you can compute from the data alone (the
initializer's `expected_loss`: the entropy of the class priors, the variance,
the mean absolute deviation, the mean Huber loss, ... the table of
`keras_biasinit.best_constant`). `verify_loss_at_init` measures the compiled
model's loss before any training, compares it with that number, and splits
the gap in three by measuring once more with the final layer's kernel set to
zero (then restored), and reading the model's weight-regularization losses:

- regularization: the kernel and bias regularizers' penalty, which `evaluate`
  adds to the data loss (not the bias's fault);
- kernel part = data loss - data loss with a zero final kernel: what the
  random final kernel adds (scale it down);
- bias part = data loss with a zero final kernel - expected: how far the bias
  itself is from the best constant.

When the bias was made for another loss than the compiled one (a
`ClassPriorBias`, made for cross-entropy, under focal loss; a `HuberBias`
whose `delta` is not the compiled Huber's), `expected` is the best constant's
loss for the *compiled* loss, computed from the data with the same table, and
the message says so and names `adapt_output_bias` as the fix: recomputing the
same initializer cannot help.

Which number to compare: `measured` is `evaluate`'s total `loss`, a mean over
batches weighted by their size, which is what `expected_loss` is. A model
with several outputs also logs `<output>_loss`, an unweighted mean over
batches: it differs from `expected_loss` when the last batch is short.
"""

from __future__ import annotations

import collections.abc
import math
from typing import Any, Dict, Optional, Union

import keras
import numpy as np

from keras_biasinit.best_constant import identify_loss
from keras_biasinit.best_constant import made_for
from keras_biasinit.best_constant import matches
from keras_biasinit.best_constant._state import RowsPerExample
from keras_biasinit.best_constant.counting import ID_LOSSES
from keras_biasinit.best_constant.counting import check_single_output
from keras_biasinit.best_constant.counting import per_example
from keras_biasinit.data.outputs import read_outputs
from keras_biasinit.diagnosis import FIX
from keras_biasinit.diagnosis import InitLossCheck
from keras_biasinit.diagnosis import _Context
from keras_biasinit.diagnosis import diagnose
from keras_biasinit.heads import find_heads
from keras_biasinit.loss_view import loss_view
from keras_biasinit.loss_view import with_class_weight

__all__ = ["InitLossCheck", "verify_loss_at_init"]


def _check_expected(expected) -> float:
    value = float(expected)
    if not math.isfinite(value):
        raise ValueError(
            "`expected` must be a finite loss (it may be negative, e.g. Poisson). "
            f"Received: expected={expected!r}"
        )
    return value


def _output_layer(model: keras.Model, layer: Union[str, keras.layers.Layer, None]):
    if isinstance(layer, str):
        return model.get_layer(layer)
    if layer is not None:
        return layer
    if len(getattr(model, "outputs", None) or [None]) > 1:
        raise ValueError(
            "The model has several outputs; pass `layer=` (the output layer to "
            "check) and `expected=` (the total loss at init), or check each "
            "output with a single-output model that shares its layers."
        )
    for candidate in reversed(model.layers):
        if getattr(candidate, "kernel", None) is not None:
            return candidate
    raise ValueError(
        "Found no layer with a kernel in the model (e.g. a `Dense` or `Conv` "
        "output layer). Pass `layer=` with the output layer to check."
    )


def _evaluate(model, dataset, steps, verbose) -> float:
    if isinstance(dataset, tuple) and len(dataset) in (2, 3):
        x, y, *weights = dataset
        logs = model.evaluate(
            x, y, sample_weight=weights[0] if weights else None, steps=steps,
            verbose=verbose, return_dict=True,
        )
    else:
        logs = model.evaluate(dataset, steps=steps, verbose=verbose, return_dict=True)
    return float(logs["loss"])


def _reads_ids(model) -> bool:
    """Whether the compiled loss reads integer targets as class ids."""
    if isinstance(model.loss, (dict, list, tuple)):
        return False
    return identify_loss(model.loss).kind in ID_LOSSES


def _regularization(model) -> float:
    return sum(float(keras.ops.convert_to_numpy(x)) for x in model.losses)


def _bias_is_initial(layer) -> Optional[bool]:
    """Whether the bias still holds what its (keras_biasinit) initializer made."""
    values = getattr(layer.bias_initializer, "bias", None)
    if values is None or getattr(layer, "bias", None) is None:
        return None
    current = keras.ops.convert_to_numpy(layer.bias).astype(np.float64)
    try:
        initial = np.broadcast_to(np.asarray(values, np.float64), current.shape)
    except ValueError:
        return False
    return bool(np.allclose(current, initial, rtol=1e-3, atol=1e-3))


def _compiled_head(model, out):
    """The output's head (loss, activation, table row), or None if the table
    cannot tell (several outputs, or an unknown pair)."""
    try:
        heads = find_heads(model)
    except ValueError:
        return None
    return heads[0] if len(heads) == 1 and heads[0].layer is out else None


def _compiled_loss_names(model, head):
    """The compiled loss as written (`'mse'`) and as `kind(params)`, if known."""
    if head is not None:
        return head.spec.name, head.spec.describe()
    if isinstance(model.loss, (dict, list, tuple)):
        return repr(model.loss), None
    spec = identify_loss(model.loss)
    return spec.name, spec.describe() if spec.kind else None


def _table_expected(model, head, dataset, steps, class_weight) -> float:
    """The best constant's loss for the compiled loss, from one pass."""
    state = head.rule.start(head.spec, head.units, head.activation,
                            name=f"output '{head.name}'")
    elements, masks = loss_view(model, [head], class_weight)
    source = read_outputs(dataset, [(head.name, 0)], steps=steps, verbose=0,
                          elements=elements, masks=masks)
    for batches in source:
        if len(batches[0][0]):
            state.update(*batches[0])
    counts = RowsPerExample(source.rows[0], source.examples)
    return float(per_example(state.result(), counts).expected_loss)


def _numbers(measured, expected, zero_kernel, reg, reg0, rtol) -> dict:
    """The split of the gap: kernel, bias and regularization parts."""
    gap = measured - expected
    tol = rtol * abs(expected) if expected else rtol
    return dict(
        measured=measured, expected=expected, gap=gap, zero_kernel_loss=zero_kernel,
        kernel_part=(measured - reg) - (zero_kernel - reg0),
        bias_part=(zero_kernel - reg0) - expected, rtol=rtol,
        ok=abs(gap) <= tol, regularization=reg, tol=tol,
    )


def _expected_and_context(model, out, dataset, steps, expected, class_weight):
    """The expected loss, and what the message says about where it came from."""
    initializer = getattr(out, "bias_initializer", None)
    head = _compiled_head(model, out)
    made = made_for(initializer)
    mismatch = head is not None and made is not None and not matches(
        initializer, head.spec)
    if expected is None and mismatch:
        expected = _table_expected(model, head, dataset, steps, class_weight)
    if expected is None:
        if getattr(initializer, "expected_loss", None) is None:
            raise ValueError(
                f"Cannot tell the expected loss: the bias_initializer of layer "
                f"'{out.name}' ({type(initializer).__name__}) does not know it. "
                f"Set the bias with {FIX} or a keras_biasinit initializer's "
                "`from_dataset` (e.g. `ClassPriorBias.from_dataset(train_ds)`), "
                "or pass `expected=`."
            )
        expected = initializer.expected_loss
    ctx = _Context(out.name, *_compiled_loss_names(model, head),
                   type(initializer).__name__, made, mismatch, _bias_is_initial(out))
    return _check_expected(expected), ctx


def verify_loss_at_init(
    model: keras.Model,
    dataset: Any,
    *,
    expected: Optional[float] = None,
    steps: Optional[int] = None,
    rtol: float = 0.05,
    layer: Union[str, keras.layers.Layer, None] = None,
    verbose: Union[str, int] = 0,
    class_weight: Optional[Dict[int, float]] = None,
) -> InitLossCheck:
    """Checks a fresh model's loss against the loss its output bias predicts.

    Measures `loss = model.evaluate(dataset)` before training, and
    `loss_0`, the same with the output layer's kernel set to zero (the kernel
    is restored afterwards). Then

    `gap = loss - expected = kernel part + bias part + regularization`

    where the kernel part is what the random final kernel adds to the data
    loss, the bias part how far the bias alone is from the best constant, and
    regularization the weight regularizers' penalty. `ok` is
    `|gap| <= rtol * |expected|`; `str(result)` says in words what to fix.
    `expected` may be negative (the Poisson loss at its best constant is).

    The loss is the one `model.evaluate` reports: in inference mode (dropout
    off, batch normalization with its initial moving statistics) and including
    regularization losses. It reads the data twice, so `dataset` must be
    re-iterable (not a generator); with `steps` on a shuffled or repeated
    dataset the two passes should see the same batches for a clean split.

    Examples:

    >>> import keras_biasinit as kbi
    >>> x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    >>> y = 150.0 + 70.0 * np.random.default_rng(1).normal(size=(256, 1))
    >>> model = keras.Sequential([
    ...     keras.Input((4,)),
    ...     keras.layers.Dense(16, activation="relu"),
    ...     keras.layers.Dense(
    ...         1, bias_initializer=kbi.MeanBias.from_dataset(y, verbose=0)),
    ... ])
    >>> model.compile(loss="mse")
    >>> check = kbi.verify_loss_at_init(model, (x, y))
    >>> check.ok
    True
    >>> print(check)  # doctest: +SKIP
    Loss at init: 4752.1, expected 4750.8 (gap +1.3, +0.0%; rtol=0.05).
    OK: the output bias of layer 'dense_1' predicts the best constant ...

    Args:
        model: a compiled Keras model, before training. By default the output
            layer is its last layer with a kernel.
        dataset: what `model.evaluate` takes as `x`: a `tf.data.Dataset` of
            `(x, y)` or `(x, y, sample_weight)` elements, a
            `keras.utils.PyDataset`, or a tuple `(x, y)` / `(x, y,
            sample_weight)` of arrays. Use the data the bias was computed on.
        expected: the loss the model should show at init. Defaults to None: the
            output layer's `bias_initializer.expected_loss` (set by
            `adapt_output_bias` and the `from_dataset` of the keras_biasinit
            initializers), or, when that initializer was made for another
            loss, the compiled loss's best-constant loss on `dataset`.
        steps: number of batches to evaluate. Defaults to None (all).
        rtol: relative tolerance of `ok`. Defaults to 0.05.
        layer: the output layer (or its name) whose kernel is zeroed and whose
            bias initializer gives `expected`. Defaults to None: the last layer
            of `model` with a kernel.
        verbose: passed to `model.evaluate`. Defaults to 0.
        class_weight: `fit`'s `{class: weight}` for a one-output model: the
            loss is measured with each example's (or step's) sample weight
            times the weight of its label's class (the argmax of a label
            vector, the rounded id otherwise; 1 for classes not named), the
            loss `fit(..., class_weight=...)` minimises. Pass the same dict
            to `adapt_output_bias`. Defaults to None.

    Returns:
        An `InitLossCheck`: `measured`, `expected`, `gap`, `zero_kernel_loss`,
        `kernel_part`, `bias_part`, `regularization`, `ok`, `message`, and
        the `loss` compiled and the one the bias was `made_for`.

    Reference:
        - [Karpathy, 2019, "A Recipe for Training Neural Networks"](
          https://karpathy.github.io/2019/04/25/recipe/) ("verify loss @ init",
          "init well").
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a keras.Model. Received: model={type(model).__name__}"
        )
    if not getattr(model, "compiled", False):
        raise ValueError(
            "`model` must be compiled with the loss you will train with: call "
            "`model.compile(optimizer, loss=...)` first."
        )
    rtol = float(rtol)
    if not math.isfinite(rtol) or rtol < 0:
        raise ValueError(
            f"`rtol` must be a finite, non-negative number. Received: rtol={rtol!r}"
        )
    if isinstance(dataset, collections.abc.Iterator):
        raise ValueError(
            "`dataset` is a one-shot iterator (e.g. a generator), but the check "
            "evaluates the model twice. Pass a re-iterable input: a "
            "tf.data.Dataset, a keras.utils.PyDataset or a tuple of arrays."
        )
    if expected is not None:
        expected = _check_expected(expected)
    check_single_output(class_weight, len(getattr(model, "outputs", None) or [0]))
    weighted = with_class_weight(dataset, class_weight, ids=_reads_ids(model))
    # Evaluate first: it builds a model that was not built yet.
    measured = _evaluate(model, weighted, steps, verbose)
    if not math.isfinite(measured):
        raise ValueError(
            f"The model's loss at init is {measured}: check the data for NaN/inf "
            "and the output activation against the loss."
        )
    out = _output_layer(model, layer)
    expected, ctx = _expected_and_context(model, out, dataset, steps, expected,
                                          class_weight)
    reg = _regularization(model)
    kernel = out.kernel
    saved = keras.ops.convert_to_numpy(kernel)
    try:
        kernel.assign(np.zeros_like(saved))
        zero_kernel = _evaluate(model, weighted, steps, verbose)
        reg0 = _regularization(model)
    finally:
        kernel.assign(saved)
    return diagnose(_numbers(measured, expected, zero_kernel, reg, reg0, rtol), ctx)
