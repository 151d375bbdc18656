"""HeScaled: He (variance scaling) initialization, calibrated on the input data."""

from __future__ import annotations

import math
from typing import Any, Optional, Union

import keras

from keras_biasinit._optional import tensorflow as tf  # annotations only
from keras_biasinit.initializers._from_data import Key
from keras_biasinit.initializers._from_data import Recipe
from keras_biasinit.initializers._from_data import from_data
from keras_biasinit.initializers._random import RandomInitializer
from keras_biasinit.initializers._random import Seed
from keras_biasinit.initializers._random import check_positive
from keras_biasinit.stats import SecondMoment
from keras_biasinit.stats import SecondMomentResult

_MODES = ("fan_in", "fan_out", "fan_avg")
# Our names -> the names `keras.initializers.VarianceScaling` uses for them.
_KERAS_DISTRIBUTIONS = {
    "truncated_normal": "truncated_normal",
    "normal": "untruncated_normal",
    "uniform": "uniform",
}
_ALIASES = {"untruncated_normal": "normal"}


def _check_args(scale, mode, distribution, second_moment):
    scale = check_positive(scale, "scale")
    if mode not in _MODES:
        raise ValueError(
            f'`mode` must be "fan_in", "fan_out" or "fan_avg". Received: mode={mode!r}'
        )
    name = _ALIASES.get(distribution, distribution)
    if name not in _KERAS_DISTRIBUTIONS:
        raise ValueError(
            '`distribution` must be "truncated_normal" (Keras\'s HeNormal), '
            '"normal" (untruncated, PyTorch\'s kaiming_normal_) or "uniform". '
            f"Received: distribution={distribution!r}"
        )
    if second_moment is not None:
        second_moment = check_positive(second_moment, "second_moment")
        if not math.isfinite(scale / second_moment):
            raise ValueError(
                "`scale / second_moment` overflows: the features are (nearly) all "
                f"zero. Received: scale={scale!r}, second_moment={second_moment!r}"
            )
    return scale, name, second_moment


