"""`tf` for the test modules: TensorFlow if installed, else a stand-in that skips.

`make test` also runs the Keras-facing tests where TensorFlow is not installed
(`.venv-notf`, JAX backend). Test modules write `from tests._tf import tf`
instead of `import tensorflow as tf`; without TensorFlow, `tf` is a stand-in
whose attributes are stand-ins too (so `Dataset = tf.data.Dataset` at module
level still imports), and a test skips where it first calls one
(`tf.data.Dataset.from_tensor_slices(...)`) or checks `isinstance` against one.
The module's other tests run. A call at module level skips the whole module.
"""

import pytest

try:
    import tensorflow as tf
except ImportError:
    tf = None

HAS_TF = tf is not None


class _NoTensorFlow:
    """Any attribute is another stand-in; calling one skips the test."""

    def __init__(self, path: str = "tf") -> None:
        self._path = path

    def __getattr__(self, name: str) -> "_NoTensorFlow":
        if name.startswith("__"):
            raise AttributeError(name)
        return _NoTensorFlow(f"{self._path}.{name}")

    def _skip(self, *args, **kwargs):
        pytest.skip(f"needs TensorFlow ({self._path}), which is not installed",
                    allow_module_level=True)

    __call__ = _skip
    __instancecheck__ = _skip
    __iter__ = _skip


if tf is None:
    tf = _NoTensorFlow()
