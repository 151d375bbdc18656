"""keras_biasinit.beam: the statistics on Apache Beam equal `from_dataset`'s.

Every pipeline runs on the DirectRunner with 2 worker processes, so that the
accumulators of different bundles really travel between processes and merge.
Pipelines cost seconds each: the checks are grouped, several
`ComputeInitializer`s per pipeline, and the results come back as the Keras
JSON a user would write (`keras.saving.serialize_keras_object`).
"""

import json
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_biasinit as kbi
from keras_biasinit.stats import weighted_median

pytestmark = pytest.mark.keras  # the initializers come back as Keras JSON

beam = pytest.importorskip("apache_beam")

from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from keras_biasinit.beam import ComputeInitializer  # noqa: E402
from tests.stats._batches import TINY  # noqa: E402

#: Over it, the Huber location starts from pass 1's radix bins (`_huber_radix`).
RADIX = 2**20

QuantileBias = getattr(kbi, "QuantileBias", None)  # landing on main separately


def options():
    return PipelineOptions(flags=[], direct_num_workers=2,
                           direct_running_mode="multi_processing")


def _to_json(init):
    return json.dumps(keras.saving.serialize_keras_object(init))


class Routed(beam.PTransform):
    """Applies `transform` to the input PCollection named `source`."""

    def __init__(self, source, transform):
        super().__init__()
        self.source, self.transform = source, transform

    def expand(self, inputs):
        return inputs[self.source] | self.transform


def run(tmp_path, make_input, transforms):
    """Runs one pipeline; returns {name: initializer} read back from JSON."""
    out = tmp_path / "initializers"
    with beam.Pipeline(options=options()) as p:
        data = make_input(p)
        results = [
            data | name >> transform
            | f"{name}/json" >> beam.Map(lambda init, name=name: json.dumps(
                [name, _to_json(init)]))
            for name, transform in transforms.items()
        ]
        (results | beam.Flatten()
         | beam.io.WriteToText(str(out), shard_name_template=""))
    found = {}
    for line in out.read_text().splitlines():
        name, text = json.loads(line)
        assert name not in found, f"{name} gave more than one initializer"
        found[name] = keras.saving.deserialize_keras_object(json.loads(text))
    assert sorted(found) == sorted(transforms)
    return found


def assert_same(beam_init, reference, exact=(), rtol=1e-12):
    """Same class and config; the keys in `exact` bit for bit."""
    assert type(beam_init) is type(reference)
    got, want = beam_init.get_config(), reference.get_config()
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if key in exact:
            assert got[key] == value, key
        elif isinstance(value, (float, list)):
            np.testing.assert_allclose(got[key], value, rtol=rtol, err_msg=key)
        else:
            assert got[key] == value, key


@pytest.fixture(scope="module")
def weighted_rows():
    rng = np.random.default_rng(7)
    n = 6000
    x = rng.normal(size=(n, 3)) * [1.0, 4.0, 0.5] + [0.0, 2.0, -1.0]
    y = np.round(rng.lognormal(size=n) * 10, 1)  # ties, skewed
    w = rng.uniform(0.0, 2.0, size=n)
    w[::50] = 0.0
    return x, y, w


