"""Each batch reduced inside the tf.data graph; only its small state reaches NumPy.

For wide rows in small batches (a 1000-column target in `batch(256)`), a
tf.data pass spends most of its Python-side time moving each batch to NumPy
and reducing it there. Here the reduction runs in the pipeline instead (as
tf.Transform's `reduce_batch_*` analyzers do): every batch becomes one float64
vector holding exactly the array form (`to_arrays`) of the state that batch
alone gives, and NumPy only merges those (`from_arrays`, then `merge`), in
batch order. The numbers are those of the NumPy path to float rounding:

- `Moments`: rows, weight, mean and centred `m2` of the batch (the batch of
  `Moments.update`; `merge` combines batches as Chan et al.);
- `SecondMoment`: rows, weight, features and the (weighted) sum of squares;
- `ClassCounts` label vectors (sigmoid targets, or vectors of 2+ columns):
  rows, weight and the (weighted) column sums.

Everything is cast to float64 first. The checks NumPy makes on each batch
are made on what the graph sends along: the weights' number and min (with
their sum: NaN/inf), the values' min and max (the [0, 1] range of label
vectors). NaN/inf values show as NaN sums (an inf makes the centred `m2`
NaN through `inf - inf`; the largest |value| is sent along for
`SecondMoment`),
finite values whose sums overflow as inf ones. The errors are raised by the
NumPy checks themselves (`keras_biasinit.data.elements._as_weights`,
`keras_biasinit.stats`) on a stand-in with the same defect, so they read as
on the NumPy path; only a NaN/inf value's error names the batch (or the
examples) instead of the row, which the graph does not send.

Where it is used: nowhere by default (`ENABLED` is False). Measured on the
2-core CPU machine of `benchmarks/RESULTS.md` (2026-12-01, quiet), with a
1000-column target in `batch(256)`, 50k rows, bare iteration 0.040 s, the
graph path took 0.095 s against the NumPy path's 0.061 s (`MeanBias`) and
0.082 s against 0.061 s (sigmoid `ClassPriorBias`); unbatched, 0.129 s vs
0.089 s. TensorFlow's cast and reductions of a 256 x 1000 float32 batch cost
~200 us of CPU against NumPy's ~170 us, and a pass pays ~15 ms more to trace
and instantiate the function (and tf.data rewrites the pipeline's graph for
the new stage, which the NumPy path now avoids: 0.048 s there since).
Where more cores than the pipeline uses are idle, the parallel map can
spread the reductions; set `ENABLED = True` where that is measured to pay.
When enabled, `reduction_for(state)` and `GraphReduction.applies` pick a pass over a
`tf.data.Dataset` whose rows have a fully known shape of at least
`WIDE_ROW_VALUES` values and whose batches the pass would not merge anyway
(`read_batches`'s `merge_batches`): targets of one row axis, weights one per
row. Everything else (NumPy input, narrow rows, class ids, softmax label
vectors, per-step targets) is read into NumPy.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator, Optional, Tuple

import numpy as np
import tensorflow as tf

from keras_biasinit.data.elements import _as_weights
from keras_biasinit.stats import ClassCounts
from keras_biasinit.stats import Moments
from keras_biasinit.stats import SecondMoment
from keras_biasinit.stats._checks import check_finite_sum
from keras_biasinit.stats.state import Arrays

__all__ = ["ENABLED", "GraphReduction", "reduction_for", "WIDE_ROW_VALUES"]

#: Whether `reduction_for` offers graph reductions (see the module docstring).
ENABLED = False

#: Rows of at least this many values are reduced in the graph, when enabled.
WIDE_ROW_VALUES = 128

# The header every packed batch starts with (float64 each). `w_size` is -1
# without weights.
_HEAD = ("rows", "weight", "w_size", "w_min", "v_min", "v_max")


@dataclasses.dataclass(frozen=True)
class Head:
    """What the graph measured about one batch, besides its statistic."""

    rows: int
    weight: float
    w_size: int
    w_min: float
    v_min: float
    v_max: float


@dataclasses.dataclass(frozen=True)
class GraphReduction:
    """How one statistic's batch state is computed in the graph.

    Attributes:
        kind: `"moments"`, `"second_moment"` or `"vectors"`.
        num_classes: for `"vectors"`, the width the state requires, if any.
    """

    kind: str
    num_classes: Optional[int] = None

    def applies(self, value_spec: tf.TensorSpec, weight_spec: Any,
                batched: bool) -> bool:
        """Whether batches of `value_spec` are wide and simple enough."""
        row = value_spec.shape[1:] if batched else value_spec.shape
        if row.rank is None or not row.is_fully_defined():
            return False
        if self.kind != "second_moment" and row.rank != 1:
            return False  # per-step targets fold into rows: NumPy path
        if weight_spec is not None:
            w_row = weight_spec.shape[1:] if batched else weight_spec.shape
            if w_row.rank is None or w_row.rank > 1 or (
                    w_row.rank == 1 and w_row[0] != 1):
                return False
        return max(1, row.num_elements()) >= WIDE_ROW_VALUES

    def graph(self, values: tf.Tensor, weights: Optional[tf.Tensor]) -> tf.Tensor:
        """The packed float64 vector of one batch (inside the tf.data graph):
        the header `_HEAD`, then the statistic's sums."""
        rows = tf.shape(values)[0]
        y = tf.cast(tf.reshape(values, [rows, -1]), tf.float64)
        n = tf.cast(rows, tf.float64)
        w, w_size, w_min = _graph_weights(weights, rows)
        weight = n if w is None else tf.reduce_sum(w)
        if self.kind == "moments":
            body = _graph_moments(y, w, n if w is None else weight)
        elif self.kind == "second_moment":
            body = _graph_second_moment(y, w)
        else:
            body = _column_sums(y, w)
        extremes = [tf.constant(0.0, tf.float64)] * 2
        if self.kind == "vectors" and values.dtype != tf.bool:
            extremes = [tf.cast(tf.reduce_min(values), tf.float64),
                        tf.cast(tf.reduce_max(values), tf.float64)]
        return tf.concat([tf.stack([n, weight, w_size, w_min] + extremes), body], 0)

    def arrays(self, packed: np.ndarray, value_shape: Tuple[int, ...], where: str
               ) -> Optional[Arrays]:
        """The checked array form of one packed batch (None for 0 rows);
        `where` names the batch in errors."""
        head = Head(*(int(v) if k in ("rows", "w_size") else float(v)
                      for k, v in zip(_HEAD, packed[:len(_HEAD)])))
        _check_weights(head, (head.rows,) + tuple(value_shape))
        if head.rows == 0:
            return None
        body = packed[len(_HEAD):]
        if self.kind == "vectors":
            return self._vector_arrays(head, body, where)
        if self.kind == "moments":
            return _moment_arrays(head, body, where)
        total, features, largest = body
        if np.isnan(total) or not np.isfinite(largest):  # inf**2 is inf too
            raise _nonfinite_error(where)
        if not np.isfinite(total):
            check_finite_sum(np.array([total]), np.zeros(0))  # too large
        return {"rows": _scalar(head.rows), "weight": _scalar(head.weight),
                "features": _scalar(int(features)), "total": _scalar(total)}

    def _vector_arrays(self, head: Head, body: np.ndarray, where: str) -> Arrays:
        if np.isnan(body).any() or not np.isfinite([head.v_min, head.v_max]).all():
            raise _nonfinite_error(where)
        if not (head.v_min >= 0 and head.v_max <= 1):  # NumPy's range error
            ClassCounts().update_vectors(np.array([[head.v_min, head.v_max]]))
        width = body.shape[0]
        if self.num_classes is not None and width != self.num_classes:
            ClassCounts(self.num_classes).update_vectors(np.zeros((1, width)))
        return {"counts": body.copy(), "rows": _scalar(head.rows),
                "weight": _scalar(head.weight),
                "kind": _scalar(2)}  # ClassCounts' code for "vectors"


