"""A label pass that skips the features: pruning a `tf.data` pipeline's graph.

`project(dataset, select)` returns what `dataset.map(select)` returns, for a
`select` that only picks parts of an element (the target, the weights), but
without computing the parts nobody reads. tf.data does not do this by itself:
a selecting `map` after `batch` still decodes every image before it.

Method. A dataset is a graph of dataset ops (`Dataset._as_serialized_graph`,
rebuilt with `tf.raw_ops.DatasetFromGraph`, as the tf.data service ships
pipelines). Walking it from the output down the chain of ops that keep the
element's components apart (`batch`, `prefetch`, `take`, `shuffle`, `repeat`,
`unbatch`, `rebatch`, `padded_batch`, options), through `map` and `filter`
functions, down to the first op it does not know (a source, `interleave`,
`zip`, `cache`, `ignore_errors`, ...):

1. the components each edge of the chain must carry are found to a fixed
   point: a pass-through op carries the same components in and out, a `filter`
   also those its predicate reads, a `map` needs the inputs its needed outputs
   are computed from (their backward cone in the function's body);
2. every `map` / `filter` function is rewritten to take and return only those
   components, dropping the nodes outside the cone, and every op's
   `output_types` / `output_shapes` to the components it carries; where the
   chain's bottom op emits more than its consumer needs, a projecting `map`
   is inserted;
3. the graph is rebuilt; the dataset's Python options go with it.

The rewrite is made only where it is provably the same numbers: nothing in
a needed cone is stateful (random ops, `py_function`, variables, lookup
tables: their results could depend on what was dropped), and nothing dropped
is stateful except asserts, prints and self-seeded random ops, whose state no
other op reads. Otherwise, or for a dataset whose graph cannot be serialized,
the full pipeline runs (`dataset.map(select)`) and the returned note says why;
`ENABLED = False` turns the rewrite off.

Example:

>>> import tensorflow as tf
>>> ds = tf.data.Dataset.range(4).map(lambda i: (tf.sqrt(tf.cast(i, "float32")), i))
>>> pruned, note = project(ds.batch(2), lambda element: element[1])
>>> note
'features pruned (1 map)'
>>> [b.tolist() for b in pruned.as_numpy_iterator()]
[[0, 1], [2, 3]]
"""

from __future__ import annotations

from typing import Any, Callable, List, Tuple

import tensorflow as tf

from keras_biasinit.data import _prune_graph as graph

__all__ = ["ENABLED", "project"]

#: Set to False to run every label pass on the full pipeline.
ENABLED = True

#: In-memory tensors (`from_tensor_slices` of arrays) above this many bytes are
#: not serialized: the copy would cost more time and memory than most maps.
MAX_IN_MEMORY_BYTES = 64 * 2**20


def project(dataset: tf.data.Dataset,
            select: Callable[[Any], Any]) -> Tuple[tf.data.Dataset, str]:
    """`dataset.map(select)` without computing what `select` drops.

    Args:
        dataset: a `tf.data.Dataset`.
        select: picks parts of an element (tuple items, dict values); it must
            not compute anything.

    Returns:
        `(projected, note)`: the dataset of `select(element)`, and a note
        saying which pipeline runs: "features pruned (N maps)" or
        "full pipeline (reason)".
    """
    spec = dataset.element_spec
    leaves = tf.nest.flatten(spec)
    picked = select(tf.nest.pack_sequence_as(spec, list(range(len(leaves)))))
    needed = sorted(set(tf.nest.flatten(picked)))
    reason = _cheap_refusal(dataset, leaves, needed) if ENABLED else (
        "pruning disabled: keras_biasinit.data.prune.ENABLED is False")
    if reason is None:
        try:
            pruned = graph.prune(dataset, needed, len(leaves))
        except graph.Unsafe as error:
            reason = str(error)
    if reason is not None:
        full = dataset.map(_do_not_convert(lambda *e: select(_unwrap(e))))
        return full, f"full pipeline ({reason})"
    variant, carried, maps = pruned
    projected = _restructure(variant, leaves, carried, picked)
    return projected.with_options(dataset.options()), (
        f"features pruned ({maps} map{'s' if maps != 1 else ''})")


def _cheap_refusal(dataset, leaves, needed) -> Any:
    """A reason not to serialize the graph at all, or None."""
    if len(needed) == len(leaves):
        return "the pass reads every component"
    if any(len(leaf._flat_tensor_specs) != 1 for leaf in leaves):  # noqa: SLF001
        return "an element component of several tensors"
    if not _has_map(dataset):
        return "no map computes what the pass skips"
    size = _in_memory_bytes(dataset)
    if size > MAX_IN_MEMORY_BYTES:
        return (f"the pipeline holds {size / 2**20:.0f} MiB of in-memory tensors, "
                "more than `keras_biasinit.data.prune.MAX_IN_MEMORY_BYTES`")
    return None


def _inputs(dataset: tf.data.Dataset) -> List[tf.data.Dataset]:
    try:
        return list(dataset._inputs())  # noqa: SLF001
    except NotImplementedError:  # a dataset class of its own
        return []


def _has_map(dataset: tf.data.Dataset) -> bool:
    """Whether the dataset's linear chain of inputs holds a function (`map`).

    Checked on the Python objects, before the graph is serialized.
    """
    while not hasattr(dataset, "_map_func"):
        inputs = _inputs(dataset)
        if len(inputs) != 1:
            return False
        dataset = inputs[0]
    return True


def _in_memory_bytes(dataset: tf.data.Dataset) -> int:
    """Bytes of the tensors the pipeline's sources hold (serializing embeds
    them whole: `from_tensor_slices` of a large array)."""
    tensors = getattr(dataset, "_tensors", None) or []
    size = sum(t.shape.num_elements() * t.dtype.size for t in tensors
               if t.shape.is_fully_defined() and t.dtype != tf.string)
    return size + sum(_in_memory_bytes(d) for d in _inputs(dataset))


def _restructure(variant: tf.Tensor, leaves: List[Any], carried: List[int],
                 picked: Any) -> tf.data.Dataset:
    """The rebuilt dataset (flat components `carried`) as `picked`'s structure."""
    order = tf.nest.flatten(picked)
    if order == carried:  # tf.data gives the structure itself, no map needed
        structure = tf.nest.pack_sequence_as(picked, [leaves[i] for i in order])
        return tf.data.experimental.from_variant(variant, structure)
    flat = tf.data.experimental.from_variant(
        variant, tuple(leaves[i] for i in carried))
    position = {component: i for i, component in enumerate(carried)}

    def rebuild(*components):
        return tf.nest.pack_sequence_as(
            picked, [components[position[i]] for i in order])

    return flat.map(_do_not_convert(rebuild))


def _unwrap(args: tuple) -> Any:
    # `Dataset.map` splats tuple elements into positional arguments.
    return args[0] if len(args) == 1 else args


def _do_not_convert(function: Callable) -> Callable:
    """Selecting by the element's structure: no AutoGraph (~2 ms a pass)."""
    return tf.autograph.experimental.do_not_convert(function)
