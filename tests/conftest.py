"""Shared test set-up.

TensorFlow must be told about the two logical CPU devices (for the
MirroredStrategy tests) before it initialises its devices, so it happens here,
at import, before any test module runs an op.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator per test."""
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def two_cpu_strategy():
    """A MirroredStrategy over the two logical CPUs configured above.

    One per session: a second MirroredStrategy in the same process reuses the
    collective instance keys of the first, so `fit` in two tests with different
    models fails ("Shape mismatch in the collective instance 100").
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(autouse=True)
def _keras_state():
    """Each test starts with float32 and no leftover Keras state."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
    # free_memory=False skips gc.collect(), which costs ~0.45 s per test.
    keras.backend.clear_session(free_memory=False)
