"""Verify the loss at init: measure a fresh model's loss and explain any gap.

A model whose output bias predicts the best constant, and whose final kernel
adds ~0 at init, starts at a loss you can compute from the data alone (the
initializer's `expected_loss`: the entropy of the class priors, the variance,
the mean absolute deviation, the mean Huber loss). `verify_loss_at_init`
measures the compiled model's loss before any training, compares it with that
number, and splits the gap in two by measuring once more with the final
layer's kernel set to zero (then restored):

- kernel part = loss - loss with a zero final kernel: what the random final
  kernel adds (scale it down);
- bias part = loss with a zero final kernel - expected: how far the bias itself
  is from the best constant (recompute it for this data and this loss).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
from typing import Any, Optional, Union

import keras
import numpy as np

__all__ = ["InitLossCheck", "verify_loss_at_init"]

_HINT = (
    "ClassPriorBias for cross-entropy (activation matching the output layer's "
    "softmax or sigmoid), MeanBias for mean squared error, MedianBias for mean "
    "absolute error, HuberBias with the loss's own `delta` for Huber"
)


@dataclasses.dataclass(frozen=True)
class InitLossCheck:
    """What `verify_loss_at_init` measured, and what to do about it.

    `str()` gives `message`, the diagnosis in words.

    Attributes:
        measured: the model's loss before training (as `model.evaluate`
            reports it: inference mode, regularization losses included).
        expected: the loss it should have (the output bias initializer's
            `expected_loss`, or the value passed as `expected=`).
        gap: `measured - expected`.
        zero_kernel_loss: the loss with the output layer's kernel set to zero,
            i.e. the loss of the bias alone.
        kernel_part: `measured - zero_kernel_loss`, what the random final
            kernel adds.
        bias_part: `zero_kernel_loss - expected`, how far the bias alone is
            from the expected loss.
        rtol: the relative tolerance `ok` was judged with.
        ok: whether `|gap| <= rtol * expected`.
        message: the diagnosis and what to do, in words.
    """

    measured: float
    expected: float
    gap: float
    zero_kernel_loss: float
    kernel_part: float
    bias_part: float
    rtol: float
    ok: bool
    message: str

    def __str__(self) -> str:
        return self.message


def _check_expected(expected) -> float:
    value = float(expected)
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            "`expected` must be a finite, non-negative loss. "
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


def _loss_name(model) -> str:
    loss = model.loss
    if isinstance(loss, str):
        return repr(loss)
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None)
    return repr(name) if name else repr(loss)


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


def _diagnose(model, layer, measured, expected, zero_kernel, rtol, bias_is_initial,
              regularization=0.0):
    gap = measured - expected
    kernel_part = measured - zero_kernel
    bias_part = zero_kernel - expected
    tol = rtol * abs(expected) if expected else rtol
    ok = abs(gap) <= tol
    relative = f", {gap / expected:+.1%}" if expected else ""
    lines = [
        f"Loss at init: {measured:.6g}, expected {expected:.6g} "
        f"(gap {gap:+.4g}{relative}; rtol={rtol:g})."
    ]
    if ok:
        lines.append(
            f"OK: the output bias of layer '{layer.name}' predicts the best constant "
            f"and its kernel adds {kernel_part:+.3g}. Nothing to fix."
        )
    else:
        lines.append(
            f"NOT OK. With the kernel of layer '{layer.name}' set to zero the loss "
            f"is {zero_kernel:.6g}: the kernel adds {kernel_part:+.4g} and the "
            f"bias is {bias_part:+.4g} away from the expected loss."
        )
    if bias_is_initial is False:
        lines.append(
            "The bias no longer holds the values its initializer made: the model "
            "was trained or weights were loaded. Check a freshly built model."
        )
    if not ok and kernel_part > tol:
        lines.append(
            f"- The final kernel's random part adds {kernel_part:.4g}: its outputs "
            "at init are not ~0 and pull the predictions away from the bias. "
            "Scale it down: `kernel_initializer=\"zeros\"` or a smaller stddev "
            "(e.g. `keras.initializers.RandomNormal(stddev=1e-3)`) in the output "
            "layer."
        )
    elif not ok and kernel_part < -tol:
        lines.append(
            f"- The kernel lowers the loss by {-kernel_part:.4g}: the model already "
            "predicts from its inputs. Was it trained? This check is meant for a "
            "model before training."
        )
    if not ok and regularization > tol:
        lines.append(
            f"- The model's regularization losses (kernel, bias or activity "
            f"regularizers) add {regularization:.4g} to what `evaluate` reports, "
            "while `expected` is the data loss alone: compare with `expected + "
            f"{regularization:.4g}`, or check the model without regularizers."
        )
    if not ok and bias_part > tol:
        lines.append(
            f"- The bias itself is off by {bias_part:.4g}. Was the bias recomputed "
            "for this data (the same split, target and sample weights) and for "
            f"this loss? The model is compiled with loss={_loss_name(model)} and the "
            f"bias initializer is {type(layer.bias_initializer).__name__}; use "
            f"{_HINT}."
        )
    elif not ok and bias_part < -tol:
        lines.append(
            f"- The bias alone does {-bias_part:.4g} better than `expected`, which "
            "no constant can do if `expected` is the best constant's loss on this "
            "data: the expected loss belongs to other data or another loss "
            f"(the model is compiled with loss={_loss_name(model)}). Recompute the "
            "initializer on this dataset, or pass the right `expected=`."
        )
    return InitLossCheck(
        measured=measured,
        expected=expected,
        gap=gap,
        zero_kernel_loss=zero_kernel,
        kernel_part=kernel_part,
        bias_part=bias_part,
        rtol=rtol,
        ok=ok,
        message="\n".join(lines),
    )


def verify_loss_at_init(
    model: keras.Model,
    dataset: Any,
    *,
    expected: Optional[float] = None,
    steps: Optional[int] = None,
    rtol: float = 0.05,
    layer: Union[str, keras.layers.Layer, None] = None,
    verbose: Union[str, int] = 0,
) -> InitLossCheck:
    """Checks a fresh model's loss against the loss its output bias predicts.

    Measures `loss = model.evaluate(dataset)` before training, and
    `loss_0`, the same with the output layer's kernel set to zero (the kernel
    is restored afterwards). Then

    `gap = loss - expected = (loss - loss_0) + (loss_0 - expected)`

    where the first term is what the random final kernel adds and the second
    how far the bias alone is from the best constant. `ok` is
    `|gap| <= rtol * expected`; `str(result)` says in words what to fix.

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
            output layer's `bias_initializer.expected_loss` (set by the
            `from_dataset` of the keras_biasinit initializers).
        steps: number of batches to evaluate. Defaults to None (all).
        rtol: relative tolerance of `ok`. Defaults to 0.05.
        layer: the output layer (or its name) whose kernel is zeroed and whose
            bias initializer gives `expected`. Defaults to None: the last layer
            of `model` with a kernel.
        verbose: passed to `model.evaluate`. Defaults to 0.

    Returns:
        An `InitLossCheck`: `measured`, `expected`, `gap`, `zero_kernel_loss`,
        `kernel_part`, `bias_part`, `ok` and `message`.

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
    # Evaluate first: it builds a model that was not built yet.
    measured = _evaluate(model, dataset, steps, verbose)
    if not math.isfinite(measured):
        raise ValueError(
            f"The model's loss at init is {measured}: check the data for NaN/inf "
            "and the output activation against the loss."
        )
    out = _output_layer(model, layer)
    if expected is None:
        initializer = getattr(out, "bias_initializer", None)
        if getattr(initializer, "expected_loss", None) is None:
            raise ValueError(
                f"Cannot tell the expected loss: the bias_initializer of layer "
                f"'{out.name}' ({type(initializer).__name__}) does not know it. "
                "Build the bias with a keras_biasinit initializer's `from_dataset` "
                "(e.g. `ClassPriorBias.from_dataset(train_ds)`), or pass "
                "`expected=`."
            )
        expected = _check_expected(initializer.expected_loss)
    kernel = out.kernel
    saved = keras.ops.convert_to_numpy(kernel)
    try:
        kernel.assign(np.zeros_like(saved))
        zero_kernel = _evaluate(model, dataset, steps, verbose)
    finally:
        kernel.assign(saved)
    regularization = sum(float(keras.ops.convert_to_numpy(x)) for x in model.losses)
    return _diagnose(
        model, out, measured, expected, zero_kernel, rtol, _bias_is_initial(out),
        regularization,
    )
