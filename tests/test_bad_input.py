"""The bad-input catalogue: every way to hand over bad data, and what it gets.

One table, `CASES`: each row is an input (built for each input kind the README
lists), the function it is given to, the exception type it must raise and the
words its message must contain. Every exception must be raised by
keras_biasinit's own code (its last traceback frame is in the package), never a
raw TensorFlow or NumPy one. An exception from the user's own pipeline (a
`map` function, a generator, a `PyDataset`) passes through unchanged: see the
tests at the end.
"""

import re

import keras
import numpy as np
import pytest
from tests._tf import tf

import keras_biasinit as kbi
from keras_biasinit.data import read_batches

pytestmark = pytest.mark.keras

Dataset = tf.data.Dataset
CPB = kbi.ClassPriorBias.from_dataset
MEAN = kbi.MeanBias.from_dataset
MEDIAN = kbi.MedianBias.from_dataset
HUBER = kbi.HuberBias.from_dataset
HE = kbi.HeScaled.from_dataset


class _Batches(keras.utils.PyDataset):
    """A PyDataset over a list of batches."""

    def __init__(self, batches):
        super().__init__()
        self._batches = batches

    @property
    def num_batches(self):
        return len(self._batches)

    def __getitem__(self, index):
        return self._batches[index]


def _split(parts, size=3):
    """The element `parts` (a tuple or dict of arrays) as batches of `size` rows."""
    n = len(next(iter(parts.values() if isinstance(parts, dict) else parts)))
    cut = [slice(i, i + size) for i in range(0, n, size)] or [slice(0, 0)]
    if isinstance(parts, dict):
        return [{k: v[s] for k, v in parts.items()} for s in cut]
    return [tuple(p[s] for p in parts) for s in cut]


#: The input kinds the README lists, each made from one `(x, y[, w])` element.
KINDS = {
    "array": lambda e: e[1],
    "tuple": lambda e: e,
    "dict": lambda e: {"x": e[0], "label": e[1]},
    "list": lambda e: _split(e),
    "generator": lambda e: iter(_split(e)),
    "pydataset": lambda e: _Batches(_split(e)),
    "tf_batched": lambda e: Dataset.from_tensor_slices(e).batch(3),
    "tf_unbatched": lambda e: Dataset.from_tensor_slices(e),
}
ALL = tuple(KINDS)
WEIGHTED = ("tuple", "list", "generator", "pydataset", "tf_batched", "tf_unbatched")
STREAMED = ("list", "generator", "pydataset", "tf_batched", "tf_unbatched")


def _element(y, w=None, x=None):
    y = np.asarray(y)
    x = np.zeros((len(y), 2), "float32") if x is None else x
    return (x, y) if w is None else (x, y, np.asarray(w))


CASES = []


def case(name, y, fn, kwargs, exc, match, kinds=ALL, w=None, x=None):
    """Adds a row to the table for each input kind in `kinds`."""
    for kind in kinds:
        if kind == "array" and w is not None:
            continue
        args = dict(kwargs)
        if kind == "dict" and "target" not in args and name != "dict_without_target":
            args["target"] = "label"
        CASES.append(pytest.param(
            kind, (y, w, x), fn, args, exc, match, id=f"{name}-{kind}"))


def special(name, make, fn, kwargs, exc, match):
    """Adds one row whose input is built by `make()` (no input-kind fan-out)."""
    CASES.append(pytest.param(None, make, fn, kwargs, exc, match, id=name))


NAN = np.array([0.5, 2.0, np.nan, 1.0, 3.0, 4.0])
# ---------------------------------------------------------------- the table
# Empty data.
case("empty", np.zeros(0), MEAN, {}, ValueError, r"empty")
case("empty", np.zeros(0, "int64"), CPB, {}, ValueError, r"empty")
case("empty_median", np.zeros(0), MEDIAN, {}, ValueError, r"empty")
# NaN / inf targets, with the row they were found in.
for fn in (MEAN, MEDIAN, HUBER, CPB):
    case(f"nan_{fn.__self__.__name__}", NAN, fn, {}, ValueError,
         r"NaN or inf value\(s\), the first in row 2 of the batch \(nan")
