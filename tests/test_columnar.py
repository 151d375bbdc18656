"""pandas, Arrow and Parquet inputs (`keras_biasinit.data.columnar`).

Every form holds the same rows as NumPy arrays; each initializer's numbers
are checked against NumPy (or the NumPy-array path, bit for bit where the
statistic is exact). Parquet files are written here: several files, several
row groups each, scanned in small record batches so that a pass crosses
many batches and files.
"""

import subprocess
import sys

import numpy as np
import pytest

import keras_biasinit as kbi
from keras_biasinit.data import columnar
from tests.stats._batches import TINY

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
ds = pytest.importorskip("pyarrow.dataset")
pq = pytest.importorskip("pyarrow.parquet")

N = 6000
CLASSES = ["cat", "dog", "emu"]


@pytest.fixture(scope="module")
def values():
    rng = np.random.default_rng(11)
    return {
        "price": np.round(rng.lognormal(size=N) * 10, 1),  # ties, skewed
        "w": np.where(np.arange(N) % 40 == 0, 0.0, rng.uniform(0.1, 2.0, N)),
        "x1": rng.normal(size=N) * 3.0,
        "x2": rng.normal(size=N) + 1.0,
        "label": rng.choice(3, size=N, p=[0.6, 0.3, 0.1]),
        "clicked": (rng.uniform(size=N) < 0.2).astype(np.int64),
    }


@pytest.fixture(scope="module")
def frame(values):
    df = pd.DataFrame({k: v for k, v in values.items() if k != "label"})
    df["animal"] = pd.Categorical(np.array(CLASSES)[values["label"]],
                                  categories=["emu", "dog", "cat"])  # not id order
    df["junk"] = pd.array([None] * N, dtype="Float64")  # all null, never read
    return df


@pytest.fixture(scope="module")
def parquet_dir(frame, tmp_path_factory):
    """3 files of 2000 rows, row groups of 500, written in row order."""
    folder = tmp_path_factory.mktemp("parquet")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for part in range(3):
        pq.write_table(table.slice(2000 * part, 2000), folder / f"part-{part}.parquet",
                       row_group_size=500)
    return folder


@pytest.fixture(autouse=True)
def small_scan_batches(monkeypatch):
    monkeypatch.setattr(columnar, "SCAN_BATCH_ROWS", 64)


FORMS = ["pandas", "table", "record_batch", "parquet"]


@pytest.fixture(scope="module", params=FORMS)
def data(request, frame, parquet_dir):
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return {
        "pandas": lambda: frame,
        "table": lambda: table,
        "record_batch": lambda: table.combine_chunks().to_batches()[0],
        "parquet": lambda: ds.dataset(parquet_dir, format="parquet"),
    }[request.param]()


def _same_config(got, want, exact=()):
    got, want = got.get_config(), want.get_config()
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if key in exact or not isinstance(value, (float, list)):
            assert got[key] == value, key
        else:
            np.testing.assert_allclose(got[key], value, rtol=1e-12, err_msg=key)


def test_mean_and_list_of_columns(data, values):
    y, w = values["price"], values["w"]
    got = kbi.MeanBias.from_dataset(data, target="price", sample_weight="w",
                                    verbose=0)
    np.testing.assert_allclose(got.bias, [np.average(y, weights=w)], rtol=1e-12)
    both = kbi.MeanBias.from_dataset(data, target=["x2", "price"], verbose=0)
    np.testing.assert_allclose(both.bias, [values["x2"].mean(), y.mean()],
                               rtol=1e-12)


def test_order_statistics_equal_numpy(data, values, capsys):
    y, w = values["price"], values["w"]
    tiny = TINY  # several passes over the data (a scan is re-iterable)
    median = kbi.MedianBias.from_dataset(data, target="price", memory_budget=tiny,
                                         verbose=2)
    assert "Pass 2" in capsys.readouterr().out
    assert median.bias.tolist() == [np.median(y)]
    for cls, options, exact in [
        (kbi.MedianBias, {"memory_budget": tiny}, ("median",)),
        (kbi.QuantileBias, {"q": 0.9, "memory_budget": tiny}, ("quantile",)),
        (kbi.HuberBias, {"delta": 5.0}, ("location",)),
    ]:
        got = cls.from_dataset(data, target="price", sample_weight="w",
                               verbose=0, **options)
        _same_config(got, cls.from_dataset((values["x1"], y, w), verbose=0,
                                           **options), exact)


