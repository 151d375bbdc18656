"""Label passes that skip the features (keras_biasinit.data.prune).

Every number from a pruned pipeline is compared bit for bit with the same
pass over the full pipeline (`prune.ENABLED = False`), on real JPEG files and
real tf.data pipelines; where pruning is not provably safe the full pipeline
runs and `verbose` says so.
"""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")  # the pruning rewrites tf.data graphs

import keras  # noqa: E402
import keras_biasinit as kbi  # noqa: E402
from keras_biasinit.data import prune  # noqa: E402
from tensorflow.core.framework import graph_pb2  # noqa: E402

pytestmark = pytest.mark.keras  # runs under every backend (conftest.py)

N = 12


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """12 JPEG files of 16 x 16 noise, float labels, integer classes, weights."""
    folder = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(17)
    paths = []
    for i in range(N):
        path = str(folder / f"{i}.jpg")
        pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        tf.io.write_file(path, tf.io.encode_jpeg(pixels))
        paths.append(path)
    values = rng.normal(3.0, 2.0, size=N).astype(np.float32)
    classes = np.array([0, 1, 1, 2, 2, 2, 0, 1, 2, 2, 1, 2], np.int64)
    weights = rng.uniform(0.5, 2.0, size=N).astype(np.float32)
    return paths, values, classes, weights


def _image(path):
    return tf.cast(tf.io.decode_jpeg(tf.io.read_file(path), channels=3), tf.float32)


def _pipelines(paths, labels, weights):
    """(name, dataset, target) of a few pipeline shapes."""
    slices = tf.data.Dataset.from_tensor_slices
    return [
        ("map before batch",
         slices((paths, labels)).map(lambda p, y: (_image(p), y)).batch(5), None),
        ("map after batch", slices((paths, labels)).batch(5).map(
            lambda p, y: (tf.map_fn(_image, p, fn_output_signature=tf.float32),
                          y * 1)), None),
        ("dict", slices({"path": paths, "label": labels}).map(
            lambda e: {"image": _image(e["path"]), "label": e["label"]}).batch(5),
         "label"),
        ("(x, y, w)", slices((paths, labels, weights)).map(
            lambda p, y, w: (_image(p), y, w)).shuffle(
                4, seed=1, reshuffle_each_iteration=False).batch(5)
         .prefetch(2), None),
        ("padded_batch", slices((paths, labels)).map(
            lambda p, y: (_image(p)[:8], y)).padded_batch(5), None),
    ]


def _from_dataset(cls, ds, target, **options):
    return cls.from_dataset(ds, target=target, verbose=0, **options).get_config()


def _both(run, monkeypatch):
    """`run()` on the pruned and on the full pipeline."""
    pruned = run()
    monkeypatch.setattr(prune, "ENABLED", False)
    full = run()
    monkeypatch.setattr(prune, "ENABLED", True)
    return pruned, full


CASES = [
    (kbi.MeanBias, "values", {}),
    (kbi.MedianBias, "values", {}),
    (kbi.QuantileBias, "values", {"q": 0.3}),
    (kbi.HuberBias, "values", {"delta": 0.5}),
    (kbi.ClassPriorBias, "classes", {"num_classes": 3}),
]


