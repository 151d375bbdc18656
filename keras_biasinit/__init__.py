"""keras_biasinit: Keras 3 initializers computed from data.

Output biases that already predict the best constant for the loss
(`ClassPriorBias`, `MeanBias`, `MedianBias`, `QuantileBias`, `HuberBias`) and
well-scaled hidden kernels (`HeScaled`, `Sparse`), computed from a `tf.data` pipeline,
tfds dataset, NumPy array or iterable of batches and kept in the initializer's
config so models save and load. `adapt_output_bias` sets every output bias
of a compiled model to its loss's best constant in one pass over the data;
`verify_loss_at_init` checks, before training, that a model's loss is the one
its output bias predicts.
"""

from keras_biasinit.adapt import adapt_output_bias
from keras_biasinit.initializers import ClassPriorBias
from keras_biasinit.initializers import ConstantBias
from keras_biasinit.initializers import FocalBias
from keras_biasinit.initializers import HeScaled
from keras_biasinit.initializers import HuberBias
from keras_biasinit.initializers import LinkBias
from keras_biasinit.initializers import MappedBias
from keras_biasinit.initializers import MeanBias
from keras_biasinit.initializers import MedianBias
from keras_biasinit.initializers import QuantileBias
from keras_biasinit.initializers import Rescaled
from keras_biasinit.initializers import Sparse
from keras_biasinit.network import adapt_kernel_scales
from keras_biasinit.network import adapt_model
from keras_biasinit.verify import InitLossCheck
from keras_biasinit.verify import verify_loss_at_init

__version__ = "0.1.0"

__all__ = [
    "ClassPriorBias",
    "ConstantBias",
    "FocalBias",
    "HeScaled",
    "HuberBias",
    "InitLossCheck",
    "LinkBias",
    "MappedBias",
    "MeanBias",
    "MedianBias",
    "QuantileBias",
    "Rescaled",
    "Sparse",
    "__version__",
    "adapt_kernel_scales",
    "adapt_model",
    "adapt_output_bias",
    "verify_loss_at_init",
]