def reduction_for(state: Any) -> Optional[GraphReduction]:
    """The graph reduction of `state` (a fresh state), or None if it has none
    (or `ENABLED` is False)."""
    if not ENABLED:
        return None
    if type(state) is Moments:  # noqa: E721 - not subclasses with other updates
        return GraphReduction("moments")
    if type(state) is SecondMoment:  # noqa: E721
        return GraphReduction("second_moment")
    if isinstance(state, ClassCounts) and getattr(state, "ignore_class", None) is None:
        activation = getattr(state, "activation", None)
        if activation == "sigmoid":
            return GraphReduction("vectors", state.num_classes)
        if activation is None and type(state) is ClassCounts:  # noqa: E721
            return _WideVectorsOnly("vectors", state.num_classes)
    return None


class _WideVectorsOnly(GraphReduction):
    """A plain `ClassCounts` reads 1-column targets as class ids: vectors only."""

    def applies(self, value_spec, weight_spec, batched) -> bool:
        row = value_spec.shape[1:] if batched else value_spec.shape
        return (row.rank == 1 and row[0] is not None and row[0] >= 2
                and super().applies(value_spec, weight_spec, batched))


def reduced_pass(ds: tf.data.Dataset, select: Callable, reduction: GraphReduction,
                 row_shape: Tuple[int, ...], batched: bool, batch_rows: int):
    """`make_iterator` for `keras_biasinit.data.reading.Batches` over `ds`
    reduced in the graph: it yields `(arrays, None, units)` per batch, where
    `arrays` is the batch's state in array form (None for an empty batch).

    `select(element)` picks `(values, weights or None)` out of an element of
    `ds`; an unbatched `ds` is batched to `batch_rows` rows first.
    """
    if not batched:
        @tf.autograph.experimental.do_not_convert
        def pair(*element):
            values, weights = select(element)
            return values if weights is None else (values, weights)

        ds = ds.map(pair).batch(batch_rows)
        select = _values_and_weights

    @tf.autograph.experimental.do_not_convert  # no Python control flow on tensors
    def reduce_batch(*element):
        return reduction.graph(*select(element))

    packed = ds.map(reduce_batch, num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True).prefetch(tf.data.AUTOTUNE)

    def make_iterator() -> Iterator[tuple]:
        start = 0
        for index, vector in enumerate(packed.as_numpy_iterator()):
            rows = int(vector[0])
            where = (f"batch {index} of the dataset (counting from 0)" if batched
                     else f"examples {start} to {start + rows - 1} of the dataset")
            yield reduction.arrays(vector, row_shape, where), None, (
                1 if batched else rows)
            start += rows

    return make_iterator


