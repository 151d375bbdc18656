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

from keras_biasinit.best_constant import identify_loss
from keras_biasinit.best_constant.counting import ID_LOSSES
from keras_biasinit.best_constant.counting import check_single_output
from keras_biasinit.diagnosis import InitLossCheck
from keras_biasinit.diagnosis import _Context
from keras_biasinit.diagnosis import diagnose
from keras_biasinit.diagnosis import diagnose_outputs
from keras_biasinit.evaluation import bias_is_initial
from keras_biasinit.evaluation import check_finite
from keras_biasinit.evaluation import evaluate
from keras_biasinit.evaluation import loss_weights
from keras_biasinit.evaluation import output_loss
from keras_biasinit.evaluation import regularization
from keras_biasinit.evaluation import zero_kernels
from keras_biasinit.expected import expected_losses
from keras_biasinit.heads import InputSample
from keras_biasinit.heads import find_heads
from keras_biasinit.heads.arguments import layer_arg
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


def _context(head, expected) -> _Context:
    spec = head.spec
    return _Context(head.layer.name, spec.name, spec.describe() if spec.kind else None,
                    expected.initializer, expected.made_for, expected.mismatch,
                    bias_is_initial(head.layer), expected.how, head.name)


def _reads_ids(model) -> bool:
    """Whether the compiled loss reads integer targets as class ids."""
    if isinstance(model.loss, (dict, list, tuple)):
        return False
    return identify_loss(model.loss).kind in ID_LOSSES


def _heads(model, dataset, layer, activation):
    """The heads to check, and all heads (whose kernels are zeroed)."""
    heads = find_heads(model, layer=layer, activation=activation,
                       sample=InputSample(dataset), require_rule=False)
    if layer is None or isinstance(layer, dict) or len(heads) == 1:
        return heads, heads
    target = layer_arg(model, layer)
    return [h for h in heads if h.layer is target], heads


def _check_one(model, head, expected, logs, logs0, rtol) -> InitLossCheck:
    """One head: the model's loss (one output) or its output's loss."""
    if head.num_outputs == 1:
        measured, zero = logs["loss"], logs0["loss"]
        reg, reg0 = regularization(model), logs0["regularization"]
    else:  # the output's own loss: no regularization, no other output
        measured, zero = output_loss(logs, head.name), output_loss(logs0, head.name)
        reg = reg0 = 0.0
    numbers = _numbers(measured, _check_expected(expected.value), zero, reg, reg0,
                       rtol)
    return diagnose(numbers, _context(head, expected))


def _check_all(model, heads, found, logs, logs0, rtol, given) -> InitLossCheck:
    """Several outputs: each output's check, and the total,
    `sum_i loss_weight_i * loss_i` (+ regularization)."""
    parts = {} if given is not None else {
        h.name: _check_one(model, h, found[h.name], logs, logs0, rtol) for h in heads}
    weights = loss_weights(model, [h.name for h in heads])
    expected = given if given is not None else sum(
        w * found[h.name].value for w, h in zip(weights, heads))
    numbers = _numbers(logs["loss"], expected, logs0["loss"], regularization(model),
                       logs0["regularization"], rtol)
    return diagnose_outputs(numbers, parts, [h.layer.name for h in heads])


def verify_loss_at_init(
    model: keras.Model,
    dataset: Any,
    *,
    layer: Any = None,
    activation: Any = None,
    expected: Optional[float] = None,
    steps: Optional[int] = None,
    rtol: float = 0.05,
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

    The output layer is each output's head, found as `adapt_output_bias`
    finds it (`keras_biasinit.heads`). With several outputs (and neither
    `layer=` nor `expected=`), every output is checked on its own
    (`<output>_loss` of `evaluate`) and the total, `sum_i loss_weight_i *
    loss_i` with compile's `loss_weights`, against the sum of the expected
    losses; the kernels of all heads are zeroed together, so no head's kernel
    is blamed on another head's bias. The per-output parts are in
    `outputs`, and the message names the head that is off. (`<output>_loss`
    is a mean over batches: with a short last batch it is not exactly the
    mean over rows; the total is.)

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
        model: a compiled Keras model, before training (functional,
            `Sequential`, nested or subclassed: a subclassed `call()` is
            traced on a few rows of `dataset`).
        dataset: what `model.evaluate` takes as `x`: a `tf.data.Dataset` of
            `(x, y)` or `(x, y, sample_weight)` elements, a
            `keras.utils.PyDataset`, or a tuple `(x, y)` / `(x, y,
            sample_weight)` of arrays. Use the data the bias was computed on.
        layer: the head to check (a layer or its name; on a model with
            several outputs, the output it feeds is checked alone), or a dict
            of them by output name. Defaults to None: every output's head.
        activation: what `call()` applies after the head outside any layer
            (e.g. "softmax"), or a dict by output name. Defaults to None.
        expected: the loss the model (or, with `layer=` on a model with
            several outputs, that output) should show at init. Defaults to
            None: the head's `bias_initializer.expected_loss` (set by
            `adapt_output_bias` and the `from_dataset` of the keras_biasinit
            initializers), or, when that initializer was made for another
            loss or does not know its loss (e.g. `Zeros`, as in a reloaded
            KerasHub task), the compiled loss's best-constant loss computed
            from `dataset` with the loss table (the message says so).
        steps: number of batches to evaluate. Defaults to None (all).
        rtol: relative tolerance of `ok`. Defaults to 0.05.
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
        the `loss` compiled and the one the bias was `made_for`; with several
        outputs checked, the total's, with each output's own check in
        `outputs`.

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
    check_finite(dataset, steps)
    if expected is not None:
        expected = _check_expected(expected)
    check_single_output(class_weight, len(getattr(model, "outputs", None) or [0]))
    weighted = with_class_weight(dataset, class_weight, ids=_reads_ids(model))
    # Evaluate first: it builds a model that was not built yet.
    logs = evaluate(model, weighted, steps, verbose)
    if not math.isfinite(logs["loss"]):
        raise ValueError(
            f"The model's loss at init is {logs['loss']}: check the data for NaN/inf "
            "and the output activation against the loss."
        )
    checked, heads = _heads(model, dataset, layer, activation)
    whole = len(checked) > 1 and expected is not None
    found = {} if whole else expected_losses(checked, dataset, steps, expected,
                                             model=model, class_weight=class_weight)
    with zero_kernels(heads):
        logs0 = evaluate(model, weighted, steps, verbose)
        logs0["regularization"] = regularization(model)
    if len(checked) == 1:
        return _check_one(model, checked[0], found[checked[0].name], logs, logs0,
                          rtol)
    return _check_all(model, checked, found, logs, logs0, rtol, expected)