def test_weighted_examples_equal_from_dataset(tmp_path, weighted_rows):
    """(x, y, w) examples, reshuffled: every number is from_dataset's."""
    x, y, w = weighted_rows
    assert weighted_median([(y, w)], memory_budget=TINY).passes >= 3

    def make_input(p):
        examples = [(x[i], float(y[i]), float(w[i])) for i in range(len(y))]
        return p | beam.Create(examples) | beam.Reshuffle()

    transforms = {
        "mean": ComputeInitializer(kbi.MeanBias),
        "median": ComputeInitializer(kbi.MedianBias),
        "median_tiny": ComputeInitializer(kbi.MedianBias, memory_budget=TINY),
        "huber": ComputeInitializer(kbi.HuberBias, delta=3.0),
        "huber_tiny": ComputeInitializer(kbi.HuberBias, delta=3.0,
                                         memory_budget=TINY),
        "huber_radix": ComputeInitializer(kbi.HuberBias, delta=3.0,
                                          memory_budget=RADIX),
        "he": ComputeInitializer(kbi.HeScaled, scale=1.0, seed=3),
    }
    if QuantileBias is not None:
        transforms["q90_tiny"] = ComputeInitializer(QuantileBias, q=0.9,
                                                    memory_budget=TINY)
    got = run(tmp_path, make_input, transforms)

    def ref(cls, **kwargs):
        return cls.from_dataset((x, y, w), verbose=0, **kwargs)

    assert_same(got["mean"], ref(kbi.MeanBias))
    assert_same(got["median"], ref(kbi.MedianBias), exact=("median",))
    assert_same(got["median_tiny"], ref(kbi.MedianBias, memory_budget=TINY),
                exact=("median",))
    # The Huber location is exact (psi summed exactly), so bit for bit too.
    assert_same(got["huber"], ref(kbi.HuberBias, delta=3.0), exact=("location",))
    assert_same(got["huber_tiny"], ref(kbi.HuberBias, delta=3.0, memory_budget=TINY),
                exact=("location",))
    assert_same(got["huber_radix"], ref(kbi.HuberBias, delta=3.0,
                                        memory_budget=RADIX), exact=("location",))
    assert_same(got["he"], kbi.HeScaled.from_dataset(
        (x, y, w), verbose=0, scale=1.0, seed=3))
    if QuantileBias is not None:
        assert_same(got["q90_tiny"], ref(QuantileBias, q=0.9, memory_budget=TINY),
                    exact=("quantile",))
    # And the numbers themselves, independently of from_dataset:
    keep = w > 0
    np.testing.assert_allclose(got["mean"].bias, [np.average(y, weights=w)],
                               rtol=1e-12)
    assert got["median_tiny"].bias.tolist() == [
        weighted_median([(y[keep], w[keep])]).median[0]]