def test_class_priors_and_he_scaled(data, values):
    counts = np.bincount(values["label"], minlength=3)
    got = kbi.ClassPriorBias.from_dataset(data, target="animal", classes=CLASSES,
                                          verbose=0)
    np.testing.assert_allclose(got.priors, counts / N, rtol=1e-12)
    clicked = kbi.ClassPriorBias.from_dataset(
        data, target="clicked", activation="sigmoid", sample_weight="w", verbose=0)
    rate = np.average(values["clicked"], weights=values["w"])
    np.testing.assert_allclose(clicked.priors, [rate], rtol=1e-12)
    he = kbi.HeScaled.from_dataset(data, features=["x1", "x2"], sample_weight="w",
                                   verbose=0)
    x = np.stack([values["x1"], values["x2"]], axis=1)
    second = np.mean(np.average(x**2, axis=0, weights=values["w"]))
    np.testing.assert_allclose(he.get_config()["second_moment"], second, rtol=1e-12)


def test_single_columns_strings_and_steps(frame, values):
    y = values["price"]
    for column in (frame["price"], pa.chunked_array([y[:2500], y[2500:]]),
                   pa.array(y)):
        got = kbi.MeanBias.from_dataset(column, verbose=0)
        np.testing.assert_allclose(got.bias, [y.mean()], rtol=1e-12)
    numbered = pd.DataFrame(np.stack([y, values["w"]], axis=1))  # columns 0, 1
    got = kbi.MeanBias.from_dataset(numbered, target=0, sample_weight=1, verbose=0)
    np.testing.assert_allclose(got.bias, [np.average(y, weights=values["w"])],
                               rtol=1e-12)
    first = kbi.MeanBias.from_dataset(frame, target="price", steps=100, verbose=0)
    np.testing.assert_allclose(first.bias, [y[:100].mean()], rtol=1e-12)
    strings = pd.Series(np.array(CLASSES)[values["label"]], dtype="string")
    arrow = pa.array(strings.tolist())
    for labels in (strings, arrow, arrow.dictionary_encode()):
        got = kbi.ClassPriorBias.from_dataset(labels, classes=CLASSES, verbose=0)
        np.testing.assert_allclose(got.priors, np.bincount(values["label"]) / N)


def test_parquet_scan_steps_and_progress(parquet_dir, values, capsys):
    data = ds.dataset(parquet_dir, format="parquet")
    got = kbi.MeanBias.from_dataset(data, target="price", steps=300, verbose=2)
    np.testing.assert_allclose(got.bias, [values["price"][:300].mean()],
                               rtol=1e-12)
    assert "300/300" in capsys.readouterr().out  # rows, against count_rows()


@pytest.mark.parametrize("make, match", [
    (lambda df: kbi.MeanBias.from_dataset(df), r"columns: \['price', 'w'"),
    (lambda df: kbi.MeanBias.from_dataset(df, target="prize"),
     r"No column 'prize'.*\['price', 'w'"),
    (lambda df: kbi.MeanBias.from_dataset(df, target="price", sample_weight="wt"),
     r"No column 'wt' \(`sample_weight=`\)"),
    (lambda df: kbi.ClassPriorBias.from_dataset(df, target="animal"),
     r"categorical labels.*classes=\['cat', 'dog', 'emu'\]"),
    (lambda df: kbi.ClassPriorBias.from_dataset(df, target="animal",
                                                classes=["cat", "dog"]),
     r"holds \d+ value\(s\) not in `classes`, e\.g\. \[.emu.\]"),
    (lambda df: kbi.MeanBias.from_dataset(df, target="junk"),
     r"'junk' has 6000 null value\(s\)"),
    (lambda df: kbi.MeanBias.from_dataset(df["price"], sample_weight="w"),
     r"single column"),
    (lambda df: kbi.ClassPriorBias.from_dataset(np.array([0, 1]), classes=[0, 1]),
     r"`classes=` maps the labels of a pandas or Arrow column"),
    (lambda df: kbi.MeanBias.from_dataset(np.ones((4, 2)), target=["a", "b"]),
     r"A list `target=` names several columns"),
], ids=["no-target", "unknown", "unknown-weight", "categorical", "not-in-classes",
        "nulls", "series-weight", "classes-on-numpy", "list-on-numpy"])