case("inf", np.array([1.0, np.inf, 0.0]), MEAN, {}, ValueError, r"\(inf")
# Class ids.
case("id_out_of_range", np.array([0, 1, 5, 1]), CPB, {"num_classes": 3},
     ValueError, r"class id 5, outside \[0, 3\).*num_classes=")
case("negative_id", np.array([0, -1, 1, 1]), CPB, {}, ValueError, r"class id -1")
case("huge_id", np.array([0, 1, 2**30]), CPB, {}, ValueError, r"likely a mistake")
case("fractional_id", np.array([0.0, 1.5, 1.0]), CPB, {}, ValueError,
     r"whole numbers")
case("class_never_seen", np.array([0, 1, 0, 1]), CPB, {"num_classes": 3},
     ValueError, r"Class\(es\) \[2\] have zero frequency.*`smoothing=`")
case("one_class", np.array([0, 0, 0]), CPB, {}, ValueError,
     r"only 1 class; a softmax needs at least 2")
case("sigmoid_always_1", np.ones(4), CPB, {"activation": "sigmoid"}, ValueError,
     r"output\(s\) \[0\] are always 1.*`smoothing=`")
case("sigmoid_always_0", np.zeros((4, 2)), CPB, {"activation": "sigmoid"},
     ValueError, r"output\(s\) \[0, 1\] are always 0")
case("sigmoid_out_of_0_1", np.array([0.0, 2.0, 1.0]), CPB,
     {"activation": "sigmoid"}, ValueError, r"values in \[0, 1\]")
case("softmax_rows_not_distributions", np.array([[0.5, 0.2], [0.3, 0.7]]), CPB,
     {}, ValueError, r"must each sum to 1.*row 0 sums to 0.7")
case("per_step_ids_as_floats", np.array([[0.0, 2, 1], [1, 1, 0]]), CPB, {},
     ValueError, r"row 0 sums to 3.*whole numbers.*integer ids")
case("integer_one_hot", np.eye(3, dtype="int64")[[0, 1, 2, 2]], CPB, {},
     ValueError, r"ambiguous under softmax.*cast one-hot labels to float")
case("width_vs_num_classes", np.eye(3)[[0, 1, 2]], CPB, {"num_classes": 4},
     ValueError, r"3 columns but num_classes=4")
# Non-numeric targets and features.
STRINGS = np.array(["cat", "dog", "cat", "bird"])
for fn in (CPB, MEAN, MEDIAN, HUBER):
    case(f"strings_{fn.__self__.__name__}", STRINGS, fn, {}, TypeError,
         r"Targets must be numeric.*dtype.*StringLookup")
case("complex", np.ones(4, np.complex64), MEAN, {}, TypeError,
     r"Targets must be numeric.*complex64")
case("objects", np.array([1, "a", None], dtype=object), CPB, {}, TypeError,
     r"Targets must be numeric.*object", kinds=("array", "tuple", "list"))
case("string_features", np.zeros(4), HE, {}, TypeError,
     r"Features must be numeric.*StringLookup",
     kinds=("tuple", "list", "generator", "pydataset", "tf_batched",
            "tf_unbatched"), x=np.array([["a", "b"]] * 4))
# Bad sample weights.
Y4 = np.array([0.0, 1.0, 1.0, 0.0])
case("negative_weights", Y4, MEAN, {}, ValueError, r"non-negative; found negative",
     kinds=WEIGHTED, w=np.array([1.0, -1.0, 1.0, 1.0]))
case("nan_weights", Y4, MEAN, {}, ValueError, r"found NaN/inf", kinds=WEIGHTED,
     w=np.array([1.0, np.nan, 1.0, 1.0]))
case("wrong_shape_weights", Y4, CPB, {}, ValueError,
     r"Sample weights must have shape.*Received shape", kinds=WEIGHTED,
     w=np.ones((4, 2)))
