"""Shared test set-up, for every Keras backend the suite runs under.

`make test` runs the suite three times: everything under TensorFlow, then the
tests marked `keras` (the modules that use Keras) under `KERAS_BACKEND=jax`, in
the same environment and again in one without TensorFlow (`.venv-notf`);
`make test-torch` runs them under `KERAS_BACKEND=torch`. Keras picks its backend
when it is first imported, so the choice is made here, before any test module
imports it. TensorFlow, where installed, is imported under every backend (the
tests build `tf.data` inputs with it); where it is not, the tests that need it
skip (tests/_tf.py).

Under TensorFlow, TF must be told about two logical CPU devices (for the
MirroredStrategy tests) before it initialises its devices; under JAX, XLA is
asked for two host devices (for `keras.distribution.DataParallel`) before JAX
is imported. Both happen here, at import, before any test module runs an op.
"""

import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("KERAS_BACKEND") == "jax":
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from tests._tf import HAS_TF  # noqa: E402
from tests._tf import tf  # noqa: E402

if HAS_TF:
    _cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )

import keras  # noqa: E402

BACKEND = keras.backend.backend()


def pytest_report_header(config):
    tf_version = tf.__version__ if HAS_TF else "not installed"
    return (f"keras backend: {BACKEND} (keras {keras.__version__}); "
            f"tensorflow: {tf_version}")


#: `make test` runs the Keras-facing tests without TensorFlow first, with this
#: set to a file: the tests that skipped for want of TensorFlow (or of a package
#: that needs it) are listed there, one node id a line, and run again under JAX
#: beside TensorFlow (`pytest @file`).
_SKIPS_FILE = os.environ.get("KBI_RECORD_TF_SKIPS")
_NEEDS_TF = re.compile(
    r"needs TensorFlow|could not import "
    r"'(tensorflow|tensorflow_datasets|keras_hub|grain)'"
)


def _record_tf_skip(report):
    if not (_SKIPS_FILE and report.skipped):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(
        report.longrepr)
    if _NEEDS_TF.search(reason):
        with open(_SKIPS_FILE, "a", encoding="utf-8") as f:
            f.write(report.nodeid + "\n")


def pytest_runtest_logreport(report):
    _record_tf_skip(report)


def pytest_collectreport(report):
    _record_tf_skip(report)


def pytest_runtest_setup(item):
    if BACKEND != "tensorflow" and item.get_closest_marker("tf_only"):
        pytest.skip(f"TensorFlow-only by nature (tf.function graphs); "
                    f"backend is {BACKEND}")


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
    Under another backend the test is skipped: `tf.distribute` strategies hold
    TensorFlow variables only (tests/test_backends.py covers JAX's
    `keras.distribution.DataParallel`).
    """
    if BACKEND != "tensorflow":
        pytest.skip(f"tf.distribute strategies are TensorFlow-only; backend is "
                    f"{BACKEND}")
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(autouse=True)
def _float64(request):
    """Tests marked `float64` get float64 tensors under JAX too.

    JAX has no float64 unless `jax_enable_x64` is on (Keras's own initializers
    then truncate to float32 with a warning), so these tests turn it on for
    their duration, as a JAX user who wants float64 does.
    """
    if BACKEND == "jax" and request.node.get_closest_marker("float64"):
        import jax

        with jax.enable_x64(True):
            yield
    else:
        yield


@pytest.fixture(autouse=True)
def _keras_state():
    """Each test starts with float32 and no leftover Keras state."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
    # free_memory=False skips gc.collect(), which costs ~0.45 s per test.
    keras.backend.clear_session(free_memory=False)
