"""keras_biasinit: Keras 3 initializers computed from data.

Output biases that already predict the best constant for the loss
(`ClassPriorBias`, `MeanBias`, `MedianBias`, `QuantileBias`, `HuberBias`) and
well-scaled hidden kernels (`HeScaled`, `Sparse`), computed from a `tf.data` pipeline,
tfds dataset, NumPy array or iterable of batches and kept in the initializer's
config so models save and load. `verify_loss_at_init` checks, before training,
that a model's loss is the one its output bias predicts.
"""

from keras_biasinit.initializers import ClassPriorBias
from keras_biasinit.initializers import HeScaled
from keras_biasinit.initializers import HuberBias
from keras_biasinit.initializers import MeanBias
from keras_biasinit.initializers import MedianBias
from keras_biasinit.initializers import QuantileBias
from keras_biasinit.initializers import Sparse
from keras_biasinit.verify import InitLossCheck
from keras_biasinit.verify import verify_loss_at_init

__version__ = "0.1.0"

__all__ = [
    "ClassPriorBias",
    "HeScaled",
    "HuberBias",
    "InitLossCheck",
    "MeanBias",
    "MedianBias",
    "QuantileBias",
    "Sparse",
    "__version__",
    "verify_loss_at_init",
]