case("string_weights", Y4, MEAN, {}, TypeError,
     r"Sample weights must be numeric", kinds=WEIGHTED,
     w=np.array(["1", "1", "1", "1"]))
case("all_zero_weights_cpb", np.array([0, 1, 1, 0]), CPB, {}, ValueError,
     r"All sample weights are 0", kinds=WEIGHTED, w=np.zeros(4))
case("all_zero_weights_mean", Y4, MEAN, {}, ValueError,
     r"all its sample weights are 0", kinds=WEIGHTED, w=np.zeros(4))
case("per_id_weights_wrong_shape", np.zeros((4, 3), "int64"), CPB, {},
     ValueError, r"Sample weights must have shape.*\([34], 3\)", kinds=WEIGHTED,
     w=np.ones((4, 2)))
# Picking the target.
case("missing_dict_key", Y4, MEAN, {"target": "labels"}, ValueError,
     r"'labels' is not in.*Available keys: \['label', 'x'\]",
     kinds=("dict",))
case("dict_without_target", Y4, MEAN, {}, ValueError,
     r"keys \['label', 'x'\]; pass `target=`.*target='label'", kinds=("dict",))
case("tuple_index_out_of_range", Y4, MEAN, {"target": 5}, ValueError,
     r"`target=5` is out of range for tuples of 2 items",
     kinds=("tuple", "list", "generator", "pydataset", "tf_batched"))
case("tuple_index_not_int", Y4, MEAN, {"target": "y"}, ValueError,
     r"must be an int index", kinds=("tuple", "tf_batched", "list"))
case("target_on_a_bare_array", Y4, MEAN, {"target": 1}, ValueError,
     r"single tensor.*Leave it as None", kinds=("array",))
case("empty_path", Y4, MEAN, {"target": ()}, ValueError, r"empty path",
     kinds=("tuple", "tf_batched"))
# Bad arguments.
for bad, match in (({"steps": 0}, r"`steps` must be a positive integer"),
                   ({"steps": "2"}, r"`steps` must be a positive integer"),
                   ({"steps": True}, r"`steps` must be a positive integer"),
                   ({"verbose": 3}, r"`verbose` must be.*verbose=3"),
                   ({"verbose": "yes"}, r"`verbose` must be")):
    case(f"bad_{'_'.join(map(str, bad.items()))}", Y4, MEAN, bad, ValueError,
         match, kinds=("array", "tf_batched", "generator"))
for bad, match in (({"num_classes": 0}, r"`num_classes` must be a positive"),
                   ({"num_classes": 2.5}, r"`num_classes` must be a positive"),
                   ({"smoothing": -1.0}, r"`smoothing` must be"),
                   ({"smoothing": float("nan")}, r"`smoothing` must be"),
                   ({"smoothing": "x"}, r"`smoothing` must be.*'x'"),
                   ({"ignore_class": 0.5}, r"`ignore_class` is an integer"),
                   ({"activation": "relu"}, r"`activation` must be")):
    case(f"bad_{'_'.join(map(str, bad.items()))}", np.array([0, 1, 1]), CPB, bad,
         ValueError, match, kinds=("array", "tf_batched"))
for bad in ({"delta": 0.0}, {"delta": -1.0}, {"delta": float("inf")}):
    case(f"bad_delta_{bad['delta']}", Y4, HUBER, bad, ValueError, r"`delta`",
         kinds=("array", "tf_batched"))
for fn in (MEDIAN, HUBER):
    case(f"bad_memory_budget_{fn.__self__.__name__}", Y4, fn,
         {"memory_budget": 0}, ValueError, r"`memory_budget` must be a positive",
         kinds=("array", "tf_batched"))
case("bad_he_scale", np.zeros(4), HE, {"scale": -1.0}, ValueError, r"`scale`",
     kinds=("tuple",), x=np.ones((4, 2)))
case("he_all_zero_features", np.zeros(4), HE, {}, ValueError,
     r"Every feature value is 0", kinds=WEIGHTED[:1] + STREAMED)
case("overflow", np.array([1e308, 1e308, 1e308]), MEAN, {}, ValueError,
     r"overflows float64")

