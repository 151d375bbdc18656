"""Reading data: any supported input -> NumPy batches of values and weights.

This is the only module that knows about `tf.data`, `tensorflow_datasets`,
NumPy arrays and Python iterables. Everything downstream (`keras_biasinit.stats`)
sees plain NumPy arrays: `(values, weights)` pairs, one per batch, where
`values` has the batch on axis 0 and `weights` is `None` or a float64 vector of
per-row sample weights.

What each input means:

- `tf.data.Dataset` (including `tfds.load(...)` results): streamed. Elements
  `(x, y)` and `(x, y, sample_weight)` give the target `y` (and the weights), a
  dict element needs `target=` (its key), a bare tensor is the value itself.
  The sample weights of an `(x, y, sample_weight)` element weight its rows
  whichever of `x` or `y` is read (`target=0` or `1`); reading the weights
  themselves (`target=2`) is unweighted. Dict elements carry no weights.
  The part of the element that is needed is selected inside the pipeline, so
  features that are not needed are never copied to NumPy. Unbatched datasets are
  batched for the pass (`PASS_BATCH_SIZE` rows), never iterated per element.
- A NumPy array, an eager tensor, or anything else with `__array__` (e.g. a
  pandas Series): the whole array is one batch; nothing goes through
  `tf.data`. `steps=` counts its rows.
- A tuple or dict (of arrays or lists): one element, e.g. `(x, y)`,
  `(x, y, sample_weight)` or `{"label": y, ...}`. A tuple is never read as a
  sequence of batches; only the part that is read must be an array.
- A Python list of numbers, or of lists of numbers: rows of data, read as
  `np.asarray(data)` (so `[[1, 2], [3, 4]]` is two rows of two outputs).
- Any other iterable (a list of arrays, a generator): an iterable of batches,
  each element structured like a dataset element (arrays, not Python lists,
  with the rows on axis 0). A one-shot iterator can be read only once.

Rows and columns: values of shape `(n,)` are `n` rows of one column, `(n, d)`
are `n` rows of `d` columns (one output each). Targets of more dimensions, such
as per-time-step targets `(n, T, d)` or masks `(n, H, W, 1)`, are read as
`(n * T, d)` rows, each carrying its example's weight (or its own, for temporal
weights of shape `(n, T)`); features are left as they are: Keras losses reduce only
the last axis and weight every other element by the sample weight, and a layer's
bias is per last-axis unit.

With `class_ids=True` (softmax targets), integer targets of any shape are class
ids instead: every id is a row of its own, as `SparseCategoricalCrossentropy`
reads them (see `keras_biasinit.data.elements`). Targets and features must be
numeric (bool, integer, float); a `tf.data` element spec is checked before the
pass (`keras_biasinit.data.datasets`).

How batched and unbatched datasets are told apart: see
`keras_biasinit.data.batched`. What the progress bar counts, and what
`verbose="auto"` means: see `keras_biasinit.data.progress`.
"""

from keras_biasinit.data.datasets import PASS_BATCH_BYTES
from keras_biasinit.data.datasets import PASS_BATCH_SIZE
from keras_biasinit.data.reading import Batches
from keras_biasinit.data.reading import read_batches

__all__ = ["Batches", "read_batches", "PASS_BATCH_SIZE", "PASS_BATCH_BYTES"]
