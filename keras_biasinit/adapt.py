"""One call on a compiled model: set every output's bias to its loss's best constant.

`adapt_output_bias(model, data)` finds each output's layer with a bias, its
activation and its loss (`keras_biasinit.heads`), looks the pair up in the
table (`keras_biasinit.best_constant`), reads `data` once for all outputs
(`keras_biasinit.data.outputs`), merges every output's state over the
workers of a strategy (`keras_biasinit.distribute`), and only then, when every
output has its constant, assigns the biases. Anything that cannot be done is
an error before any bias changes.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

import keras

from keras_biasinit.best_constant import searched
from keras_biasinit.best_constant._state import Composite
from keras_biasinit.best_constant._state import RowsPerExample
from keras_biasinit.best_constant.counting import per_example
from keras_biasinit.data.outputs import read_outputs
from keras_biasinit.data.progress import resolve_verbose
from keras_biasinit.distribute import reducer_for
from keras_biasinit.heads import Head
from keras_biasinit.heads import InputSample
from keras_biasinit.heads import find_heads
from keras_biasinit.initializers import BiasInitializer
from keras_biasinit.initializers import MappedBias
from keras_biasinit.loss_view import loss_view
from keras_biasinit.stats import DEFAULT_MEMORY_BUDGET

__all__ = ["adapt_output_bias"]


def _one_pass(source, states, reducer) -> None:
    """Updates every output's state from one pass; a failure is first told
    to the other workers (`Reducer.abort`), so that none of them waits."""
    try:
        for batches in source:
            for state, (values, weights) in zip(states, batches):
                if len(values):  # a batch may mask all of an output's rows
                    state.update(values, weights)
    except Exception as error:  # pylint: disable=broad-except
        reducer.abort(error)
        raise


def _finish(states, source, reducer) -> List[BiasInitializer]:
    """Every output's initializer from the states merged over all workers:
    the one-pass states and the row counts in one reducer call, then each
    exact search (which reads its output again only if the union exceeds
    its memory budget); each loss per row becomes the loss per example."""
    single = [state for state in states if not searched(state)]
    counts = [RowsPerExample(rows, source.examples) for rows in source.rows]
    parts = reducer(Composite(single + counts)).parts
    merged, counts = iter(parts[:len(single)]), parts[len(single):]
    return [per_example(state.finish(source.output(index), reducer)
                        if searched(state) else next(merged).result(),
                        counts[index]) for index, state in enumerate(states)]


def _for_layer(head: Head, initializer: BiasInitializer) -> BiasInitializer:
    """The initializer of the head's layer: `initializer` itself, or, where
    the loss sees the head's units moved or rescaled, a `MappedBias`."""
    values = head.bias_values(initializer.bias)
    return initializer if values is None else MappedBias(values.reshape(-1),
                                                         initializer)


def _assign(layer, initializer: BiasInitializer) -> None:
    """Sets the layer's `bias_initializer` and, if built, its bias in place."""
    layer.bias_initializer = initializer
    bias = getattr(layer, "bias", None)
    if bias is not None:
        bias.assign(initializer(tuple(bias.shape), dtype=bias.dtype))


