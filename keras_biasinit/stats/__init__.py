"""Statistics: mergeable, exact, pure NumPy (no Keras, no TensorFlow).

Each statistic consumes NumPy `(values, weights)` batches, as produced by
`keras_biasinit.data.read_batches`, and never needs the whole dataset at once
unless its docstring says so.
"""

from keras_biasinit.stats.class_counts import ClassCounts
from keras_biasinit.stats.class_counts import binary_cross_entropy
from keras_biasinit.stats.class_counts import cross_entropy
from keras_biasinit.stats.huber import HuberResult
from keras_biasinit.stats.huber import huber_location
from keras_biasinit.stats.huber import huber_loss
from keras_biasinit.stats._passes import DEFAULT_MEMORY_BUDGET
from keras_biasinit.stats.median import MedianResult
from keras_biasinit.stats.median import weighted_median
from keras_biasinit.stats.moments import Moments
from keras_biasinit.stats.moments import SecondMoment

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "ClassCounts",
    "HuberResult",
    "MedianResult",
    "Moments",
    "SecondMoment",
    "binary_cross_entropy",
    "cross_entropy",
    "huber_location",
    "huber_loss",
    "weighted_median",
]