@pytest.mark.parametrize("cls, which, options", CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_pruned_numbers_are_the_full_pipelines(jpegs, monkeypatch, cls, which,
                                               options):
    paths, values, classes, weights = jpegs
    labels = values if which == "values" else classes
    for name, ds, target in _pipelines(paths, labels, weights):
        pruned, full = _both(lambda: _from_dataset(cls, ds, target, **options),
                             monkeypatch)
        assert pruned == full, name


def test_every_shape_is_pruned_and_decodes_nothing(jpegs):
    paths, values, _, weights = jpegs
    for name, ds, target in _pipelines(paths, values, weights):
        pick = (lambda e: e[target]) if target else (lambda e: e[1:])
        projected, note = prune.project(ds, pick)
        assert note == "features pruned (1 map)", name
        assert "DecodeJpeg" not in _ops(projected), name
        assert "DecodeJpeg" in _ops(ds), name


def _ops(ds):
    graph = graph_pb2.GraphDef.FromString(ds._as_serialized_graph().numpy())
    return {n.op for f in graph.library.function for n in f.node_def}


def test_the_skipped_branch_does_not_run(jpegs, capsys):
    """A feature branch that always fails: the full pass raises, the label
    pass never runs it."""
    paths, values, _, _ = jpegs
    ds = tf.data.Dataset.from_tensor_slices((paths, values)).map(
        lambda p, y: (tf.debugging.assert_less(tf.size(_image(p)), 0) and p, y)
    ).batch(4)
    with pytest.raises(tf.errors.InvalidArgumentError):
        for _ in ds:
            pass
    init = kbi.MeanBias.from_dataset(ds, verbose=1)
    assert "Label pass: features pruned (1 map)" in capsys.readouterr().out
    np.testing.assert_allclose(init.bias, values.astype(np.float64).mean(),
                               rtol=1e-12)


@pytest.mark.parametrize("label, reason", [
    (lambda p, y: y + tf.random.uniform((), 0, 1e-30), "['RandomUniform']"),
    (lambda p, y: tf.py_function(lambda v: v, [y], tf.float32), "['EagerPyFunc']"),
], ids=["random label", "py_function label"])
def test_stateful_labels_run_the_full_pipeline(jpegs, capsys, label, reason):
    paths, values, _, _ = jpegs
    ds = tf.data.Dataset.from_tensor_slices((paths, values)).map(
        lambda p, y: (_image(p), tf.ensure_shape(label(p, y), ()))).batch(4)
    init = kbi.MeanBias.from_dataset(ds, verbose=1)
    out = capsys.readouterr().out
    assert "Label pass: full pipeline (what the pass reads is computed by " \
           f"stateful ops {reason}" in out
    np.testing.assert_allclose(init.bias, values.astype(np.float64).mean(),
                               rtol=1e-6)


def test_py_function_features_and_feature_filters_run_in_full(jpegs):
    paths, values, _, _ = jpegs
    slices = tf.data.Dataset.from_tensor_slices((paths, values))
    py = slices.map(lambda p, y: (tf.py_function(_image, [p], tf.float32), y))
    _, note = prune.project(py.batch(4), lambda e: e[1])
    assert note == "full pipeline (the skipped part runs stateful ops " \
                   "['EagerPyFunc'])"
    bright = slices.map(lambda p, y: (_image(p), y)).filter(
        lambda x, y: tf.reduce_mean(x) > 127.5)
    projected, note = prune.project(bright.batch(4), lambda e: e[1])
    assert note == "full pipeline (no map computes what the pass skips)"
    expected = [y for x, y in bright.as_numpy_iterator()]
    np.testing.assert_array_equal(np.concatenate(list(projected)), expected)
    # A filter on the labels keeps the pruning, and filters the same rows.
    big = slices.map(lambda p, y: (_image(p), y)).filter(lambda x, y: y > 3.0)
    projected, note = prune.project(big.batch(4), lambda e: e[1])
    assert note == "features pruned (1 map)"
    np.testing.assert_array_equal(np.concatenate(list(projected)),
                                  values[values > 3.0])


def test_large_in_memory_sources_are_not_serialized(monkeypatch):
    x = np.ones((100, 50), np.float32)  # 20,000 bytes
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(100.0))).map(
        lambda x, y: (tf.sqrt(x), y)).batch(10)
    assert prune.project(ds, lambda e: e[1])[1] == "features pruned (1 map)"
    monkeypatch.setattr(prune, "MAX_IN_MEMORY_BYTES", 10_000)
    projected, note = prune.project(ds, lambda e: e[1])
    assert note == ("full pipeline (the pipeline holds 0 MiB of in-memory tensors, "
                    "more than `keras_biasinit.data.prune.MAX_IN_MEMORY_BYTES`)")
    np.testing.assert_array_equal(np.concatenate(list(projected)), np.arange(100.0))


