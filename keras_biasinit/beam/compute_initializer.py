"""`ComputeInitializer`: an initializer of any class, computed by a Beam pipeline."""

from __future__ import annotations

import inspect
from typing import Any, Optional

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from keras_biasinit.beam._batches import ToBatches
from keras_biasinit.beam._combine import StateCombineFn
from keras_biasinit.beam._passes import PassCombineFn
from keras_biasinit.beam._passes import finish
from keras_biasinit.beam._passes import first_pass_factory
from keras_biasinit.beam._passes import start
from keras_biasinit.data.elements import Key

#: Passes (pass 1 included) unrolled for an exact statistic whose search does
#: not say how many it needs (`Search.default_max_passes`).
DEFAULT_MAX_PASSES = 8
#: Budgets under which tied, offset or outlying data may need more passes
#: (fuzzed: up to 10 at 2 MiB), so at least `DEFAULT_MAX_PASSES` are unrolled.
SMALL_BUDGET = 64 * 2**20


def default_max_passes(recipe) -> int:
    """The stages to unroll for `recipe`'s search: its own `default_max_passes`
    (the median and quantiles: 4; Huber: 5), else, or under a `memory_budget`
    of 64 MiB, `DEFAULT_MAX_PASSES`. Each stage costs the runner its start-up
    time even once the statistic is solved, so the fewest that typical data
    need, plus one to spare."""
    own = getattr(recipe.search(), "default_max_passes", DEFAULT_MAX_PASSES)
    if recipe.memory_budget < SMALL_BUDGET:
        return max(own, DEFAULT_MAX_PASSES)
    return own


def _recipe(cls, options: dict):
    """`cls._recipe(**options)`, or a ValueError naming the accepted options."""
    make = getattr(cls, "_recipe", None)
    if make is None:
        raise TypeError(
            "`cls` must be an initializer class computed from data "
            "(ClassPriorBias, MeanBias, MedianBias, QuantileBias, HuberBias or "
            f"HeScaled). Received: cls={cls!r}"
        )
    accepted = sorted(inspect.signature(make).parameters)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"{cls.__name__} on Beam takes the options {accepted} (besides "
            "`target=`/`features=`, `sample_weight=`, `batched=` and "
            "`max_passes=`). Received "
            f"unknown option(s): {unknown}"
        )
    return make(**options)


def _max_passes(max_passes: Optional[int], recipe) -> int:
    """`max_passes`, checked, or the recipe's default when None."""
    if max_passes is None:
        return default_max_passes(recipe) if recipe.search else 1
    if isinstance(max_passes, bool) or not isinstance(max_passes, int) or (
            max_passes < 1):
        raise ValueError("`max_passes` must be a positive integer. "
                         f"Received: max_passes={max_passes!r}")
    return max_passes


def _finish_state(state, finish_result):
    return finish_result(state.result())