@keras.saving.register_keras_serializable(package="keras_biasinit")
class HeScaled(RandomInitializer):
    """He initializer whose scale is calibrated to the input's second moment.

    Zero-mean weights with variance

        Var(W) = scale / (fan * m)

    where `fan` is the kernel's fan-in (`mode="fan_in"`; Keras's own count:
    `in` for a Dense kernel `(in, out)`, `prod(receptive_field) * in` for a
    convolution kernel `(*receptive_field, in, out)`) and `m` is the second
    moment `E[x^2]` of the layer's input, averaged over its features (1 when
    not calibrated, which is exactly `keras.initializers.HeNormal`). Each
    pre-activation `z = W . x` then has `E[z^2] = scale` on the measured data:
    He et al.'s 2 for ReLU, 1 for linear or tanh units, whatever the raw scale
    of the features.

    Why one number, not one per feature: with i.i.d. weights of variance `s^2`,
    `E[z^2] = s^2 * sum_i E[x_i^2] = s^2 * fan_in * m`, so the scalar `m` makes
    the second moment exactly `scale` (in expectation over the weights) for any
    data: correlated features, non-zero means, a column in the thousands next
    to one in [0, 1]. Calibrating each input row separately would also average
    to `scale`, but it is input normalisation in disguise: it blows up the
    weights of rare or near-constant features (a one-hot column set in 0.01% of
    rows gets 100x larger weights; an all-zero column an infinite std) and still
    leaves training ill-conditioned. Normalise features with
    `keras.layers.Normalization` if that is what you want. The price of the
    scalar: when one feature dominates `m`, each unit sees mostly that feature,
    so `E[z^2]` varies more from unit to unit (the layer's average is `scale`).

    The distribution (all three have exactly the variance above):

    - `"truncated_normal"`: a normal truncated at 2 standard deviations whose
      stddev is divided by 0.87962566103423978 (the std of a unit normal
      truncated to [-2, 2]) so the variance is right; this is Keras's
      `HeNormal` (`VarianceScaling(distribution="truncated_normal")`).
    - `"normal"`: an untruncated normal, as PyTorch's
      `torch.nn.init.kaiming_normal_`. Keras spells it `"untruncated_normal"`
      (accepted here too); note that Keras's `VarianceScaling` reads
      `"normal"` as truncated.
    - `"uniform"`: `U(-limit, limit)` with `limit = sqrt(3 * Var(W))`, as
      Keras's `HeUniform` and PyTorch's `kaiming_uniform_`.

    With `mode="fan_out"` or `"fan_avg"` the fan is counted as in
    `keras.initializers.VarianceScaling` and `m` still divides the variance,
    but only `"fan_in"` makes `E[z^2] = scale`.

    Examples:

    >>> init = HeScaled()  # no data: the same values as HeNormal
    >>> values = init(shape=(3, 4))

    Calibrated on raw, unnormalised features, inside a layer:

    >>> x = np.array([[1500.0, 0.2], [2500.0, 0.9], [900.0, 0.4]])
    >>> init = HeScaled.from_dataset(x, verbose=0, seed=1)
    >>> round(init.second_moment)  # mean over features of E[x_i^2]
    1551667
    >>> layer = keras.layers.Dense(64, activation="relu", kernel_initializer=init)

    Args:
        scale: the target second moment of the pre-activations. Defaults to 2.0
            (He, for ReLU).
        mode: `"fan_in"`, `"fan_out"` or `"fan_avg"`, as in
            `keras.initializers.VarianceScaling`. Defaults to `"fan_in"`.
        distribution: `"truncated_normal"`, `"normal"` (alias
            `"untruncated_normal"`) or `"uniform"`. Defaults to
            `"truncated_normal"`.
        seed: an int, a `keras.random.SeedGenerator` or None, as for Keras's
            random initializers: an int or None repeats its values on every
            call, a `SeedGenerator` gives new values on every call. Defaults to
            None.
        second_moment: `m`, the mean over input features of `E[x_i^2]`. Set by
            `from_dataset`. Defaults to None (1: unit-second-moment inputs).

    Reference:
        - [He et al., 2015, "Delving Deep into Rectifiers"](
          https://arxiv.org/abs/1502.01852)
    """

    def __init__(
        self,
        scale: float = 2.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: Seed = None,
        *,
        second_moment: Optional[float] = None,
    ):
        self.scale, self.distribution, self.second_moment = _check_args(
            scale, mode, distribution, second_moment
        )
        self.mode = mode
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        # Keras's own VarianceScaling counts the fans and draws the values; only
        # the scale is ours. It is rebuilt per call (cheap) so attributes set
        # after construction are honoured; the seed object is shared, so a
        # SeedGenerator advances exactly as with Keras's initializers.
        scale = self.scale / (self.second_moment or 1.0)
        keras_init = keras.initializers.VarianceScaling(
            scale=scale,
            mode=self.mode,
            distribution=_KERAS_DISTRIBUTIONS[self.distribution],
            seed=self.seed,
        )
        return keras_init(shape, dtype=keras.backend.standardize_dtype(dtype))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "second_moment": self.second_moment,
        }

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        *,
        features: Key = None,
        steps: Optional[int] = None,
        verbose: Union[str, int] = "auto",
        batched: Optional[bool] = None,
        scale: float = 2.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: Seed = None,
        strategy: Optional[tf.distribute.Strategy] = None,
        sample_weight: Optional[str] = None,
    ) -> "HeScaled":
        """Measures the input's second moment in one pass; returns the initializer.

        `m = mean_i sum_r w_r x_ri^2 / sum_r w_r` over the features `i` (every
        entry after the batch axis: an image's pixels and channels, a Dense
        input's columns) and rows `r` with their sample weights `w_r` (1 when
        the data has none). The other arguments are the constructor's.

        Args:
            dataset: a `tf.data.Dataset` (batched or not), tfds dataset, NumPy
                array or iterable of batches; see `keras_biasinit.data`.
                Elements `(x, y)` or `(x, y, sample_weight)` give the features
                `x` (and the weights).
            features: the dict key or tuple index of the layer's input, or a
                path into nested elements (`(0, "pixels")` for `x["pixels"]` of
                `(x, y)`). Defaults to the 1st item of a tuple, or the whole
                element.
                For a pandas / Arrow input: a column name, or a list of
                columns (the layer's inputs, in that order).
            steps: read at most this many elements. Defaults to None (all).
            verbose: `"auto"`, 0, 1 or 2, as in `Model.fit`. Defaults to "auto".
            batched: whether each element of a `tf.data.Dataset` is a batch.
                Defaults to None (detected; see `keras_biasinit.data`).
            scale: see the class. Defaults to 2.0.
            mode: see the class. Defaults to `"fan_in"`.
            distribution: see the class. Defaults to `"truncated_normal"`.
            seed: see the class. Defaults to None.
            strategy: a `tf.distribute.Strategy`; under a multi-worker one each
                worker reads its shard and every worker gets the second moment
                of the union (see `keras_biasinit.distribute`). Defaults to
                None: the strategy in scope, if any.
            sample_weight: the key of the sample weights in dict elements, or
                the weight column of a pandas / Arrow input. Defaults to None:
                the 3rd item of `(x, y, sample_weight)` elements, if any.
        """
        recipe = cls._recipe(scale, mode, distribution, seed)
        return from_data(recipe, dataset, target=features, steps=steps,
                         verbose=verbose, batched=batched, strategy=strategy,
                         sample_weight=sample_weight)

    @classmethod
    def _recipe(cls, scale: float = 2.0, mode: str = "fan_in",
                distribution: str = "truncated_normal", seed: Seed = None) -> Recipe:
        _check_args(scale, mode, distribution, None)  # fail before a long pass

        def finish(result: SecondMomentResult) -> "HeScaled":
            if result.mean_square == 0:
                raise ValueError(
                    "Every feature value is 0, so there is no scale to calibrate "
                    "to. Check `features=` (it picks the layer's input), or use "
                    "`HeScaled()` without data."
                )
            return cls(scale, mode, distribution, seed,
                       second_moment=float(result.mean_square))

        # A sum of x^2: no mean, no centring.
        return Recipe(state=SecondMoment, finish=finish, role="features")
