"""Sparse: Martens's sparse initialization, a fixed number of inputs per unit."""

from __future__ import annotations

import math
import operator
from typing import Optional

import keras
from keras import ops

from keras_biasinit.initializers._random import RandomInitializer
from keras_biasinit.initializers._random import Seed
from keras_biasinit.initializers._random import check_positive


@keras.saving.register_keras_serializable(package="keras_biasinit")
class Sparse(RandomInitializer):
    """Initializer that gives every unit exactly `connections` nonzero inputs.

    Each output unit (a column of a Dense kernel `(in, out)`; an output channel
    of a convolution kernel `(*receptive_field, in, out)`, whose fan-in is
    `prod(receptive_field) * in`) gets `connections` incoming weights drawn
    from `N(0, stddev^2)` at positions chosen uniformly at random without
    replacement among its `fan_in` inputs; every other weight is exactly 0.
    The default

        stddev = sqrt(2 / connections)

    keeps He's scaling for the number of connections: a pre-activation
    `z = W . x` then has `E[z^2] = connections * stddev^2 * E[x^2] = 2` for
    inputs of unit second moment, whatever the layer's width.

    Martens (2010) uses 15 connections with unit-Gaussian weights: pass
    `stddev=1.0` for exactly that. `torch.nn.init.sparse_(tensor, sparsity)`
    is a different scheme: it zeros a *fraction* `sparsity` of the rows in each
    column of an otherwise `N(0, std^2)` 2-D tensor (default std 0.01), so the
    number of nonzero inputs grows with the fan-in, and it handles 2-D tensors
    only.

    The kernel layout must be Keras's regular one, `(..., in, out)`, as in
    `Dense` and `Conv1D/2D/3D`. A `DepthwiseConv2D` kernel
    `(kh, kw, channels, multiplier)` and a `Conv2DTranspose` kernel
    `(kh, kw, out, in)` are wired differently: the last axis is not the output
    units, so "exactly `connections` per unit" would not hold there (most
    depthwise channels would get no weight at all). Use `HeScaled` for those.

    The positions come from ranking one Gaussian draw per unit with
    `ops.top_k` and the values are placed with `ops.scatter`: no Python loop
    over units, so it works in graph mode and under `tf.distribute`
    strategies, and fills a 4096 x 4096 kernel in well under a second on CPU.

    Examples:

    >>> init = Sparse(connections=15, seed=1)
    >>> kernel = init(shape=(100, 30))  # 15 nonzeros in every column

    Inside a layer:

    >>> layer = keras.layers.Dense(64, activation="relu", kernel_initializer=init)

    Args:
        connections: the number of nonzero incoming weights per unit, at least
            1 and at most the kernel's fan-in. Defaults to 15 (Martens).
        stddev: the standard deviation of the nonzero weights. Defaults to None:
            `sqrt(2 / connections)`.
        seed: an int, a `keras.random.SeedGenerator` or None, as for Keras's
            random initializers: an int or None repeats its values on every
            call, a `SeedGenerator` gives new values on every call. Defaults to
            None.

    Reference:
        - [Martens, 2010, "Deep learning via Hessian-free optimization", ICML](
          https://www.cs.toronto.edu/~jmartens/docs/Deep_HessianFree.pdf)
          (section 5, sparse initialization).
        - [He et al., 2015, "Delving Deep into Rectifiers"](
          https://arxiv.org/abs/1502.01852) (the factor 2 for ReLU).
    """

    def __init__(
        self,
        connections: int = 15,
        stddev: Optional[float] = None,
        seed: Seed = None,
    ):
        self.connections = _check_connections(connections)
        self.stddev = None if stddev is None else check_positive(stddev, "stddev")
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        dtype = keras.backend.standardize_dtype(dtype)
        shape = tuple(int(d) for d in shape)
        if len(shape) < 2:
            raise ValueError(
                "Sparse initializes kernels of rank 2 or more, `(..., in, units)`: "
                f"every unit needs its own inputs. Received: shape={shape}"
            )
        fan_in, units = math.prod(shape[:-1]), shape[-1]
        k = self.connections
        if k > fan_in:
            raise ValueError(
                f"`connections={k}` is more than the kernel's fan-in, {fan_in} "
                f"(shape {shape}): a unit cannot have more inputs than exist. Pass "
                f"`connections` <= {fan_in}, or use a wider input."
            )
        stddev = self.stddev if self.stddev is not None else math.sqrt(2.0 / k)
        if units == 0:
            return ops.zeros(shape, dtype)
        # One draw per call (so the seed behaves as in Keras): per unit, the
        # first `fan_in` numbers rank its inputs (any i.i.d. continuous keys give
        # a uniform random subset; `top_k` returns k distinct positions), the
        # last `k` are its weights.
        draw_dtype = "float64" if dtype == "float64" else "float32"
        draw = keras.random.normal(
            (units, fan_in + k), seed=self.seed, dtype=draw_dtype
        )
        _, positions = ops.top_k(draw[:, :fan_in], k)
        values = draw[:, fan_in:] * stddev
        unit_ids = ops.broadcast_to(
            ops.arange(units, dtype="int32")[:, None], (units, k)
        )
        positions = ops.cast(positions, "int32")
        indices = ops.stack(
            [ops.reshape(unit_ids, (-1,)), ops.reshape(positions, (-1,))], axis=1
        )
        by_unit = ops.scatter(indices, ops.reshape(values, (-1,)), (units, fan_in))
        return ops.cast(ops.reshape(ops.transpose(by_unit), shape), dtype)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "connections": self.connections,
            "stddev": self.stddev,
        }


def _check_connections(connections) -> int:
    """A positive int (NumPy ints accepted; bools, floats and strings not)."""
    try:
        if isinstance(connections, bool):
            raise TypeError
        number = operator.index(connections)
    except TypeError:
        number = 0
    if number < 1:
        raise ValueError(
            "`connections` must be a positive integer (the nonzero weights per "
            f"unit). Received: connections={connections!r}"
        )
    return number
