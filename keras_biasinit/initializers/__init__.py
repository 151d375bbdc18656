"""The Keras initializers: thin, serializable classes that hold numbers."""

from keras_biasinit.initializers._base import BiasInitializer
from keras_biasinit.initializers.class_prior_bias import ClassPriorBias
from keras_biasinit.initializers.constant_bias import ConstantBias
from keras_biasinit.initializers.focal_bias import FocalBias
from keras_biasinit.initializers.he_scaled import HeScaled
from keras_biasinit.initializers.huber_bias import HuberBias
from keras_biasinit.initializers.link_bias import LinkBias
from keras_biasinit.initializers.mapped_bias import MappedBias
from keras_biasinit.initializers.mean_bias import MeanBias
from keras_biasinit.initializers.median_bias import MedianBias
from keras_biasinit.initializers.quantile_bias import QuantileBias
from keras_biasinit.initializers.rescaled import Rescaled
from keras_biasinit.initializers.sparse import Sparse

__all__ = [
    "BiasInitializer",
    "ClassPriorBias",
    "ConstantBias",
    "FocalBias",
    "HeScaled",
    "HuberBias",
    "LinkBias",
    "MappedBias",
    "MeanBias",
    "MedianBias",
    "QuantileBias",
    "Rescaled",
    "Sparse",
]
