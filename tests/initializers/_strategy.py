"""A check shared by the weight-initializer tests: building under a strategy."""

import keras
import numpy as np


def assert_mirrored_kernel_and_fit(strategy, init, x, y):
    """A Dense kernel made by `init` inside `strategy.scope()` is the same on
    every replica and equals `init` called directly; one `fit` epoch runs."""
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((x.shape[1],)),
                keras.layers.Dense(16, activation="relu", kernel_initializer=init),
                keras.layers.Dense(1),
            ]
        )
        model.compile(optimizer="sgd", loss="mse")
    replicas = [
        keras.ops.convert_to_numpy(r)
        for r in strategy.experimental_local_results(model.layers[0].kernel.value)
    ]
    assert len(replicas) == 2
    np.testing.assert_array_equal(replicas[0], replicas[1])
    direct = keras.ops.convert_to_numpy(init((x.shape[1], 16)))
    np.testing.assert_array_equal(replicas[0], direct)
    model.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