def test_misuse_is_a_clear_error(frame, make, match):
    with pytest.raises(ValueError, match=match):
        make(frame)


def test_nulls_are_refused_with_their_count(frame, parquet_dir, tmp_path):
    nullable = pd.Series([1, None, 3, None], dtype="Int64")
    with pytest.raises(ValueError, match=r"2 null value\(s\) in 4 rows"):
        kbi.MeanBias.from_dataset(nullable, verbose=0)
    table = pa.table({"y": [1.0, 5.0, 2.0], "w": [1.0, 1.0, None]})
    with pytest.raises(ValueError, match=r"'w' has 1 null"):
        kbi.MeanBias.from_dataset(table, target="y", sample_weight="w", verbose=0)
    pq.write_table(pa.table({"y": [1.0] * 100 + [None] * 3}), tmp_path / "a.parquet",
                   row_group_size=50)
    scan = ds.dataset(tmp_path, format="parquet")
    with pytest.raises(ValueError, match=r"'y' has 3 null.*batch from row 100"):
        kbi.MeanBias.from_dataset(scan, target="y", verbose=0)
    # Columns that are not named are never read: `junk` is all null.
    kbi.MeanBias.from_dataset(ds.dataset(parquet_dir), target="price", verbose=0)


def test_iterables_of_frames_and_record_batches(frame, parquet_dir, values):
    """`pd.read_csv(chunksize=...)`-like lists of DataFrames, and the record
    batches of `ParquetFile.iter_batches()` (a one-shot generator)."""
    y, w = values["price"], values["w"]
    chunks = [frame.iloc[:2500], frame.iloc[2500:]]
    got = kbi.MeanBias.from_dataset(chunks, target="price", sample_weight="w",
                                    verbose=0)
    np.testing.assert_allclose(got.bias, [np.average(y, weights=w)], rtol=1e-12)
    files = sorted(parquet_dir.glob("*.parquet"))
    batches = (b for f in files for b in pq.ParquetFile(f).iter_batches(
        batch_size=700, columns=["price", "animal"]))
    got = kbi.MedianBias.from_dataset(batches, target="price", verbose=0)
    assert got.bias.tolist() == [np.median(y)]
    batches = (b for f in files for b in pq.ParquetFile(f).iter_batches())
    got = kbi.ClassPriorBias.from_dataset(batches, target="animal",
                                          classes=CLASSES, verbose=0)
    np.testing.assert_allclose(got.priors, np.bincount(values["label"]) / N)


def test_sample_weight_names_the_key_of_dict_elements(values):
    import tensorflow as tf

    y, w = values["price"], values["w"]
    want = [np.average(y, weights=w)]
    element = {"y": y, "w": w, "x": values["x1"]}
    dataset = tf.data.Dataset.from_tensor_slices(element).batch(100)
    for data in (element, dataset, [element, element]):
        got = kbi.MeanBias.from_dataset(data, target="y", sample_weight="w",
                                        verbose=0)
        np.testing.assert_allclose(got.bias, want, rtol=1e-12)
    with pytest.raises(ValueError, match=r"names a key of dict elements"):
        kbi.MeanBias.from_dataset((y, y, w), sample_weight="w", verbose=0)
    with pytest.raises(ValueError, match=r"'wt' \(`sample_weight=`\) is not in"):
        kbi.MeanBias.from_dataset(element, target="y", sample_weight="wt")


def test_the_package_imports_neither_pandas_nor_pyarrow():
    """With both blocked from import, the package imports and reads arrays
    and dicts (Keras itself imports pandas when present: a diff of
    `sys.modules` after `import keras` could not tell)."""
    code = (
        "import sys\n"
        "sys.modules['pandas'] = sys.modules['pyarrow'] = None\n"
        "import numpy as np, keras_biasinit as kbi\n"
        "init = kbi.MeanBias.from_dataset({'y': np.arange(4.0), 'w': np.ones(4)},"
        " target='y', sample_weight='w', verbose=0)\n"
        "print(init.bias.tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[1.5]"