def test_adapt_output_bias_prunes_and_matches(jpegs, monkeypatch, capsys):
    paths, values, classes, weights = jpegs
    ds = tf.data.Dataset.from_tensor_slices((paths, (classes, values), weights)).map(
        lambda p, y, w: (_image(p), y, w)).batch(5)
    inputs = keras.Input((16, 16, 3))
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, [
        keras.layers.Dense(3, activation="softmax", name="cls")(flat),
        keras.layers.Dense(1, name="reg")(flat)])
    model.compile(loss=["sparse_categorical_crossentropy", "mse"])

    def adapt():
        return {k: v.get_config() for k, v in
                kbi.adapt_output_bias(model, ds, verbose=1).items()}

    pruned, full = _both(adapt, monkeypatch)
    assert pruned == full
    out = capsys.readouterr().out
    assert "Label pass: features pruned (1 map)" in out
    assert "Label pass: full pipeline (pruning disabled" in out
    w = weights.astype(np.float64)
    np.testing.assert_allclose(pruned["reg"]["mean"], np.sum(w * values) / w.sum(),
                               rtol=1e-6)


def test_a_strategy_reads_the_pruned_pipeline(jpegs, two_cpu_strategy, capsys):
    paths, _, classes, _ = jpegs
    ds = tf.data.Dataset.from_tensor_slices((paths, classes)).map(
        lambda p, y: (_image(p), y)).batch(5)
    init = kbi.ClassPriorBias.from_dataset(ds, num_classes=3, verbose=1,
                                           strategy=two_cpu_strategy)
    assert "Label pass: features pruned (1 map)" in capsys.readouterr().out
    np.testing.assert_allclose(init.priors, np.bincount(classes) / N, rtol=1e-12)


def test_tfds_mock_data_same_numbers(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=40):
        ds = tfds.load("mnist", split="train", as_supervised=True, batch_size=8)
    labels = np.concatenate([y for _, y in tfds.as_numpy(ds)])
    pruned, full = _both(lambda: _from_dataset(kbi.ClassPriorBias, ds, None,
                                               num_classes=10, smoothing=1.0),
                         monkeypatch)
    assert pruned == full
    counts = np.bincount(labels, minlength=10) + 1.0
    np.testing.assert_allclose(pruned["priors"], counts / counts.sum(), rtol=1e-12)


def test_tfds_features_decoding_is_skipped(tmp_path, monkeypatch):
    """The decoding tfds runs at load time (`FeaturesDict.deserialize_example`
    over TFRecords) is pruned like any map."""
    tfds = pytest.importorskip("tensorflow_datasets")
    features = tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(8, 8, 3)),
        "label": tfds.features.ClassLabel(num_classes=3)})
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, size=20)
    path = str(tmp_path / "train.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for label in labels:
            image = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
            writer.write(features.serialize_example({"image": image,
                                                     "label": label}))
    ds = tf.data.TFRecordDataset(path).map(features.deserialize_example).map(
        lambda e: (e["image"], e["label"])).batch(6)
    projected, note = prune.project(ds, lambda e: e[1])
    assert note == "features pruned (1 map)"
    assert "DecodeImage" in _ops(ds) and "DecodeImage" not in _ops(projected)
    pruned, full = _both(lambda: _from_dataset(kbi.ClassPriorBias, ds, None,
                                               num_classes=3, smoothing=1.0),
                         monkeypatch)
    assert pruned == full
    counts = np.bincount(labels, minlength=3) + 1.0
    np.testing.assert_allclose(pruned["priors"], counts / counts.sum(), rtol=1e-12)
