"""TensorFlow, imported only on the paths that need it.

`keras_biasinit` needs only `keras` and `numpy`: it runs on every Keras backend
with TensorFlow absent. TensorFlow is needed by a `tf.data.Dataset` (or
`tensorflow_datasets`) input, a `tf.distribute` strategy, and Keras's own
TensorFlow backend, and comes with the `[tensorflow]` extra.

Modules that handle those inputs write `from keras_biasinit._optional import
tensorflow as tf`: a stand-in that imports TensorFlow on its first attribute
access (as Keras's own `module_utils.tensorflow` does), or raises an ImportError
that says what to install. The `is_tf_*` checks never import it: a value can be
a TensorFlow object only if TensorFlow is already in `sys.modules`.

Example:

>>> is_tf_dataset([1, 2, 3])
False
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["INSTALL_TENSORFLOW", "tensorflow", "is_tf_dataset", "is_tf_tensor",
           "is_tf_composite"]

INSTALL_TENSORFLOW = 'pip install "keras-biasinit[tensorflow]"'


class _LazyTensorFlow:
    """`tensorflow`, imported on first use, with a clear error if absent."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and doctest probe these
            raise AttributeError(name)
        try:
            module = importlib.import_module("tensorflow")
        except ImportError as error:
            raise ImportError(
                "This input needs TensorFlow (a tf.data.Dataset, a "
                "tensorflow_datasets dataset or a tf.distribute strategy), and "
                f"TensorFlow is not installed. Install it with `{INSTALL_TENSORFLOW}`"
                ", or pass NumPy arrays, a keras.utils.PyDataset or an iterable of "
                "batches instead, which need no TensorFlow."
            ) from error
        return getattr(module, name)

    def __repr__(self) -> str:
        return "<TensorFlow, imported on first use>"


tensorflow = _LazyTensorFlow()


def loaded_tensorflow() -> Any:
    """The `tensorflow` module if something already imported it, else None."""
    return sys.modules.get("tensorflow")


def is_tf_dataset(value: Any) -> bool:
    """Whether `value` is a `tf.data.Dataset` (without importing TensorFlow)."""
    tf = loaded_tensorflow()
    return tf is not None and isinstance(value, tf.data.Dataset)


def is_tf_tensor(value: Any) -> bool:
    """Whether `value` is a dense `tf.Tensor` (without importing TensorFlow)."""
    tf = loaded_tensorflow()
    return tf is not None and isinstance(value, tf.Tensor)


def is_tf_composite(value: Any) -> bool:
    """Whether `value` is a ragged or sparse TensorFlow tensor."""
    tf = loaded_tensorflow()
    return tf is not None and isinstance(value, (tf.RaggedTensor, tf.SparseTensor))
