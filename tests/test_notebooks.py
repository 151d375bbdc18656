"""The notebooks run top to bottom, in a reduced-size mode, and get the numbers right.

Each notebook has a cell tagged "parameters" with its full-run defaults; the test
inserts a cell after it (papermill-style) that sets `FAST = True` and, for the
tfds path, enters `tfds.testing.mock_data` and sets `DATASET = "cifar10"`. A
last injected cell prints the notebook's `summary` as JSON, which is checked
against NumPy / SciPy here.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
MARKER = "SUMMARY_JSON:"

pytestmark = [pytest.mark.slow, pytest.mark.keras]


def _execute(name, inject, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    tagged = [
        i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])
    ]
    assert len(tagged) == 1, "each notebook needs exactly one 'parameters' cell"
    nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(inject))
    nb.cells.append(
        nbformat.v4.new_code_cell(
            f"import json\nprint({MARKER!r}, json.dumps(summary))"
        )
    )
    client = nbclient.NotebookClient(
        nb, timeout=180, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", output
            if output.output_type == "stream" and MARKER in output.text:
                line = output.text.split(MARKER, 1)[1].strip().splitlines()[0]
                return nb, json.loads(line)
    raise AssertionError("the notebook printed no summary")


def test_notebooks_are_stored_without_outputs():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name
    assert len(list(NOTEBOOKS.glob("*.ipynb"))) >= 2


def _check_classification(summary):
    counts = np.array(summary["counts"], dtype=np.float64)
    freq = counts / counts.sum()
    np.testing.assert_allclose(summary["priors"], freq, rtol=1e-9)
    entropy = scipy.stats.entropy(freq)
    assert summary["expected_loss"] == pytest.approx(entropy, rel=1e-6)
    # One class kept whole, the others subsampled to about 1/10 of it.
    others = np.delete(counts, 0)
    assert counts[0] >= 5 * others.max()
    variants = summary["variants"]
    # Zero final kernel: the model outputs softmax(log F) = F for every input, so
    # the measured loss at init is the entropy itself.
    assert variants["prior bias, zero kernel"]["at_init"] == pytest.approx(
        entropy, rel=1e-4
    )
    # The default (zero) bias starts above the best constant.
    assert variants["default bias"]["at_init"] > entropy
    return counts


def test_imbalanced_classification_digits(tmp_path, monkeypatch):
    _, summary = _execute(
        "imbalanced_classification.ipynb", "FAST = True", tmp_path, monkeypatch
    )
    assert summary["dataset"] == "digits"
    assert summary["image_shape"] == [8, 8, 1]
    counts = _check_classification(summary)
    # 80% of the 178 zeros of the bundled digits.
    assert counts[0] == pytest.approx(0.8 * 178, abs=1)


def test_imbalanced_classification_cifar10_path_with_mock_tfds(tmp_path, monkeypatch):
    inject = (
        "import tensorflow_datasets as tfds\n"
        "_mock = tfds.testing.mock_data(num_examples=400)\n"
        "_mock.__enter__()\n"
        'DATASET = "cifar10"\n'
        "FAST = True"
    )
    _, summary = _execute("imbalanced_classification.ipynb", inject, tmp_path,
                          monkeypatch)
    assert summary["dataset"] == "cifar10"
    assert summary["num_classes"] == 10
    assert summary["image_shape"] == [32, 32, 3]
    _check_classification(summary)


def test_regression_outliers(tmp_path, monkeypatch):
    _, summary = _execute("regression_outliers.ipynb", "FAST = True", tmp_path,
                          monkeypatch)
    y = np.array(summary["y_train"], dtype=np.float64)
    delta = summary["delta"]
    n_outliers = summary["n_outliers"]
    # Independently: the same split of the bundled data, with exactly
    # `n_outliers` targets made 10x too large.
    x_all, y_all = load_diabetes(return_X_y=True)
    _, _, clean, _ = train_test_split(x_all, y_all, test_size=0.2, random_state=0)
    changed = ~np.isclose(y, clean)
    assert n_outliers > 0 and changed.sum() == n_outliers
    np.testing.assert_allclose(y[changed], 10 * clean[changed], rtol=1e-6)
    median = np.median(y)

    def huber_mean(b):
        r = np.abs(y - b)
        return np.mean(np.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta)))

    best = scipy.optimize.minimize_scalar(
        huber_mean, bounds=(y.min(), y.max()), method="bounded",
        options={"xatol": 1e-9},
    )
    reference = {
        "mse": (np.mean(y), np.var(y)),
        "mae": (median, np.mean(np.abs(y - median))),
        "huber": (best.x, best.fun),
    }
    for loss, (bias, expected) in reference.items():
        got = summary["losses"][loss]
        assert got["bias"] == pytest.approx(bias, rel=1e-5), loss
        assert got["expected_loss"] == pytest.approx(expected, rel=1e-5), loss
        # Measured by model.evaluate with the final kernel zeroed: the bias alone.
        assert got["zero_kernel_loss"] == pytest.approx(expected, rel=1e-4), loss
        assert got["default_at_init"] > got["zero_kernel_loss"], loss
    # The outliers pull the mean far above the median; Huber lies in between.
    assert median < summary["losses"]["huber"]["bias"] < np.mean(y)
    # A MeanBias (expected_loss: the variance) with an MAE loss is caught.
    assert summary["mismatch_ok"] is False
    assert "another loss" in summary["mismatch_message"]


def test_network_scales(tmp_path, monkeypatch):
    _, summary = _execute("network_scales.ipynb", "FAST = True", tmp_path,
                          monkeypatch)
    # Independently: the same split of the bundled raw features.
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x_train, _, _, _ = train_test_split(x.astype("float32"), y, test_size=0.2,
                                        random_state=0, stratify=y)
    assert summary["n_train"] == len(x_train)
    assert summary["x_second_moment"] == pytest.approx(
        np.mean(x_train.astype(np.float64) ** 2), rel=1e-9)
    depth = summary["depth"]
    assert len(summary["after"]) == depth + 1
    hidden = np.array(summary["after"][:depth])
    # Every hidden layer at the target on held-out rows; the defaults were not.
    assert np.all((hidden >= 0.8) & (hidden <= 1.25)), hidden
    before = np.array(summary["before"][:depth])
    assert np.max(np.abs(np.log(before))) > np.log(10)
    # The output kernel is only scaled down; the sigmoid of ~0 is ~0.5.
    assert 0 < summary["gains"][-1] < 1
    assert summary["after"][-1] == pytest.approx(0.25, rel=0.1)
    # A clone draws new kernels of the same scale: each layer's E[W^2].
    ratio = np.array(summary["clone_kernel_ms"]) / np.array(summary["kernel_ms"])
    assert np.all((ratio > 0.8) & (ratio < 1.25)), ratio
    assert len(summary["clone_after"]) == depth + 1
