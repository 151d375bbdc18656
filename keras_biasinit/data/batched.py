"""Telling a batched `tf.data.Dataset` from an unbatched one.

How batched and unbatched datasets are told apart (`batched=None`):

1. a target whose leading dimension is unknown (`None`) is batched (if it was
   in fact one variable-length example, such as a sequence of per-step
   targets, its steps are its rows, which is what a per-row statistic wants);
2. a scalar target (shape `()`) is unbatched;
3. otherwise (a fixed leading dimension, which `batch(..., drop_remainder=True)`
   and an unbatched element of that width both have, or an unknown rank) the
   pipeline's transformations are followed back from the end: the latest
   `batch`-like transformation means batched, `unbatch` or a per-example source
   (`from_tensor_slices`, `range`, a TFRecord reader) means unbatched;
   `interleave` / `flat_map` are followed into the datasets their function
   builds (this is how a `tensorflow_datasets` pipeline, TFRecord files read by
   `interleave`, is recognised), `zip` / `concatenate` when all inputs agree.
   Anything else (`from_tensors`, `from_generator`, `sample_from_datasets`,
   `group_by_window`, ...) cannot be told and raises a `ValueError` asking for
   `batched=True` or `batched=False`. It is never guessed.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from keras_biasinit._optional import tensorflow as tf

__all__ = ["is_batched_dataset"]

# Dataset classes (`_MapDataset` -> "MapDataset") and the graph op types inside
# `interleave` / `flat_map` functions ("MapDataset", "BatchDatasetV2") share
# these prefixes, so one table classifies both.
# Transformations that keep "batched or not" as it was: follow their input.
_PASS_THROUGH = (
    "Prefetch", "Map", "ParallelMap", "Filter", "Take", "Skip", "Shard",
    "Shuffle", "Repeat", "Cache", "Options", "Assert", "Ignore", "Snapshot",
    "MaxIntraOpParallelism", "PrivateThreadPool", "AutoShard", "Rebatch", "Scan",
    "ModelDataset", "ShuffleAndRepeat", "Unique", "Restructured", "Identity",
)
# Sources that yield one example per element.
_PER_EXAMPLE_SOURCES = (
    "TensorSlice", "SparseTensorSlice", "Range", "TFRecord", "TextLine",
    "FixedLengthRecord", "Counter", "RandomDataset", "CsvDataset", "CSVDataset",
    "SqlDataset",
)
# Elements come from the datasets a function returns: look inside it.
_FROM_FUNCTION = ("Interleave", "ParallelInterleave", "FlatMap")
# Elements come from several inputs: batched if all inputs agree.
_SEVERAL_INPUTS = ("Zip", "Concatenate")


def _class_name(dataset: Any) -> str:
    return type(dataset).__name__.strip("_")


def _verdict(name: str) -> Union[bool, str, None]:
    """True/False (batched or not), "follow", "function", "several" or None."""
    if "Unbatch" in name:
        return False
    if "Batch" in name and "Rebatch" not in name:
        return True
    if name.startswith(_PER_EXAMPLE_SOURCES):
        return False
    if name.startswith(_FROM_FUNCTION):
        return "function"
    if name.startswith(_SEVERAL_INPUTS):
        return "several"
    if name.startswith(_PASS_THROUGH):
        return "follow"
    return None


def _agree(answers: list) -> Optional[bool]:
    return answers[0] if answers and all(a is answers[0] for a in answers) else None


def _inspect_ops(op: Any, functions: Any, depth: int) -> Optional[bool]:
    """Follows dataset ops back from `op`, inside an `interleave`/`flat_map` fn."""
    while depth < 100:
        verdict = _verdict(op.type)
        if verdict == "follow" and op.inputs:
            op = op.inputs[0].op
        elif verdict == "function":
            inner = functions.get(op.get_attr("f").name)
            if inner is None:
                return None
            graph = inner.graph
            return _inspect_ops(graph.outputs[0].op, graph._functions, depth + 1)
        elif verdict == "several":
            return _agree([
                _inspect_ops(t.op, functions, depth + 1)
                for t in op.inputs if t.dtype == tf.variant
            ])
        else:
            return verdict if isinstance(verdict, bool) else None
        depth += 1
    return None


def _inspect_pipeline(dataset: tf.data.Dataset, depth: int = 0) -> Optional[bool]:
    """Follows the pipeline back; True/False if it can tell batched, else None.

    Reads TensorFlow's private pipeline structure (dataset classes and their
    inputs, the graphs of `interleave` / `flat_map` functions); anything it does
    not recognise, or any change in those internals, gives None ("cannot
    tell"), never a guess.
    """
    # pylint: disable=protected-access
    node = dataset
    try:
        while depth < 100:
            name = _class_name(node)
            if name == "DatasetV1Adapter":
                node = node._dataset
                continue
            verdict = _verdict(name)
            inputs = node._inputs()
            if verdict == "follow" and len(inputs) == 1:
                node = inputs[0]
            elif verdict == "function":
                graph = node._map_func.function.graph
                return _inspect_ops(graph.outputs[0].op, graph._functions, depth + 1)
            elif verdict == "several":
                return _agree([_inspect_pipeline(d, depth + 1) for d in inputs])
            else:
                return verdict if isinstance(verdict, bool) else None
            depth += 1
    except Exception:  # pylint: disable=broad-except
        return None
    return None


def is_batched_dataset(dataset: tf.data.Dataset, value_spec: Any) -> bool:
    shape = value_spec.shape
    if shape.rank == 0:
        return False
    if shape.rank is not None and shape[0] is None:
        return True
    answer = _inspect_pipeline(dataset)
    if answer is None:
        what = (
            "an unknown shape, which batches and single examples can both have"
            if shape.rank is None
            else f"the fixed shape {tuple(shape)}, which a `batch(..., "
            "drop_remainder=True)` pipeline and an unbatched dataset of examples "
            "of that shape both have"
        )
        raise ValueError(
            "Cannot tell whether this dataset yields batches or single examples: "
            f"its target has {what}, and its pipeline (ending in "
            f"`{_class_name(dataset)}`) does not show it. Pass `batched=True` if "
            "each element is a batch (rows on axis 0), or `batched=False` if each "
            "element is one example."
        )
    return answer
