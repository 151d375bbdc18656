"""Statistics: mergeable, exact, pure NumPy (no Keras, no TensorFlow).

Each statistic is a state of one protocol (`keras_biasinit.stats.state`):
`update(values, weights)` with NumPy batches, as produced by
`keras_biasinit.data.read_batches`; `merge(other)`; `result()`; and a
plain-array form for the engines that merge shards. None needs the whole
dataset at once; the exact order statistics (quantile, median, Huber
location) take a few passes when the data exceed `memory_budget`.
"""

from keras_biasinit.stats._budget import DEFAULT_MEMORY_BUDGET
from keras_biasinit.stats.class_counts import ClassCounts
from keras_biasinit.stats.class_counts import CountsResult
from keras_biasinit.stats.class_counts import binary_cross_entropy
from keras_biasinit.stats.class_counts import cross_entropy
from keras_biasinit.stats.huber import HuberResult
from keras_biasinit.stats.huber import huber_location
from keras_biasinit.stats.huber import huber_loss
from keras_biasinit.stats.median import MedianResult
from keras_biasinit.stats.median import weighted_median
from keras_biasinit.stats.moments import Moments
from keras_biasinit.stats.moments import MomentsResult
from keras_biasinit.stats.quantile import QuantileResult
from keras_biasinit.stats.quantile import weighted_quantile
from keras_biasinit.stats.second_moment import SecondMoment
from keras_biasinit.stats.second_moment import SecondMomentResult
from keras_biasinit.stats.state import Reducer
from keras_biasinit.stats.state import State
from keras_biasinit.stats.state import run_pass

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "ClassCounts",
    "CountsResult",
    "HuberResult",
    "MedianResult",
    "Moments",
    "MomentsResult",
    "QuantileResult",
    "Reducer",
    "SecondMoment",
    "SecondMomentResult",
    "State",
    "binary_cross_entropy",
    "cross_entropy",
    "huber_location",
    "huber_loss",
    "run_pass",
    "weighted_median",
    "weighted_quantile",
]