def test_batched_and_dict_elements_equal_from_dataset(tmp_path, rng):
    """Batches (`batched=True`), dict examples and bare numbers, unweighted."""
    n = 5000
    y2 = np.round(rng.normal(size=(n, 2)) * [1.0, 30.0], 2)
    labels = rng.choice(4, size=n, p=[0.1, 0.2, 0.3, 0.4])
    multi = (rng.uniform(size=(n, 3)) < [0.05, 0.5, 0.9]).astype(np.float32)
    values = rng.exponential(size=n) * 5
    # Wide float32 targets: in 1 MiB, 20 columns take the row sample and the
    # bracket pass (`stats._wide_first`, `stats._bracket`), not radix digits.
    wide = (rng.standard_t(3, size=(12_000, 20)) + np.arange(20) * 50.0)
    wide = wide.astype(np.float32)
    wide_w = rng.integers(0, 3, size=len(wide)).astype(np.float64)

    def make_input(p):
        batches = [{"y": y2[i:i + 700], "multi": multi[i:i + 700]}
                   for i in range(0, n, 700)]
        return {
            "batches": p | "batches" >> beam.Create(batches),
            "dicts": p | "dicts" >> beam.Create(
                [{"label": int(c), "image": np.ones(2)} for c in labels]),
            "numbers": p | "numbers" >> beam.Create([float(v) for v in values]),
            "wide": p | "wide" >> beam.Create(
                [{"y": wide[i:i + 1000], "w": wide_w[i:i + 1000]}
                 for i in range(0, len(wide), 1000)]),
        }

    specs = {
        "median_tiny": ("batches", ComputeInitializer(
            kbi.MedianBias, target="y", batched=True, memory_budget=TINY)),
        "huber_tiny": ("batches", ComputeInitializer(
            kbi.HuberBias, target="y", batched=True, delta=10.0,
            memory_budget=TINY)),
        "huber": ("batches", ComputeInitializer(
            kbi.HuberBias, target="y", batched=True, delta=10.0)),
        "huber_radix": ("batches", ComputeInitializer(
            kbi.HuberBias, target="y", batched=True, delta=10.0,
            memory_budget=RADIX)),
        "multi_label": ("batches", ComputeInitializer(
            kbi.ClassPriorBias, target="multi", batched=True,
            activation="sigmoid")),
        "priors": ("dicts", ComputeInitializer(kbi.ClassPriorBias, target="label",
                                               num_classes=4)),
        "priors_smoothed": ("dicts", ComputeInitializer(
            kbi.ClassPriorBias, target="label", num_classes=5, smoothing=1.0)),
        "mean_numbers": ("numbers", ComputeInitializer(kbi.MeanBias)),
        "median_numbers": ("numbers", ComputeInitializer(kbi.MedianBias,
                                                         memory_budget=TINY)),
        "wide_median": ("wide", ComputeInitializer(
            kbi.MedianBias, target="y", batched=True, memory_budget=RADIX)),
        "wide_weighted": ("wide", ComputeInitializer(
            kbi.MedianBias, target="y", batched=True, sample_weight="w",
            memory_budget=RADIX)),
    }

    got = run(tmp_path, make_input,
              {name: Routed(*spec) for name, spec in specs.items()})

    assert_same(got["median_tiny"], kbi.MedianBias.from_dataset(
        y2, verbose=0, memory_budget=TINY), exact=("median",))
    assert_same(got["huber"], kbi.HuberBias.from_dataset(
        y2, verbose=0, delta=10.0), exact=("location",))
    assert_same(got["huber_tiny"], kbi.HuberBias.from_dataset(
        y2, verbose=0, delta=10.0, memory_budget=TINY), exact=("location",))
    assert_same(got["huber_radix"], kbi.HuberBias.from_dataset(
        y2, verbose=0, delta=10.0, memory_budget=RADIX), exact=("location",))
    assert_same(got["multi_label"], kbi.ClassPriorBias.from_dataset(
        multi, verbose=0, activation="sigmoid"))
    assert_same(got["priors"], kbi.ClassPriorBias.from_dataset(
        labels, verbose=0, num_classes=4))
    assert_same(got["priors_smoothed"], kbi.ClassPriorBias.from_dataset(
        labels, verbose=0, num_classes=5, smoothing=1.0))
    assert_same(got["mean_numbers"], kbi.MeanBias.from_dataset(values, verbose=0))
    assert_same(got["median_numbers"], kbi.MedianBias.from_dataset(
        values, verbose=0, memory_budget=TINY), exact=("median",))
    assert_same(got["wide_median"], kbi.MedianBias.from_dataset(
        wide, verbose=0, memory_budget=RADIX), exact=("median",))
    assert_same(got["wide_weighted"], kbi.MedianBias.from_dataset(
        (np.zeros((len(wide), 1)), wide, wide_w), verbose=0,
        memory_budget=RADIX), exact=("median",))
    wide64 = wide.astype(np.float64)  # and NumPy's medians, bit for bit
    np.testing.assert_array_equal(got["wide_median"].bias, np.median(wide64, axis=0))
    repeated = np.repeat(wide64, wide_w.astype(int), axis=0)
    np.testing.assert_array_equal(got["wide_weighted"].bias,
                                  np.median(repeated, axis=0))
    # Independent references: NumPy.
    np.testing.assert_array_equal(got["median_tiny"].bias, np.median(y2, axis=0))
    np.testing.assert_allclose(
        got["priors"].bias, np.log(np.bincount(labels, minlength=4) / n),
        rtol=1e-12)
    assert got["median_numbers"].bias.tolist() == [np.median(values)]


def _failure(make_input, transform, processes=False):
    """The error a one-transform pipeline fails with (Beam wraps it).

    Failing pipelines run in-process unless `processes`: what they check is
    the message, and 2 worker processes cost ~8 s of start-up per pipeline."""
    opts = options() if processes else PipelineOptions(flags=[])
    with pytest.raises(Exception) as info:
        with beam.Pipeline(options=opts) as p:
            make_input(p) | transform
    return str(info.value)


def _message(call):
    with pytest.raises(ValueError) as info:
        call()
    return str(info.value)