# Inputs that only some kinds can be.
special("infinite_dataset", lambda: Dataset.range(3).repeat(), MEAN, {},
        ValueError, r"infinite.*Pass `steps=`")
special("infinite_batched_dataset", lambda: Dataset.range(3).batch(2).repeat(),
        CPB, {}, ValueError, r"infinite.*Pass `steps=`")
special("infinite_pydataset", lambda: _Infinite(), MEAN, {}, ValueError,
        r"PyDataset is infinite.*`steps=`")
special("batched_true_on_scalars", lambda: Dataset.range(5), CPB,
        {"batched": True}, ValueError, r"`batched=True`.*scalar.*`batched=False`")
special("ambiguous_from_tensors",
        lambda: Dataset.from_tensors(np.zeros((3, 2), "float32")), MEAN, {},
        ValueError, r"Cannot tell.*`batched=True`.*`batched=False`")
special("ambiguous_from_generator", lambda: Dataset.from_generator(
    lambda: iter([np.zeros(3)]), output_signature=tf.TensorSpec((3,), tf.float64)),
    MEAN, {}, ValueError, r"Cannot tell.*fixed shape \(3,\)")
special("string_dataset_batched", lambda: Dataset.from_tensor_slices(
    (np.zeros((4, 2)), STRINGS)).batch(2), CPB, {}, TypeError,
    r"Targets must be numeric.*dtype string")
special("string_features_dataset", lambda: Dataset.from_tensor_slices(
    STRINGS).batch(2), HE, {}, TypeError, r"Features must be numeric.*string")
special("complex_dataset", lambda: Dataset.from_tensor_slices(
    np.ones(4, np.complex128)).batch(2), MEAN, {}, TypeError, r"complex128")
special("ragged_dataset", lambda: Dataset.from_tensor_slices(
    tf.ragged.constant([[1], [2, 3]])).batch(2), CPB, {}, TypeError,
    r"dense tensor.*ragged and sparse.*to_tensor")
special("sparse_dataset", lambda: Dataset.from_tensor_slices(
    tf.sparse.from_dense(tf.eye(3))).batch(2), CPB, {}, TypeError,
    r"dense tensor.*ragged and sparse")
special("nested_dataset", lambda: Dataset.range(4).window(2), MEAN, {},
        TypeError, r"dense tensor")
special("ragged_tensor", lambda: tf.ragged.constant([[1], [2, 3]]), CPB, {},
        TypeError, r"Ragged and sparse targets are not supported")
special("sparse_tensor", lambda: tf.sparse.from_dense(tf.eye(3)), CPB, {},
        TypeError, r"Ragged and sparse targets are not supported")
special("string_weights_dataset", lambda: Dataset.from_tensor_slices(
    (np.zeros(3), np.zeros(3), np.array(["a", "b", "c"]))).batch(2), MEAN, {},
    TypeError, r"Sample weights must be numeric.*string")
special("multi_output_target", lambda: (np.zeros(3), {"a": np.zeros(3),
                                                      "b": np.ones(3)}),
        MEAN, {}, ValueError, r"parts: \['a', 'b'\].*target=\(1, 'a'\)")
special("one_element_tuple", lambda: (np.zeros(3),), MEAN, {}, ValueError,
        r"holds no target")
special("unsupported_type", lambda: "labels.csv", MEAN, {}, TypeError,
        r"Unsupported input of type str")
special("unsupported_none", lambda: None, CPB, {}, TypeError, r"Unsupported input")
special("iterable_of_strings", lambda: [np.array([1.0]), "two"], MEAN, {},
        TypeError, r"Each item of an iterable must be a batch")
special("generator_of_lists", lambda: iter([[1.0, 2.0], [3.0]]), MEAN, {},
        TypeError, r"Yield NumPy arrays")
special("consumed_generator", lambda: _consumed(), MEAN, {}, ValueError,
        r"empty.*already consumed.*fresh one")


class _Infinite(keras.utils.PyDataset):
    num_batches = None

    def __getitem__(self, index):
        return np.zeros(1), np.zeros(2)