def adapt_output_bias(
    model: keras.Model,
    data: Any,
    *,
    layer: Any = None,
    activation: Any = None,
    loss: Any = None,
    steps: Optional[int] = None,
    verbose: Union[str, int] = "auto",
    batched: Optional[bool] = None,
    strategy: Any = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    target: Any = None,
    sample_weight: Optional[str] = None,
    classes: Any = None,
    class_weight: Optional[Dict[int, float]] = None,
) -> Dict[str, BiasInitializer]:
    """Sets each output's bias to the best constant for its loss, from data.

    For every output with a loss, the bias `b` becomes the constant that
    minimises that loss on `data` with a ~0 kernel, e.g. `log F` (class
    priors) under softmax cross-entropy, the prior logit under binary
    cross-entropy, the focal minimiser under focal loss, the mean under MSE,
    the median under MAE; the table is in `keras_biasinit.best_constant`.
    The loss is read with its parameters (`label_smoothing`, `from_logits`,
    `gamma`, `alpha`, `apply_class_balancing`, `delta`) and the output's
    activation (a trailing `Activation`/`Softmax` layer, or the layer's own).

    The loss is the one Keras computes (`keras_biasinit.data.loss_elements`):
    every element of the targets (an example, a time step, a pixel) weighs
    its sample weight (any shape Keras accepts) times its `class_weight`;
    elements masked by the output's Keras mask (`Embedding(mask_zero=True)`,
    `Masking`, ...) or equal to `SparseCategoricalCrossentropy`'s
    `ignore_class` do not count, and each batch is normalised by the elements
    left, so that `expected_loss` is what `evaluate` reports on these batches:

        loss = (1 / N) sum_b n_b / V_b sum_{i in b, unmasked} w_i l_i

    (`N` examples, `n_b` in batch `b`, `V_b` unmasked elements in it). The
    mask is computed on each batch's `x` by the mask's own ops alone; `x` is
    not read for outputs without a mask. Arrays are then normalised in
    batches of 32 rows, `fit`'s and `evaluate`'s default.

    All outputs are computed in ONE pass over `data` (a one-shot generator
    works), more only for an order statistic over `memory_budget`; nothing
    is assigned unless every output succeeds. Each layer's
    `bias_initializer` is set to the initializer computed, so `get_config`,
    `keras.models.clone_model` and `.keras` files carry the numbers.

    Examples:

    >>> import keras_biasinit as kbi
    >>> x = np.random.default_rng(0).normal(size=(200, 3)).astype("float32")
    >>> y = (np.arange(200) % 10 == 0).astype("float32")  # 10% positives
    >>> model = keras.Sequential([
    ...     keras.Input((3,)),
    ...     keras.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros"),
    ... ])
    >>> model.compile(loss="binary_crossentropy")
    >>> inits = kbi.adapt_output_bias(model, (x, y), verbose=0)
    >>> init = inits[model.layers[-1].name]
    >>> round(float(init.bias[0]), 4)  # log(0.1 / 0.9)
    -2.1972
    >>> loss = model.evaluate(x, y, verbose=0)
    >>> bool(abs(loss - init.expected_loss) < 1e-5)
    True

    With `fit`'s class weights, the positives weigh 9 times more: the best
    constant is then the prior of the weighted labels, 9 * 0.1 / (9 * 0.1 + 0.9):

    >>> init = kbi.adapt_output_bias(model, (x, y), class_weight={1: 9.0},
    ...                              verbose=0)[model.layers[-1].name]
    >>> round(float(init.bias[0]), 4)  # log(0.5 / 0.5)
    0.0

    Which bias is set: each output's head, the layer whose output reaches
    the model output through only output-preserving layers (activations,
    shape-only layers such as `Reshape` or `Dropout`, and `Rescaling`; see
    `keras_biasinit.heads`). Where the layers after the head move or rescale
    its units, the layer's `bias_initializer` is a `MappedBias` holding the
    bias that puts the constant at every loss unit (the returned
    initializer is the loss's).

    Args:
        model: a Keras model (functional, `Sequential`, nested or
            subclassed: a subclassed `call()` is traced on a few rows of
            `data`) whose outputs each end in a head. Compiled, unless
            `loss=` is given.
        data: what `model.fit` takes: a `tf.data.Dataset` or
            `keras.utils.PyDataset` of `(x, y)` / `(x, y, sample_weight)`
            batches, a tuple `(x, y)` / `(x, y, sample_weight)` of arrays, or an
            iterable of such tuples. For several outputs `y` is a dict keyed by
            output name or a list in output order.
        layer: the head whose bias to set, by name or as the layer (nested
            layers too), or a dict of them by output name. Where the walk
            from the output cannot see what follows it (a `Lambda`, an
            operation in `call()`), that is taken to pass its units through.
            Defaults to None: found by the rule above.
        activation: what is applied after the head outside any layer (in a
            subclassed `call()`), e.g. "softmax", or a dict by output name.
            It adds to the layer's own activation; two non-linear ones are
            an error. Defaults to None.
        loss: the loss to compute the constants for, in any form `compile`
            takes (one loss, a dict by output name or a list). Defaults to None:
            the compiled loss.
        steps: read at most this many batches (rows, for arrays). Defaults to
            None (all).
        verbose: `"auto"`, 0, 1 or 2, as in `Model.fit`. Defaults to "auto".
        batched: whether each element of a `tf.data.Dataset` is a batch.
            Defaults to None (detected; see `keras_biasinit.data.batched`).
        strategy: the `tf.distribute.Strategy` the model was built under.
            Under a `MultiWorkerMirroredStrategy` each worker passes its own
            shard; every output's statistics are merged over the workers with
            the strategy's collectives, so every worker assigns the same
            biases, those of the union of the shards (the order statistics
            exactly; see `keras_biasinit.distribute`). Defaults to None: the
            strategy in scope, if any. The biases are assigned in place either
            way.
        memory_budget: bytes each output whose constant is an order statistic
            (MAE, Huber, log-cosh, MAPE) may hold. Data over it stay exact for
            MAE, Huber and MAPE (split over MAPE's output columns): that
            output is read again, typically twice more, so the data must be
            re-iterable (a one-shot generator over budget is a ValueError);
            the log-cosh root is solved in memory, and over budget is a
            ValueError. Defaults to 256 MiB.
        target: for `data` that is a pandas DataFrame, a pyarrow Table or
            RecordBatch or a `pyarrow.dataset.Dataset`: the label column of a
            one-output model, or a list of columns (one per unit), or a dict
            keyed by output name with a column or list for each output.
            Defaults to None (other data carry `y` themselves).
        sample_weight: the weight column of such data (weighting every
            output). Defaults to None.
        classes: the class list of a string or categorical label column
            (its labels' ids are their positions), or a dict of them keyed by
            output name. Defaults to None.
        class_weight: `fit`'s `{class: weight}`, for a one-output model: each
            example's (or step's) sample weight is multiplied by the weight of
            its label's class, the argmax of a label vector or the rounded id
            (1 for a class not named), as `fit(..., class_weight=...)` does.
            Defaults to None.

    Returns:
        `{output_name: initializer}`, each with `expected_loss`: that output's
        loss at step 0 with a ~0 kernel, as Keras reports it (compare it with
        `evaluate`'s total `loss` for a one-output model; per-output
        `<name>_loss` logs are unweighted means over batches).

    Raises:
        ValueError: an output whose (loss, activation) pair has no known best
            constant (the message lists the known pairs), a head that cannot
            be found (the message names `layer=` and `activation=`) or has no
            bias, an endless input without `steps`, or bad data; raised before
            any bias is changed.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a keras.Model. Received: model={type(model).__name__}"
        )
    sample = InputSample(data, batched)
    heads = find_heads(model, loss, layer=layer, activation=activation,
                       sample=sample)
    data = sample.data  # a peeked one-shot iterator has its element back
    elements, masks = loss_view(model, heads, class_weight, resolve_verbose(
        verbose, streamed=not isinstance(data, tuple)))
    reducer = reducer_for(strategy)
    source = read_outputs(
        data, [(head.name, head.index) for head in heads], steps=steps,
        batched=batched, verbose=verbose, num_outputs=heads[0].num_outputs,
        target=target, sample_weight=sample_weight, classes=classes,
        elements=elements, masks=masks,
    )
    source.allow_empty = reducer.distributed  # the union is checked, not a shard
    states = [
        head.rule.start(head.spec, head.units, head.activation,
                        name=f"output '{head.name}'", memory_budget=memory_budget,
                        reiterable=source.reiterable)
        for head in heads
    ]
    _one_pass(source, states, reducer)
    initializers = _finish(states, source, reducer)
    for head, initializer in zip(heads, [_for_layer(h, i) for h, i in
                                         zip(heads, initializers)]):
        _assign(head.layer, initializer)
    return {head.name: init for head, init in zip(heads, initializers)}
