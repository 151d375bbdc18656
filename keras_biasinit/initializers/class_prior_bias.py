"""ClassPriorBias: the bias that makes a classifier predict the class priors."""

from __future__ import annotations

import collections.abc
from typing import Any, Optional, Sequence, Union

import keras
import numpy as np

from keras_biasinit._optional import tensorflow as tf  # annotations only
from keras_biasinit.initializers._base import BiasInitializer
from keras_biasinit.initializers._base import as_vector
from keras_biasinit.initializers._base import check_expected_loss
from keras_biasinit.initializers._from_data import Key
from keras_biasinit.initializers._from_data import Recipe
from keras_biasinit.initializers._from_data import from_data
from keras_biasinit.stats import ClassCounts
from keras_biasinit.stats import CountsResult

_ACTIVATIONS = ("softmax", "sigmoid")


def _check_distributions(labels: np.ndarray) -> None:
    """Softmax label vectors are distributions: each row sums to 1."""
    sums = labels.sum(axis=1, dtype=np.float64)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-3)
    if bad.size:
        row = labels[bad[0]]
        whole = bool(np.all(np.isfinite(row)) and np.all(row == np.round(row)))
        hint = (
            " Its values are whole numbers, so these may be per-step class ids "
            "(SparseCategoricalCrossentropy): float labels of shape (n, k) are "
            "ambiguous and read as label vectors; pass integer ids (e.g. "
            "`tf.cast(y, tf.int32)`), which are read as ids whatever their shape."
            if whole else ""
        )
        raise ValueError(
            f"Under softmax, label vectors must each sum to 1 (one-hot or soft "
            f"labels); row {bad[0]} sums to {sums[bad[0]]:g}.{hint} Several "
            'independent labels per example need activation="sigmoid".'
        )


def _check_smoothing(smoothing: Any) -> float:
    try:
        value = float(smoothing)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(smoothing, (str, bytes)) or not np.isfinite(value) or value < 0:
        raise ValueError(
            "`smoothing` must be a finite, non-negative pseudo-count. "
            f"Received: smoothing={smoothing!r}"
        )
    return value


def _check_ignore_class(ignore_class: Any, activation: str) -> None:
    if ignore_class is not None and (
        activation != "softmax" or isinstance(ignore_class, bool)
        or not isinstance(ignore_class, (int, np.integer))
    ):
        raise ValueError(
            "`ignore_class` is an integer class id to leave out (e.g. the "
            "padding id), for softmax targets, as in Keras's "
            "`SparseCategoricalCrossentropy(ignore_class=...)`. Received: "
            f"ignore_class={ignore_class!r} with activation={activation!r}"
        )


def _check_classes(classes: Any, num_classes: Optional[int], activation: str):
    """`(classes as a tuple or None, num_classes)`, checked."""
    if classes is None:
        return None, num_classes
    if isinstance(classes, (str, bytes)) or not isinstance(
            classes, (collections.abc.Sequence, np.ndarray)):
        classes = [classes]  # reported below
    labels = tuple(classes.tolist() if isinstance(classes, np.ndarray) else classes)
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ValueError(
            "`classes` is the list of distinct class labels in id order, e.g. "
            f"`classes=['cat', 'dog']`. Received: classes={classes!r}"
        )
    if activation == "sigmoid" and len(labels) != 2:
        raise ValueError(
            "Under sigmoid, `classes` is `[negative, positive]` (2 labels). "
            f"Received: classes={list(labels)!r}"
        )
    if activation == "softmax" and num_classes not in (None, len(labels)):
        raise ValueError(
            f"`classes` has {len(labels)} labels but num_classes={num_classes}; "
            "leave `num_classes=None` (it is the length of `classes`)."
        )
    return labels, (len(labels) if activation == "softmax" else num_classes)


class _LabelCounts(ClassCounts):
    """`ClassCounts` that reads labels as the output's loss does: under softmax
    class ids (`(n,)` / `(n, 1)` after the reading room folded them) or
    distributions `(n, k)`; under sigmoid per-output values in [0, 1]."""

    def __init__(self, num_classes: Optional[int], activation: str,
                 ignore_class: Optional[int] = None) -> None:
        super().__init__(num_classes)
        self.activation = activation
        self.ignore_class = ignore_class

    def update(self, values, weights=None) -> "_LabelCounts":
        labels = np.asarray(values)
        is_ids = labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] == 1)
        if self.activation == "softmax" and is_ids:
            if self.ignore_class is not None:
                labels = labels.reshape(-1)
                keep = labels != self.ignore_class
                labels = labels[keep]
                weights = None if weights is None else np.asarray(weights)[keep]
            return self.update_ids(labels, weights)
        if self.ignore_class is not None:
            raise ValueError(
                "`ignore_class` applies to class ids, but the targets are label "
                f"vectors of shape {labels.shape}. Leave it None, or mask the "
                "vectors with sample weights."
            )
        if self.activation == "softmax":
            _check_distributions(labels)
        return self.update_vectors(labels, weights)