def _consumed():
    gen = (np.array([float(i)]) for i in range(3))
    list(gen)
    return gen


def _build(kind, spec):
    if kind is None:
        return spec()
    y, w, x = spec
    return KINDS[kind](_element(y, w, x))


@pytest.mark.parametrize("kind, spec, fn, kwargs, exc, match", CASES)
def test_bad_input(kind, spec, fn, kwargs, exc, match):
    data = _build(kind, spec)
    with pytest.raises(Exception) as info:
        fn(data, **{"verbose": 0, **kwargs})
    assert info.type is exc, f"{info.type.__name__}: {info.value}"
    assert re.search(match, str(info.value), re.S), str(info.value)
    # Raised by our own code: no raw TensorFlow or NumPy exception.
    assert "keras_biasinit" in str(info.traceback[-1].path), info.traceback[-1]


def test_the_catalogue_covers_every_input_kind():
    kinds = {p.values[0] for p in CASES}
    assert set(KINDS) <= kinds
    assert len(CASES) >= 150


def test_bad_input_from_tfds():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=40):
        supervised = tfds.load("mnist", split="train", as_supervised=True)
        dicts = tfds.load("mnist", split="train")
        batched = tfds.load("mnist", split="train", as_supervised=True, batch_size=8)
    rows = [
        (dicts, CPB, {"target": "labels"}, ValueError, r"'labels' is not in"),
        (dicts, CPB, {}, ValueError, r"keys \['image', 'label'\]; pass `target=`"),
        (supervised, CPB, {"num_classes": 20}, ValueError, r"zero frequency"),
        (batched, CPB, {"num_classes": 5}, ValueError, r"outside \[0, 5\)"),
        (supervised.repeat(), CPB, {}, ValueError, r"infinite.*`steps=`"),
        (supervised, CPB, {"target": 2}, ValueError, r"out of range"),
        (supervised, HE, {}, ValueError, r"Cannot tell.*`batched=False`"),
        (supervised, CPB, {"batched": True}, ValueError, r"`batched=True`.*scalar"),
        (supervised, CPB, {"steps": -1}, ValueError, r"`steps` must be"),
    ]
    for data, fn, kwargs, exc, match in rows:
        with pytest.raises(Exception) as info:
            fn(data, verbose=0, **kwargs)
        assert info.type is exc and re.search(match, str(info.value)), info.value
        assert "keras_biasinit" in str(info.traceback[-1].path)


# ------------------------------------------- the user's own errors pass through


class UserBug(Exception):
    """An exception of the user's own, raised inside their pipeline."""


def _raise(*_):
    raise UserBug("the user's map fn failed")


def test_a_failing_map_function_passes_through_unchanged():
    ds = Dataset.range(8).batch(4).map(
        lambda v: tf.py_function(_raise, [v], tf.int64))
    with pytest.raises(tf.errors.OpError, match="the user's map fn failed"):
        CPB(ds, batched=True, verbose=0)

    def check(v):
        less = tf.debugging.assert_less(v, tf.constant(5, tf.int64),
                                        message="label too large")
        with tf.control_dependencies([less]):
            return tf.identity(v)

    checked = Dataset.range(8).map(check)
    with pytest.raises(tf.errors.InvalidArgumentError, match="label too large"):
        MEAN(checked, batched=False, verbose=0)


def test_a_failing_generator_or_pydataset_passes_through_unchanged():
    def gen():
        yield np.array([1.0])
        raise UserBug("the user's generator failed")

    with pytest.raises(UserBug, match="generator failed"):
        MEAN(gen(), verbose=0)

    class Broken(_Batches):
        def __getitem__(self, index):
            raise UserBug(f"batch {index} is broken")

    with pytest.raises(UserBug, match="batch 0 is broken"):
        MEAN(Broken([None]), verbose=0)


def test_one_shot_generator_read_twice():
    batches = read_batches((np.array([float(i)]) for i in range(3)), verbose=0)
    list(batches)
    with pytest.raises(ValueError, match=r"one-shot iterator.*already read once"):
        list(batches)
