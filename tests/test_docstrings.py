"""The Examples: in every public docstring run, and print what they say."""

import doctest
import importlib

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.keras  # runs under every backend (conftest.py)

MODULES_WITH_EXAMPLES = [
    "keras_biasinit.data.reading",
    "keras_biasinit.data.columnar",
    "keras_biasinit.data.columns",
    "keras_biasinit.stats.class_counts",
    "keras_biasinit.stats.moments",
    "keras_biasinit.stats.second_moment",
    "keras_biasinit.stats.label_values",
    "keras_biasinit.initializers.class_prior_bias",
    "keras_biasinit.initializers.mean_bias",
    "keras_biasinit.initializers.median_bias",
    "keras_biasinit.initializers.quantile_bias",
    "keras_biasinit.stats.quantile",
    "keras_biasinit.stats.state",
    "keras_biasinit.initializers.huber_bias",
    "keras_biasinit.initializers.he_scaled",
    "keras_biasinit.initializers.sparse",
    "keras_biasinit.verify",
    "keras_biasinit.best_constant._state",
    "keras_biasinit.adapt",
    "keras_biasinit.best_constant.spec",
    "keras_biasinit.data.outputs",
    "keras_biasinit.data.prune",
    "keras_biasinit.stats.buffer",
    "keras_biasinit.stats.focal",
    "keras_biasinit.stats.log_cosh",
    "keras_biasinit.stats._huber_radix",
    "keras_biasinit.stats._gathered",
    "keras_biasinit.stats._huber_memory",
    "keras_biasinit.stats._positions",
    "keras_biasinit.stats._regions",
    "keras_biasinit.initializers.constant_bias",
    "keras_biasinit.initializers.focal_bias",
    "keras_biasinit.initializers.link_bias",
    "keras_biasinit.data.loss_elements",
    "keras_biasinit.best_constant.counting",
    "keras_biasinit.loss_view",
    "keras_biasinit._optional",
    "keras_biasinit.data.torch_inputs",
    "keras_biasinit.initializers.rescaled",
    "keras_biasinit.network._solve",
    "keras_biasinit.network.kernel_scales",
    "keras_biasinit.network.adapt_model",
    "keras_biasinit.initializers.mapped_bias",
    "keras_biasinit.heads.preserving",
    "keras_biasinit.heads.units",
    "keras_biasinit.heads.trace",
    "keras_biasinit.heads.arguments",
    "keras_biasinit.heads.find",
    "keras_biasinit.stats._row_sample",
    "keras_biasinit.stats._huber_bounds",
    "keras_biasinit.stats._huber_solve",
]
#: Modules that exist for TensorFlow inputs only (tf.data graph rewrites).
NEEDS_TENSORFLOW = {"keras_biasinit.data.prune"}


@pytest.mark.parametrize("name", MODULES_WITH_EXAMPLES)
def test_docstring_examples(name):
    if name in NEEDS_TENSORFLOW:
        pytest.importorskip("tensorflow")
    module = importlib.import_module(name)
    # Examples assume `import numpy as np` and `import keras`, as in Keras.
    result = doctest.testmod(module, extraglobs={"np": np, "keras": keras},
                             optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