BAD_DATA = {
    "nan_target": (
        [(0.0, 1.0), (0.0, float("nan")), (0.0, 2.0)],
        lambda: ComputeInitializer(kbi.MeanBias),
        lambda: kbi.MeanBias.from_dataset(
            (np.zeros(3), np.array([1.0, np.nan, 2.0])), verbose=0),
    ),
    "id_out_of_range": (
        [(0.0, 0), (0.0, 1), (0.0, 7)],
        lambda: ComputeInitializer(kbi.ClassPriorBias, num_classes=3),
        lambda: kbi.ClassPriorBias.from_dataset(
            (np.zeros(3), np.array([0, 1, 7])), verbose=0, num_classes=3),
    ),
    "class_never_seen": (
        [(0.0, 0), (0.0, 1), (0.0, 1)],
        lambda: ComputeInitializer(kbi.ClassPriorBias, num_classes=3),
        lambda: kbi.ClassPriorBias.from_dataset(
            (np.zeros(3), np.array([0, 1, 1])), verbose=0, num_classes=3),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_fails_with_from_dataset_message(case):
    examples, transform, reference = BAD_DATA[case]
    expected = _message(reference)
    text = _failure(lambda p: p | beam.Create(examples), transform(),
                    processes=case == "nan_target")
    # Where a NaN sits within its batch depends on how the runner batched the
    # rows; everything else in the message is from_dataset's, word for word.
    parts = re.split(r", the first in row \d+ of the batch \(.*?\)", expected)
    assert all(part in text for part in parts), (parts, text)


def test_empty_pcollection_fails_like_from_dataset():
    # from_dataset: "The data is empty: the pass read no rows. Check the dataset"
    expected = _message(lambda: kbi.MedianBias.from_dataset(
        np.zeros((0,)), verbose=0)).split(". ")[0]
    assert expected == "The data is empty: the pass read no rows"
    text = _failure(lambda p: p | beam.Create([]).with_output_types(float),
                    ComputeInitializer(kbi.MedianBias))
    assert expected in text and "PCollection" in text


def test_too_few_stages_is_an_error_not_an_approximation():
    y = np.arange(8000.0) % 997
    text = _failure(lambda p: p | beam.Create([(0.0, v) for v in y]),
                    ComputeInitializer(kbi.MedianBias, memory_budget=TINY,
                                       max_passes=2))
    assert "The exact median needs more than 2 passes" in text
    assert "`max_passes=`" in text


def test_default_stages_are_the_statistics_own():
    # Every unrolled stage costs the runner its start-up time: the median and
    # quantiles unroll the 4 their radix select needs at most on typical data.
    assert ComputeInitializer(kbi.MedianBias).max_passes == 4
    assert ComputeInitializer(kbi.QuantileBias, q=0.9).max_passes == 4
    assert ComputeInitializer(kbi.HuberBias).max_passes == 5
    assert ComputeInitializer(kbi.MedianBias, max_passes=6).max_passes == 6
    # Small budgets: tied or outlying data may need more passes than that.
    assert ComputeInitializer(kbi.MedianBias, memory_budget=2**20).max_passes == 8


def test_options_are_checked_when_the_pipeline_is_built():
    with pytest.raises(ValueError, match=r"unknown option\(s\): \['steps'\]"):
        ComputeInitializer(kbi.MeanBias, steps=3)
    with pytest.raises(ValueError, match="reads `features=`, not `target=`"):
        ComputeInitializer(kbi.HeScaled, target=0)
    with pytest.raises(ValueError, match="`smoothing` must be"):
        ComputeInitializer(kbi.ClassPriorBias, smoothing=-1.0)
    with pytest.raises(ValueError, match="`memory_budget` must be"):
        ComputeInitializer(kbi.MedianBias, memory_budget=0)
    with pytest.raises(ValueError, match="`max_passes` must be"):
        ComputeInitializer(kbi.MedianBias, max_passes=0)
    with pytest.raises(ValueError, match="`max_passes` must be"):
        ComputeInitializer(kbi.MedianBias, max_passes=2.0)
    with pytest.raises(TypeError, match="computed from data"):
        ComputeInitializer(kbi.Sparse)


def test_importing_the_package_does_not_import_beam():
    code = ("import sys, keras_biasinit; "
            "assert 'apache_beam' not in sys.modules, 'apache_beam imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_state_arrays_travel_exactly_and_without_pickles():
    from keras_biasinit.beam._combine import decode_arrays
    from keras_biasinit.beam._combine import encode_arrays

    arrays = {
        "values": np.random.default_rng(0).normal(size=(50, 3)),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 4), np.float32),
        "strided": np.arange(12, dtype=np.uint64).reshape(3, 4).T,
        "flags": np.array([True, False]),
        "big_endian": np.arange(3, dtype=">i4"),
        'a "name"\nwith a newline': np.array([1, 2], np.int8),
    }
    decoded = decode_arrays(encode_arrays(arrays))
    assert list(decoded) == list(arrays)
    for name, array in arrays.items():
        assert decoded[name].dtype == array.dtype, name
        assert decoded[name].shape == array.shape, name
        np.testing.assert_array_equal(decoded[name], array)
        decoded[name][...] = 0  # writable: states update their arrays in place
    with pytest.raises(ValueError, match="holds Python objects"):
        encode_arrays({"objects": np.array([1, None], dtype=object)})