def _values_and_weights(element: tuple) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
    return (element[0], element[1]) if len(element) > 1 else (element[0], None)


def _graph_weights(weights, rows):
    """(one float64 weight per row or None, their given number, their min).
    Weights of the wrong number are cut or padded (NumPy raises for them)."""
    if weights is None:
        return None, tf.constant(-1.0, tf.float64), tf.constant(0.0, tf.float64)
    w = tf.cast(tf.reshape(weights, [-1]), tf.float64)
    size = tf.size(w)
    w_min = tf.reduce_min(w)
    w = tf.pad(w[:rows], [[0, tf.maximum(rows - size, 0)]])
    return w, tf.cast(size, tf.float64), w_min


def _column_sums(y: tf.Tensor, w: Optional[tf.Tensor]) -> tf.Tensor:
    if w is None:
        return tf.reduce_sum(y, 0)
    return tf.linalg.matvec(y, w, transpose_a=True)


def _graph_moments(y: tf.Tensor, w: Optional[tf.Tensor], weight: tf.Tensor):
    """`Moments.update`'s batch: [column sums, centred m2] (weight 0: m2 = 0).
    NaN/inf values make both NaN (inf - inf); finite values whose sums
    overflow make them inf, never NaN."""
    total = _column_sums(y, w)
    positive = weight > 0
    mean = tf.where(positive, total / tf.where(positive, weight, 1.0), 0.0)
    m2 = _column_sums(tf.math.squared_difference(y, mean), w)
    if w is not None:
        m2 = tf.where(positive, m2, 0.0)
    return tf.concat([total, m2], 0)


def _graph_second_moment(y: tf.Tensor, w: Optional[tf.Tensor]):
    """`SecondMoment.update`'s batch: [sum of (weighted) squares, features,
    largest |value|] (which tells inf values from squares that overflow)."""
    squares = tf.square(y)
    total = tf.reduce_sum(squares) if w is None else tf.reduce_sum(
        tf.linalg.matvec(squares, w, transpose_a=True))
    features = tf.cast(tf.shape(y)[1], tf.float64)
    return tf.stack([total, features, tf.reduce_max(tf.abs(y))])


def _moment_arrays(head: Head, body: np.ndarray, where: str) -> Arrays:
    d = body.shape[0] // 2
    total, m2 = body[:d], body[d:]
    if np.isnan(body).any():
        raise _nonfinite_error(where)
    if not np.isfinite(body).all():
        check_finite_sum(np.array([np.inf]), np.zeros(0))  # too large
    positive = head.weight > 0
    return {"rows": _scalar(head.rows), "weight": _scalar(head.weight),
            "mean": total / head.weight if positive else np.zeros(d),
            "m2": m2.copy() if positive else np.zeros(d)}


def _check_weights(head: Head, shape: Tuple[int, ...]) -> None:
    """The weight errors of `keras_biasinit.data.elements._as_weights`, raised
    by it on a stand-in with the same defect."""
    if head.w_size < 0:
        return
    if head.w_size != head.rows:
        _as_weights(np.zeros(head.w_size), shape)
    if not np.isfinite(head.weight) or head.w_min < 0:
        stand_in = np.zeros(head.rows)
        stand_in[0] = np.nan if not np.isfinite(head.weight) else -1.0
        _as_weights(stand_in, shape)


def _nonfinite_error(where: str) -> ValueError:
    """`keras_biasinit.stats._checks.check_finite`'s error, for a batch whose
    sums are NaN (the graph does not say which row)."""
    return ValueError(
        f"The data (targets, or features for HeScaled) contain NaN or inf "
        f"value(s) in {where}. Remove or impute them in the pipeline (e.g. "
        "`dataset.filter(...)` or `np.nan_to_num`) before computing an "
        "initializer from them."
    )


def _scalar(value) -> np.ndarray:
    return np.asarray([value])
