"""`adapt_model`: the whole network from data, the kernels' scales, then the bias."""

from __future__ import annotations

from typing import Any, Dict, NamedTuple, Optional, Union

import keras

from keras_biasinit.adapt import adapt_output_bias
from keras_biasinit.initializers import BiasInitializer
from keras_biasinit.network.kernel_scales import KernelScales
from keras_biasinit.network.kernel_scales import adapt_kernel_scales

__all__ = ["AdaptedModel", "adapt_model"]


class AdaptedModel(NamedTuple):
    """What `adapt_model` did: the kernel gains and the output biases."""

    kernel_scales: KernelScales
    output_biases: Dict[str, BiasInitializer]


def adapt_model(
    model: keras.Model,
    data: Any,
    *,
    steps: Optional[int] = None,
    target: float = 1.0,
    output_target: float = 1e-4,
    loss: Any = None,
    verbose: Union[str, int] = "auto",
    batched: Optional[bool] = None,
    strategy: Any = None,
) -> AdaptedModel:
    """Initialises a compiled model from data: every kernel's scale, then the
    output bias.

    First `adapt_kernel_scales(model, data)`: every hidden layer's output at
    second moment `target`, the output layers' kernel part scaled down to
    `output_target`. Then `adapt_output_bias(model, data)`: each output's bias
    at the best constant for its loss. With the output kernel small, the loss
    at step 0 is the bias's `expected_loss`, which `verify_loss_at_init`
    checks.

    Example:

    >>> import keras_biasinit as kbi
    >>> rng = np.random.default_rng(0)
    >>> x = 500.0 * rng.random((256, 6))  # raw, unscaled features
    >>> y = (x[:, :1] > 250).astype("float32")
    >>> model = keras.Sequential([keras.Input((6,)),
    ...     keras.layers.Dense(16, activation="relu"),
    ...     keras.layers.Dense(1, activation="sigmoid")])
    >>> model.compile(loss="binary_crossentropy")
    >>> scales, biases = kbi.adapt_model(model, (x, y), verbose=0)
    >>> kbi.verify_loss_at_init(model, (x, y)).ok
    True

    Args:
        model: a compiled functional or `Sequential` model with one input.
        data: `(x, y[, w])` in any form `adapt_output_bias` reads; both steps
            read it (the same batches), so it must be re-iterable (not a
            generator).
        steps: read at most this many batches. Defaults to None (all).
        target: see `adapt_kernel_scales`. Defaults to 1.0.
        output_target: see `adapt_kernel_scales`. Defaults to 1e-4.
        loss: see `adapt_output_bias`. Defaults to None (the compiled loss).
        verbose: `"auto"`, 0, 1 or 2. Defaults to "auto".
        batched: see `adapt_output_bias`. Defaults to None.
        strategy: see `adapt_output_bias`. Defaults to None.

    Returns:
        An `AdaptedModel(kernel_scales, output_biases)`.
    """
    options = dict(steps=steps, verbose=verbose, batched=batched, strategy=strategy)
    scales = adapt_kernel_scales(model, data, target=target,
                                 output_target=output_target, **options)
    biases = adapt_output_bias(model, data, loss=loss, **options)
    return AdaptedModel(scales, biases)
