"""TensorFlow is optional: imported only by the inputs that need it.

`make test` runs this module (like every `keras` module) under TensorFlow,
under JAX beside TensorFlow, and under JAX in `.venv-notf`, where TensorFlow is
not installed (`KBI_NO_TENSORFLOW=1` there); `make test-torch` under torch.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_biasinit as kbi
from keras_biasinit.data import read_batches

pytestmark = pytest.mark.keras

BACKEND = keras.backend.backend()
INSTALL = 'pip install "keras-biasinit[tensorflow]"'


def test_the_no_tensorflow_run_has_no_tensorflow():
    if not os.environ.get("KBI_NO_TENSORFLOW"):
        pytest.skip("KBI_NO_TENSORFLOW is not set: TensorFlow may be installed")
    assert importlib.util.find_spec("tensorflow") is None


_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    import keras_biasinit as kbi

    assert "tensorflow" not in sys.modules, "import keras_biasinit imported TF"
    x, y = np.zeros((10, 2), "float32"), np.arange(10.0)
    init = kbi.MedianBias.from_dataset((x, y), verbose=0)
    prior = kbi.ClassPriorBias.from_dataset([(x, np.arange(10) % 3)], verbose=0)
    layer = keras.layers.Dense(1, bias_initializer=init)
    layer.build((None, 2))
    assert "tensorflow" not in sys.modules, "a NumPy path imported TF"
    print(float(keras.ops.convert_to_numpy(layer.bias)[0]), prior.bias.size)
""")


def test_numpy_paths_do_not_import_tensorflow_even_where_installed():
    # A fresh process: this one has TensorFlow loaded wherever it is installed.
    if BACKEND == "tensorflow":
        pytest.skip("Keras's TensorFlow backend imports TensorFlow itself")
    result = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True,
                            text=True, env=dict(os.environ, KERAS_BACKEND=BACKEND),
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["4.5", "3"]  # np.median(arange(10)), 3 classes


@pytest.fixture
def no_tensorflow(monkeypatch):
    """TensorFlow made unimportable (None in sys.modules) for one test."""
    monkeypatch.setitem(sys.modules, "tensorflow", None)


def test_a_strategy_without_tensorflow_says_what_to_install(no_tensorflow):
    with pytest.raises(ImportError, match=r"tf\.distribute") as error:
        kbi.MeanBias.from_dataset(np.arange(4.0), strategy=object(), verbose=0)
    assert INSTALL in str(error.value)


def test_the_lazy_module_without_tensorflow_says_what_to_install(no_tensorflow):
    from keras_biasinit._optional import tensorflow as tf

    with pytest.raises(ImportError, match=r"tf\.data\.Dataset") as error:
        tf.data.Dataset.range(3)
    assert INSTALL in str(error.value)


def test_numpy_inputs_work_without_tensorflow(no_tensorflow):
    y = np.array([3.0, 1.0, 2.0, 10.0])
    assert kbi.MedianBias.from_dataset(y, verbose=0).bias.tolist() == [2.5]
    batches = read_batches([(np.zeros((2, 1)), y[:2]), (np.zeros((2, 1)), y[2:])],
                           verbose=0)
    assert [v.tolist() for v, _ in batches] == [[3.0, 1.0], [2.0, 10.0]]


def test_tf_config_warning_needs_no_tensorflow(no_tensorflow, monkeypatch):
    # Several workers named, no strategy: the numbers are this shard's alone.
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1", "b:2"]}, '
                                    '"task": {"type": "worker", "index": 0}}')
    with pytest.warns(UserWarning, match="TF_CONFIG names several workers"):
        init = kbi.MeanBias.from_dataset(np.array([1.0, 2.0, 6.0]), verbose=0)
    assert init.bias.tolist() == [3.0]
