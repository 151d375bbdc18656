"""The Keras initializers: thin, serializable classes that hold numbers."""

from keras_biasinit.initializers._base import BiasInitializer
from keras_biasinit.initializers.class_prior_bias import ClassPriorBias
from keras_biasinit.initializers.he_scaled import HeScaled
from keras_biasinit.initializers.huber_bias import HuberBias
from keras_biasinit.initializers.mean_bias import MeanBias
from keras_biasinit.initializers.median_bias import MedianBias
from keras_biasinit.initializers.quantile_bias import QuantileBias
from keras_biasinit.initializers.sparse import Sparse

__all__ = [
    "BiasInitializer",
    "ClassPriorBias",
    "HeScaled",
    "HuberBias",
    "MeanBias",
    "MedianBias",
    "QuantileBias",
    "Sparse",
]
