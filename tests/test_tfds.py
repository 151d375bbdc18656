"""tensorflow_datasets inputs, offline: mock data and a locally built dataset."""

import numpy as np
import pytest
from tests._tf import tf
from scipy import special

import keras_biasinit as kbi
from keras_biasinit.data import read_batches

tfds = pytest.importorskip("tensorflow_datasets")


def labels_of(ds, key=None):
    """The labels, read with tfds's own NumPy iterator (not our reader)."""
    return np.array([(e[key] if key else e[1]) for e in tfds.as_numpy(ds)])


@pytest.fixture(scope="module")
def mock_mnist():
    with tfds.testing.mock_data(num_examples=120):
        supervised, info = tfds.load("mnist", split="train", as_supervised=True,
                                     with_info=True)
        dicts = tfds.load("mnist", split="train")
        batched = tfds.load("mnist", split="train", as_supervised=True, batch_size=32)
    return supervised, dicts, batched, info.features["label"].num_classes


def test_as_supervised_tuples(mock_mnist):
    supervised, _, batched, num_classes = mock_mnist
    counts = np.bincount(labels_of(supervised), minlength=num_classes)
    expected = (counts + 1.0) / (counts.sum() + num_classes)
    for ds in (supervised, batched):
        init = kbi.ClassPriorBias.from_dataset(ds, num_classes=num_classes,
                                               smoothing=1.0, verbose=0)
        np.testing.assert_allclose(special.softmax(init.bias), expected, rtol=1e-12)


def test_feature_dicts_with_target_key(mock_mnist):
    supervised, dicts, _, num_classes = mock_mnist
    init = kbi.ClassPriorBias.from_dataset(dicts, target="label",
                                           num_classes=num_classes, smoothing=0.5,
                                           verbose=0)
    counts = np.bincount(labels_of(dicts, "label"), minlength=num_classes)
    np.testing.assert_allclose(special.softmax(init.bias),
                               (counts + 0.5) / (counts.sum() + 0.5 * num_classes))
    with pytest.raises(ValueError, match=r"keys \['image', 'label'\]; pass `target=`"):
        kbi.ClassPriorBias.from_dataset(dicts, verbose=0)
    with pytest.raises(ValueError, match=r"'labels' is not in"):
        kbi.ClassPriorBias.from_dataset(dicts, target="labels", verbose=0)


def test_mock_images_are_ambiguous(mock_mnist):
    # Mock tfds data comes from `from_generator`: (28, 28, 1) images could be
    # batches of 28 rows, so reading them needs `batched=`.
    supervised = mock_mnist[0]
    with pytest.raises(ValueError, match=r"Cannot tell.*`batched=False`"):
        read_batches(supervised, role="features", verbose=0)
    batches = list(read_batches(supervised, role="features", batched=False, verbose=0))
    assert batches[0][0].shape == (120, 28, 28, 1)


class _Tiny(tfds.core.GeneratorBasedBuilder):
    """A real tfds dataset (TFRecord files, tfds's own reading pipeline)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.FeaturesDict({
            "x": tfds.features.Tensor(shape=(3,), dtype=np.float32),
            "y": tfds.features.Tensor(shape=(2,), dtype=np.float32),
            "label": tfds.features.ClassLabel(num_classes=3),
        })
        return tfds.core.DatasetInfo(builder=self, features=features,
                                     supervised_keys=("x", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(60):
            yield i, {"x": np.full(3, i, np.float32),
                      "y": np.array([i, i % 7], np.float32), "label": i % 3}


# tfds looks a builder's source up with `importlib_resources` when its module
# is inside a package (tests.test_tfds), and that optional etils dependency is
# not installed; a top-level module name takes tfds's plain fallback instead.
_Tiny.__module__ = "tiny_tfds_builder"


@pytest.fixture(scope="module")
def tiny_builder(tmp_path_factory):
    builder = _Tiny(data_dir=str(tmp_path_factory.mktemp("tfds")))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return builder


def test_real_tfds_pipeline_is_recognised_as_unbatched(tiny_builder):
    ds = tiny_builder.as_dataset(split="train")
    # Fixed-shape (2,) targets: only following tfds's interleave over TFRecord
    # files tells these are single examples, not batches of 2.
    init = kbi.MeanBias.from_dataset(ds, target="y", verbose=0)
    i = np.arange(60.0)
    np.testing.assert_allclose(init.bias, [i.mean(), (i % 7).mean()], rtol=1e-12)
    supervised = tiny_builder.as_dataset(split="train", as_supervised=True)
    features = list(read_batches(supervised, role="features", verbose=0))
    assert features[0][0].shape == (60, 3)
    batched = tiny_builder.as_dataset(split="train", batch_size=16)
    init = kbi.MeanBias.from_dataset(batched, target="y", verbose=0)
    np.testing.assert_allclose(init.bias, [i.mean(), (i % 7).mean()], rtol=1e-12)


def test_real_tfds_class_priors(tiny_builder):
    ds = tiny_builder.as_dataset(split="train", as_supervised=True)
    init = kbi.ClassPriorBias.from_dataset(ds, verbose=0)
    np.testing.assert_allclose(special.softmax(init.bias), [1 / 3] * 3, rtol=1e-12)
    assert init.expected_loss == pytest.approx(np.log(3), rel=1e-12)
    assert isinstance(ds, tf.data.Dataset)