@keras.saving.register_keras_serializable(package="keras_biasinit")
class ClassPriorBias(BiasInitializer):
    """Initializer that sets a classifier's output bias to the class priors.

    For a `softmax` output the bias is `b_i = log F_i`, so `softmax(b) = F`, the
    class frequencies: the constant prediction that minimises categorical
    cross-entropy, which then starts at the entropy `H(F) = -sum_i F_i log F_i`
    (`log M` for `M` balanced classes) instead of the loss of a uniform guess.

    For a `sigmoid` output (binary or multi-label) each output gets the prior
    logit `b_j = log(p_j / (1 - p_j))`, so `sigmoid(b_j) = p_j`, its positive
    rate: the constant that minimises binary cross-entropy, which then starts at
    the mean binary entropy of the `p_j`.

    Examples:

    >>> init = ClassPriorBias([0.9, 0.09, 0.01])
    >>> bias = init(shape=(3,))

    From data, inside a layer:

    >>> labels = np.array([0] * 90 + [1] * 9 + [2])
    >>> init = ClassPriorBias.from_dataset(labels, verbose=0)
    >>> round(init.expected_loss, 4)  # the entropy of the class frequencies
    0.3576
    >>> layer = keras.layers.Dense(3, activation="softmax", bias_initializer=init)

    Args:
        priors: class frequencies (softmax; normalised here, so counts work too)
            or per-output positive rates in (0, 1) (sigmoid; not normalised).
            Every value must be positive: a zero prior has no finite bias.
        activation: `"softmax"` or `"sigmoid"`, the output layer's activation.
            Defaults to `"softmax"`.
        expected_loss: the loss the model shows at step 0 with this bias, if
            known. Set by `from_dataset`. Defaults to None.

    Reference:
        - [Karpathy, 2019, "A Recipe for Training Neural Networks"](
          https://karpathy.github.io/2019/04/25/recipe/) ("init well").
        - [Lin et al., 2017, "Focal Loss for Dense Object Detection"](
          https://arxiv.org/abs/1708.02002) (the prior bias, section 4.1).
    """

    def __init__(
        self,
        priors: Union[Sequence[float], np.ndarray],
        activation: str = "softmax",
        *,
        expected_loss: Optional[float] = None,
    ):
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f'`activation` must be "softmax" or "sigmoid". '
                f"Received: activation={activation!r}"
            )
        priors = as_vector(priors, "priors")
        if (priors <= 0).any():
            raise ValueError(
                "Every prior must be positive: a class with prior 0 would need an "
                "infinite bias. Use `from_dataset(..., smoothing=1.0)` or add a "
                f"pseudo-count. Received: priors={priors.tolist()}"
            )
        if activation == "softmax":
            if priors.shape[0] < 2:
                raise ValueError(
                    "A softmax output needs at least 2 class priors; for one "
                    'binary output use activation="sigmoid". '
                    f"Received: priors={priors.tolist()}"
                )
            # log(p / sum p) computed from the priors as given, which are kept
            # unchanged for the config: re-normalising already normalised
            # numbers drifts by an ulp, and the config would not round-trip.
            self._bias = np.log(priors) - np.log(priors.sum())
        else:
            if (priors >= 1).any():
                raise ValueError(
                    "Sigmoid priors are per-output positive rates and must lie in "
                    f"(0, 1). Received: priors={priors.tolist()}"
                )
            self._bias = np.log(priors) - np.log1p(-priors)
        self._priors = priors
        self.activation = activation
        self._expected_loss = check_expected_loss(expected_loss)

    @property
    def priors(self) -> np.ndarray:
        """The class frequencies (softmax, summing to 1) or positive rates."""
        if self.activation == "softmax":
            return self._priors / self._priors.sum()
        return self._priors.copy()

    def get_config(self) -> dict:
        return {
            "priors": [float(p) for p in self._priors],
            "activation": self.activation,
            "expected_loss": self._expected_loss,
        }

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        *,
        target: Key = None,
        steps: Optional[int] = None,
        verbose: Union[str, int] = "auto",
        num_classes: Optional[int] = None,
        activation: str = "softmax",
        smoothing: float = 0.0,
        batched: Optional[bool] = None,
        ignore_class: Optional[int] = None,
        strategy: Optional[tf.distribute.Strategy] = None,
        sample_weight: Optional[str] = None,
        classes: Optional[Sequence] = None,
    ) -> "ClassPriorBias":
        """Counts the classes in one pass over `dataset`.

        Softmax targets are class ids (`SparseCategoricalCrossentropy`) or
        label vectors `(n, num_classes)`, one-hot or soft
        (`CategoricalCrossentropy`). Integer targets are ids whatever their
        shape: `(n,)`, `(n, 1)`, per-step `(n, T)` / `(n, T, 1)`, per-pixel
        `(n, H, W)`; every id is counted, weighted by its example's weight (or
        its own, for weights of the ids' shape), as Keras weights the loss.
        Float targets of shape `(n,)` / `(n, 1)` are ids too, wider float
        targets are label vectors (the last axis). Integer `(n, k)` labels
        whose rows are all one-hot are ambiguous and refused: cast one-hot
        labels to float. Sigmoid targets are values in [0, 1] of shape `(n,)` /
        `(n, 1)` (binary) or `(n, k)` (multi-label). Sample weights in
        `(x, y, sample_weight)` elements weight the counts.

        Args:
            dataset: a `tf.data.Dataset` (batched or not), tfds dataset, NumPy
                array or iterable of batches; see `keras_biasinit.data`.
            target: the dict key or tuple index of the labels, or a path into
                nested elements (`(1, "out")` for `y["out"]` of `(x, y)`).
                Defaults to the 2nd item of a tuple, or the whole element.
                For a pandas / Arrow input: a column name, or a list of
                columns (one bias each, in that order).
            steps: read at most this many elements. Defaults to None (all).
            verbose: `"auto"`, 0, 1 or 2, as in `Model.fit`. Defaults to "auto".
            num_classes: number of classes (softmax) or outputs (sigmoid).
                Defaults to None: inferred from the largest id / label width.
                Pass it whenever a class might be missing from the data.
            activation: `"softmax"` or `"sigmoid"`. Defaults to "softmax".
            smoothing: a pseudo-count added to every class (softmax) or to the
                positives and the negatives of every output (sigmoid), which
                allows classes that never occur. Defaults to 0.
            batched: whether each element of a `tf.data.Dataset` is a batch.
                Defaults to None (detected; see `keras_biasinit.data`).
            ignore_class: a class id that is not counted (softmax ids only),
                such as the padding id of a `padded_batch` pipeline: pass the
                same value as `SparseCategoricalCrossentropy(ignore_class=...)`,
                which leaves those ids out of the loss. Defaults to None: every
                id counts, padding included, as Keras counts it without a mask.
            strategy: a `tf.distribute.Strategy`; under a multi-worker one each
                worker reads its shard and every worker gets the priors of the
                union (see `keras_biasinit.distribute`). Defaults to None: the
                strategy in scope, if any.
            sample_weight: the key of the sample weights in dict elements, or
                the weight column of a pandas / Arrow input. Defaults to None:
                the 3rd item of `(x, y, sample_weight)` elements, if any.

        Returns:
            A `ClassPriorBias` whose `expected_loss` is the loss at step 0.
        """
        recipe = cls._recipe(num_classes, activation, smoothing, ignore_class,
                             classes)
        return from_data(recipe, dataset, target=target, steps=steps,
                         verbose=verbose, batched=batched, strategy=strategy,
                         sample_weight=sample_weight)

    @classmethod
    def _recipe(cls, num_classes: Optional[int] = None, activation: str = "softmax",
                smoothing: float = 0.0, ignore_class: Optional[int] = None,
                classes: Optional[Sequence] = None) -> Recipe:
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f'`activation` must be "softmax" or "sigmoid". '
                f"Received: activation={activation!r}"
            )
        smoothing = _check_smoothing(smoothing)
        _check_ignore_class(ignore_class, activation)
        classes, num_classes = _check_classes(classes, num_classes, activation)
        ClassCounts(num_classes)  # checks `num_classes` before a long pass

        def finish(result: CountsResult) -> "ClassPriorBias":
            if activation == "softmax":
                return cls._softmax(result, smoothing)
            return cls._sigmoid(result, smoothing)

        return Recipe(
            state=lambda: _LabelCounts(num_classes, activation, ignore_class),
            finish=finish, class_ids=activation == "softmax", classes=classes,
        )

    @classmethod
    def _softmax(cls, counts: CountsResult, smoothing: float) -> "ClassPriorBias":
        c = counts.counts
        if c.shape[0] < 2:
            raise ValueError(
                f"Found labels of only {c.shape[0]} class; a softmax needs at least "
                "2. Pass `num_classes=`, or use activation=\"sigmoid\" for one "
                "binary output."
            )
        smoothed = c + smoothing
        missing = np.flatnonzero(smoothed <= 0)
        if missing.size:
            raise ValueError(
                f"Class(es) {missing[:10].tolist()} have zero frequency in the data, "
                "so their bias would be -inf. Pass `smoothing=` (e.g. 1.0, a "
                "pseudo-count per class), or remove those classes."
            )
        priors = smoothed / smoothed.sum()
        return cls(priors, "softmax", expected_loss=counts.cross_entropy(priors))

    @classmethod
    def _sigmoid(cls, counts: CountsResult, smoothing: float) -> "ClassPriorBias":
        positives, total = counts.counts, counts.weight
        rates = (positives + smoothing) / (total + 2 * smoothing)
        never, always = np.flatnonzero(rates <= 0), np.flatnonzero(rates >= 1)
        if never.size or always.size:
            found = " and ".join(
                f"output(s) {where[:10].tolist()} are always {value}"
                for where, value in ((never, 0), (always, 1)) if where.size
            )
            raise ValueError(
                f"In the data, {found}, so their bias would be infinite. Pass "
                "`smoothing=` (e.g. 1.0, a pseudo-count of positives and "
                "negatives), or remove those outputs."
            )
        return cls(rates, "sigmoid", expected_loss=counts.binary_cross_entropy(rates))
