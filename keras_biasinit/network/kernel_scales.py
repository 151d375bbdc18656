"""`adapt_kernel_scales`: every hidden kernel's scale, from the data, in one walk."""

from __future__ import annotations

import math
from typing import Any, List, Optional, Union

import keras
import numpy as np
from keras import ops

from keras_biasinit.data import read_batches
from keras_biasinit.distribute import reducer_for
from keras_biasinit.network._layers import set_initializers
from keras_biasinit.network._plan import make_plan
from keras_biasinit.network._walk import LayerScale
from keras_biasinit.network._walk import Walk

__all__ = ["KernelScales", "adapt_kernel_scales"]


class KernelScales(dict):
    """`{layer_name: gain}` for every kernel that was scaled, and the report.

    Attributes:
        layers: a `LayerScale` per kernel layer and residual sum, in the order
            walked: `name`, `role` (`"scale"`, `"output"`, `"normalised"`,
            `"sum"`, or `"nested"`: a model used as a layer, left alone),
            `gain`, the second moments `before` and `after` at
            `measured_at`, and a `note`. `str()` prints them as a table.
        target: the target second moment.
    """

    def __init__(self, layers: List[LayerScale], target: float) -> None:
        super().__init__(
            (r.name, r.gain) for r in layers
            if r.role == "scale" or (r.role == "output" and r.gain != 1.0))
        self.layers, self.target = layers, target

    def __str__(self) -> str:
        lines = [f"{'layer':<28}{'role':<12}{'gain':>10}{'before':>11}"
                 f"{'after':>11}  measured at / note"]
        for r in self.layers:
            where = r.note if r.role in ("normalised", "nested") else (
                r.measured_at + (f"; {r.note}" if r.note else ""))
            lines.append(f"{r.name[:27]:<28}{r.role:<12}{r.gain:>10.4g}"
                         f"{r.before:>11.4g}{r.after:>11.4g}  {where}")
        return "\n".join(lines)


def _check_target(value: Any, name: str) -> float:
    number = float(value) if isinstance(value, (int, float, np.number)) \
        and not isinstance(value, bool) else math.nan
    if not math.isfinite(number) or number <= 0:
        raise ValueError(
            f"`{name}` must be a finite, positive number. Received: {name}={value!r}")
    return number


def _read(data, plan, reducer, **options):
    source = read_batches(data, role="features", **options)
    source.allow_empty = reducer.distributed
    values, weights = [], []
    dtype = plan.inputs[0].dtype
    try:
        for x, w in source:
            values.append(ops.cast(ops.convert_to_tensor(x), dtype))
            weights.append(w)
    except Exception as error:  # pylint: disable=broad-except
        reducer.abort(error)
        raise
    return values, weights


class _Snapshot:
    """The kernels a walk may scale and the normalisation statistics it moves."""

    def __init__(self, plan) -> None:
        kernels = [v for s in plan.steps if s.kernels for v in s.kernels.variables]
        norms = [v for s in plan.steps
                 if isinstance(s.op, keras.layers.BatchNormalization)
                 for v in s.op.non_trainable_variables]
        self.kernels = [(v, ops.convert_to_numpy(v)) for v in kernels]
        self.norms = [(v, ops.convert_to_numpy(v)) for v in norms]

    @staticmethod
    def restore(saved) -> None:
        for variable, value in saved:
            variable.assign(value)


