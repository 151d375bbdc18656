"""`ComputeInitializer` on Arrow batches and DataFrames equals `from_dataset`.

One pipeline (DirectRunner, 2 worker processes: its start-up is the cost)
reads Parquet files written here with `beam.io.ReadFromParquetBatched`, and
computes every statistic from their columns; the same rows as DataFrame
elements and as dict examples (`sample_weight=` naming a key) go through the
same pipeline. Each result is compared with `from_dataset` on the same
Parquet files read by `pyarrow.dataset` (the exact statistics bit for bit)
and with NumPy.
"""

import numpy as np
import pytest

import keras_biasinit as kbi

pytestmark = pytest.mark.keras  # the initializers come back as Keras JSON

beam = pytest.importorskip("apache_beam")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
ds = pytest.importorskip("pyarrow.dataset")
pq = pytest.importorskip("pyarrow.parquet")

from keras_biasinit.beam import ComputeInitializer  # noqa: E402
from tests.stats._batches import TINY  # noqa: E402
from tests.test_beam import Routed  # noqa: E402
from tests.test_beam import assert_same  # noqa: E402
from tests.test_beam import run  # noqa: E402

N = 6000
COLORS = ["red", "green", "blue"]


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(3)
    color = pd.Categorical(rng.choice(COLORS, size=N, p=[0.5, 0.3, 0.2]),
                           categories=["blue", "green", "red"])
    return pa.Table.from_pandas(pd.DataFrame({
        "price": np.round(rng.lognormal(size=N) * 10, 1),
        "w": rng.uniform(0.0, 2.0, size=N),
        "x1": rng.normal(size=N) * 2.0,
        "x2": rng.normal(size=N),
        "color": color,
    }), preserve_index=False)


@pytest.fixture(scope="module")
def parquet_dir(table, tmp_path_factory):
    folder = tmp_path_factory.mktemp("beam_parquet")
    for part in range(2):
        pq.write_table(table.slice(3000 * part, 3000),
                       folder / f"part-{part}.parquet", row_group_size=700)
    return folder


SPECS = {
    "mean_w": (kbi.MeanBias, {"target": "price", "sample_weight": "w"}),
    "means": (kbi.MeanBias, {"target": ["x1", "price"]}),
    "median_tiny": (kbi.MedianBias, {"target": "price", "memory_budget": TINY}),
    "q90_w_tiny": (kbi.QuantileBias, {"target": "price", "q": 0.9,
                                      "sample_weight": "w", "memory_budget": TINY}),
    "huber_w": (kbi.HuberBias, {"target": "price", "delta": 5.0,
                                "sample_weight": "w"}),
    "priors": (kbi.ClassPriorBias, {"target": "color", "classes": COLORS}),
    "he": (kbi.HeScaled, {"features": ["x1", "x2"], "seed": 1}),
}


EXACT = {"median_tiny": ("median",), "q90_w_tiny": ("quantile",),
         "huber_w": ("location",)}


@pytest.fixture(scope="module")
def results(parquet_dir, table, tmp_path_factory):
    frames = [table.slice(i, 1000).to_pandas() for i in range(0, N, 1000)]
    rows = table.select(["price", "w"]).to_pylist()
    examples = [{"y": r["price"], "w": r["w"], "x": np.zeros(2)} for r in rows]

    def make_input(p):
        return {
            "parquet": p | beam.io.ReadFromParquetBatched(
                str(parquet_dir / "*.parquet")),
            "frames": p | "frames" >> beam.Create(frames),
            "dicts": p | "dicts" >> beam.Create(examples),
        }

    # Each statistic unrolls its default stages (median 4, Huber 5; 8 under
    # a 64 MiB budget, as the tiny-budget ones here).
    transforms = {name: Routed("parquet", ComputeInitializer(cls, **options))
                  for name, (cls, options) in SPECS.items()}
    transforms["frames_median"] = Routed("frames", ComputeInitializer(
        kbi.MedianBias, target="price", sample_weight="w", memory_budget=TINY))
    transforms["dicts_mean"] = Routed("dicts", ComputeInitializer(
        kbi.MeanBias, target="y", sample_weight="w"))
    return run(tmp_path_factory.mktemp("beam_out"), make_input, transforms)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_parquet_batches_equal_from_dataset_on_the_files(results, parquet_dir,
                                                         name):
    cls, options = SPECS[name]
    want = cls.from_dataset(ds.dataset(parquet_dir, format="parquet"), verbose=0,
                            **options)
    assert_same(results[name], want, exact=EXACT.get(name, ()))


def test_the_numbers_themselves(results, table):
    y, w = table["price"].to_numpy(), table["w"].to_numpy()
    np.testing.assert_allclose(results["mean_w"].bias, [np.average(y, weights=w)],
                               rtol=1e-12)
    assert results["median_tiny"].bias.tolist() == [np.median(y)]
    counts = np.asarray([np.sum(table["color"].to_numpy(zero_copy_only=False) == c)
                         for c in COLORS])
    np.testing.assert_allclose(results["priors"].priors, counts / N, rtol=1e-12)
    assert_same(results["frames_median"], kbi.MedianBias.from_dataset(
        (y, y, w), verbose=0), exact=("median",))
    np.testing.assert_allclose(results["dicts_mean"].bias,
                               [np.average(y, weights=w)], rtol=1e-12)