class ComputeInitializer(beam.PTransform):
    """An initializer of class `cls` computed from a PCollection of examples.

    The output is a PCollection of exactly one initializer, equal to
    `cls.from_dataset(...)` with the same options on the same rows (to float
    precision; the median, quantile and Huber location exactly). Single-pass
    statistics (class priors, mean, second moment) are one `CombineGlobally`
    whose accumulator is the statistic's state; exact order statistics take
    pass 1 and then up to `max_passes - 1` further stages, each planned from
    the merged state of the one before (2 or 3 passes in all for typical
    data; data that fit `memory_budget` are solved after pass 1). Bad data
    (NaN targets, class ids out of range, a class never seen, an empty
    PCollection) fail the pipeline with `from_dataset`'s messages.

    Elements are the forms `from_dataset` reads: `(x, y)`, `(x, y,
    sample_weight)`, dicts (name the key with `target=`), or bare values
    (NumPy arrays or Python numbers); each element one example, or, with
    `batched=True`, a batch of them (rows on axis 0). pandas DataFrames and
    pyarrow Tables / RecordBatches (`beam.io.ReadFromParquetBatched`) are
    batches of rows without `batched=`: `target=` names a column or a list of
    columns, `sample_weight=` the weight column, and only those are read.
    Runner-agnostic: the
    same transform runs on the DirectRunner, Dataflow, Flink or Spark, with
    `keras-biasinit` installed on the workers.

    Example (a Beam pipeline writing the initializer's Keras JSON):

    ```python
    with beam.Pipeline() as p:
        (p | beam.Create(examples)
           | ComputeInitializer(kbi.MedianBias, target="price")
           | beam.Map(lambda init: json.dumps(
                 keras.saving.serialize_keras_object(init)))
           | beam.io.WriteToText("median_bias", shard_name_template=""))
    ```

    Args:
        cls: `ClassPriorBias`, `MeanBias`, `MedianBias`, `QuantileBias`,
            `HuberBias` or `HeScaled` (any class with a `_recipe`).
        target: the dict key or tuple index of the target, or a path into
            nested elements, as in `from_dataset`. Defaults to None: the 2nd
            item of a tuple, or the whole element.
        features: `HeScaled`'s `target=`: what it measures. Defaults to None:
            the 1st item of a tuple, or the whole element.
        batched: whether each element is a batch. Defaults to False
            (columnar elements are batches either way).
        sample_weight: the key of the sample weights in dict elements, or
            the weight column of columnar elements. Defaults to None: the
            3rd item of `(x, y, sample_weight)` elements, if any.
        max_passes: the most passes (Beam stages) an exact order statistic
            may take, pass 1 included; each is a stage of the pipeline, run
            even once the statistic is solved. Defaults to None: 4 for the
            median and quantiles and 5 for Huber (typical data take 2 at the
            default budget), 8 under a `memory_budget` of 64 MiB. Running out is an error
            naming this option, never an approximation.
        **options: `cls.from_dataset`'s statistic options: `num_classes`,
            `activation`, `smoothing` (ClassPriorBias); `q` (QuantileBias);
            `delta` (HuberBias); `classes` (ClassPriorBias, for a string or
            categorical label column); `memory_budget` (the exact order
            statistics;
            per worker process); `scale`, `mode`, `distribution`, `seed`
            (HeScaled).
    """

    def __init__(self, cls, *, target: Key = None, features: Key = None,
                 batched: bool = False, max_passes: Optional[int] = None,
                 sample_weight: Optional[str] = None, **options: Any) -> None:
        super().__init__()
        self.cls = cls
        self.recipe = _recipe(cls, options)
        features_role = self.recipe.role == "features"
        wrong = target if features_role else features
        if wrong is not None:
            name, right = ("target", "features") if features_role else (
                "features", "target")
            raise ValueError(
                f"{cls.__name__} reads `{right}=`, not `{name}=`. "
                f"Received: {name}={wrong!r}"
            )
        self.key: Optional[Key] = features if features_role else target
        if not isinstance(batched, bool):
            raise ValueError(f"`batched` must be True or False. Received: "
                             f"batched={batched!r}")
        self.batched = batched
        self.max_passes = _max_passes(max_passes, self.recipe)
        self.sample_weight = sample_weight

    def default_label(self) -> str:
        return f"ComputeInitializer({getattr(self.cls, '__name__', self.cls)})"

    def expand(self, pcoll):
        recipe = self.recipe
        batches = (
            pcoll
            | "GlobalWindow" >> beam.WindowInto(GlobalWindows())
            | "ToBatches" >> ToBatches(self.key, recipe.role, self.batched,
                                       self.sample_weight, recipe.classes)
        )
        if recipe.search is None:
            return (
                batches
                | "Statistic" >> beam.CombineGlobally(StateCombineFn(recipe.state))
                | "Initializer" >> beam.Map(_finish_state, recipe.finish)
            )
        new_first = first_pass_factory(recipe.search, recipe.memory_budget)
        progress = (
            batches
            | "Pass1" >> beam.CombineGlobally(StateCombineFn(new_first))
            | "Plan1" >> beam.Map(start, recipe.search)
        )
        for k in range(2, self.max_passes + 1):
            progress = batches | f"Pass{k}" >> beam.CombineGlobally(
                PassCombineFn(), beam.pvalue.AsSingleton(progress)
            ).without_defaults()
        return progress | "Initializer" >> beam.Map(finish, recipe.finish,
                                                    self.max_passes)