def adapt_kernel_scales(
    model: keras.Model,
    data: Any,
    *,
    steps: Optional[int] = None,
    target: float = 1.0,
    output_target: float = 1e-4,
    verbose: Union[str, int] = "auto",
    batched: Optional[bool] = None,
    strategy: Any = None,
) -> KernelScales:
    """Scales every hidden kernel so its layer's output has `E[out^2] = target`.

    LSUV-style (Mishkin & Matas), from the input to the outputs in topological
    order: each kernel layer (`Dense`, `EinsumDense`, `Conv*`,
    `DepthwiseConv*`, `SeparableConv*`, `Embedding`, `MultiHeadAttention`)
    gets one gain `g` on its kernel so that its output, after its own
    activation, has second moment `target` on the data, measured with the
    layers before it already scaled. Where `out(g W) = g out(W)` (a linear or
    ReLU activation and a zero bias) `g = sqrt(target / E[out^2])` in one
    step; otherwise `g` is iterated (log-log Newton steps, at most 8, to 2%).

    - Residual sums: when an input of an `Add` comes from a scaled layer
      through pass-through ops (reshape, pooling, ReLU, dropout) and is used
      nowhere else, that branch's last kernel takes a further gain `g` so
      that the SUM is at the target: `m_s + 2 g c + g^2 m_b = target`, with
      `m_s` the second moment of the other inputs (the shortcut), `m_b` the
      branch's and `c` their measured cross term. A shortcut at or above the
      target leaves the branch at its own gain (reported); near the target,
      the branch starts small, as in SkipInit/ReZero.
    - A layer whose every use is normalised right after (`BatchNormalization`,
      `LayerNormalization`, `GroupNormalization`, through pass-through ops)
      is left alone: its scale cannot change what follows. Reported.
    - An output layer (reaching a model output through activations only) is
      never scaled up: its kernel part `z = W x` is scaled down to second
      moment `output_target`, so the loss at init is its bias's. Small, as
      `z` may follow the label: the loss moves to first order by
      `E[(p - y) z]`, up to `sd(p - y) * sqrt(output_target)` (Cauchy-Schwarz;
      0.005 for a balanced binary cross-entropy of 0.693 at the default).
    - `MultiHeadAttention` gets ONE gain for its query, key, value and output
      projections: Keras rebuilds all four from the layer's single
      `kernel_initializer`, so only a shared gain survives `.keras` files.

    Cost: the batches read (at most `steps`) are held in memory; each node
    runs once per batch on cached inputs (more only while a gain is iterated):
    linear in depth. Nothing changes unless every gain is found: a layer whose
    output is all zeros or not finite is a ValueError naming it, with every
    kernel restored. On success each scaled layer's kernel initializer
    becomes `kbi.Rescaled(original, gain)`, so `get_config`, `clone_model`
    and `.keras` files rebuild kernels of the same scale. Layers run in
    inference mode, except `BatchNormalization`, which uses batch statistics
    as in training (its moving statistics are restored afterwards).

    Example:

    >>> import keras_biasinit as kbi
    >>> x = 1000.0 * np.random.default_rng(0).random((256, 8), "float32")
    >>> model = keras.Sequential([keras.Input((8,)),
    ...     keras.layers.Dense(32, activation="relu"),
    ...     keras.layers.Dense(32, activation="relu"),
    ...     keras.layers.Dense(1)])
    >>> gains = kbi.adapt_kernel_scales(model, x, verbose=0)
    >>> hidden = keras.Model(model.inputs[0], model.layers[1].output)
    >>> out = keras.ops.convert_to_numpy(hidden(x)).astype("float64")
    >>> round(float(np.mean(out ** 2)), 4)  # raw inputs of scale 1000
    1.0

    Args:
        model: a functional or `Sequential` Keras model with one input.
        data: the forms `from_dataset` reads: a `tf.data.Dataset` or
            `PyDataset` of `(x, y[, w])`, a tuple of arrays, an array of
            features, an iterable of batches. `x` is read (weighted by `w`).
        steps: read at most this many batches (rows, for arrays). Defaults to
            None (all; they are held in memory: pass `steps` for big data).
        target: the second moment of each scaled layer's output. Defaults to
            1.0.
        output_target: the most the output layers' `E[(W x)^2]` may be.
            Defaults to 1e-4.
        verbose: `"auto"`, 0, 1 or 2: a progress bar for the read, and the
            table of gains. Defaults to "auto".
        batched: whether each element of a `tf.data.Dataset` is a batch.
            Defaults to None (detected).
        strategy: a `tf.distribute.Strategy`; under a multi-worker one every
            second moment is summed over the workers, so all take the same
            gains. Defaults to None: the strategy in scope, if any.

    Returns:
        A `KernelScales`: `{layer_name: gain}`, with `.layers` the report.

    Reference:
        - [Mishkin & Matas, 2016, "All you need is a good init"](
          https://arxiv.org/abs/1511.06422)
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    target = _check_target(target, "target")
    output_target = _check_target(output_target, "output_target")
    plan = make_plan(model)
    if len(plan.inputs) != 1:
        raise ValueError(
            f"Model '{model.name}' has {len(plan.inputs)} inputs; "
            "adapt_kernel_scales reads one input (`x` of each batch).")
    reducer = reducer_for(strategy)
    values, weights = _read(data, plan, reducer, steps=steps, batched=batched,
                            verbose=verbose)
    snapshot = _Snapshot(plan)
    try:
        records = Walk(plan, values, weights, reducer, target=target,
                       output_target=output_target).run()
    except BaseException:
        _Snapshot.restore(snapshot.kernels)
        raise
    finally:
        _Snapshot.restore(snapshot.norms)
    for step in plan.steps:
        record = records.get(step.name)
        if step.kernels is not None and record is not None and record.gain != 1.0:
            set_initializers(step.kernels, record.gain)
    result = KernelScales(list(records.values()), target)
    if verbose not in (0, "auto") or (verbose == "auto" and not _in_memory(data)):
        print(result)
    return result


def _in_memory(data: Any) -> bool:
    return isinstance(data, (np.ndarray, tuple, dict)) or hasattr(data, "__array__")
