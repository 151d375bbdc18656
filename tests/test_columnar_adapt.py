"""`adapt_output_bias` on pandas and Parquet data: `target=` by output name."""

import keras
import numpy as np
import pytest

import keras_biasinit as kbi

pytestmark = pytest.mark.keras

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
ds = pytest.importorskip("pyarrow.dataset")
pq = pytest.importorskip("pyarrow.parquet")

N = 900
SPECIES = ["ant", "bee", "cow", "dog"]


@pytest.fixture(scope="module")
def columns():
    rng = np.random.default_rng(5)
    return {
        "species": rng.choice(4, size=N, p=[0.5, 0.25, 0.15, 0.1]),
        "weight_kg": rng.gamma(2.0, 3.0, size=N),
        "height": rng.normal(size=N) + 4.0,
        "w": rng.uniform(0.2, 2.0, size=N),
    }


@pytest.fixture(scope="module")
def frame(columns):
    df = pd.DataFrame({k: v for k, v in columns.items() if k != "species"})
    df["species"] = pd.Series(np.array(SPECIES)[columns["species"]], dtype="string")
    return df


def _two_heads():
    inputs = keras.Input((3,))
    kind = keras.layers.Dense(4, activation="softmax", name="kind")(inputs)
    size = keras.layers.Dense(2, name="size")(inputs)
    model = keras.Model(inputs, {"kind": kind, "size": size})
    model.compile(loss={"kind": "sparse_categorical_crossentropy",
                        "size": "mean_absolute_error"})
    return model


def test_two_outputs_from_a_frame_and_a_parquet_scan(frame, columns, tmp_path):
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                   tmp_path / "data.parquet", row_group_size=200)
    target = {"kind": "species", "size": ["weight_kg", "height"]}
    w = columns["w"]
    counts = np.bincount(columns["species"], weights=w, minlength=4)
    # The weighted median, by the sorted cumulative weights (no ties here).
    medians = []
    for y in (columns["weight_kg"], columns["height"]):
        order = np.argsort(y)
        cumulative = np.cumsum(w[order])
        medians.append(y[order][np.searchsorted(cumulative, cumulative[-1] / 2)])
    for data in (frame, ds.dataset(tmp_path, format="parquet")):
        model = _two_heads()
        got = kbi.adapt_output_bias(model, data, target=target, sample_weight="w",
                                    classes={"kind": SPECIES}, verbose=0)
        np.testing.assert_allclose(got["kind"].priors, counts / counts.sum(),
                                   rtol=1e-12)
        np.testing.assert_allclose(got["size"].bias, medians, rtol=0, atol=0)
        bias = keras.ops.convert_to_numpy(model.get_layer("size").bias)
        np.testing.assert_allclose(bias, medians, rtol=1e-6)


@pytest.mark.parametrize("options, match", [
    ({}, r"`target=` for columnar data .* outputs are \['kind', 'size'\]"),
    ({"target": "species"}, r"a dict keyed by output name"),
    ({"target": {"kind": "species"}}, r"Missing: \['size'\]"),
    ({"target": {"kind": "species", "size": "height"}},
     r"'species' holds string .*labels"),
    ({"target": {"kind": "species", "sise": "height", "size": "height"},
      "classes": {"kind": SPECIES}}, r"unknown: \['sise'\]"),
])
def test_misuse_names_outputs_and_columns(frame, options, match):
    model = _two_heads()
    before = keras.ops.convert_to_numpy(model.get_layer("kind").bias).copy()
    with pytest.raises(ValueError, match=match):
        kbi.adapt_output_bias(model, frame, verbose=0, **options)
    after = keras.ops.convert_to_numpy(model.get_layer("kind").bias)
    np.testing.assert_array_equal(before, after)  # nothing assigned
