"""The five small models the network tests adapt, each with its data and loss.

Each builder takes a NumPy generator and returns `(model, x, y, loss)`, with
raw, unnormalised features, so that no default initializer is at the target.
"""

import keras
import numpy as np

L = keras.layers


def mlp(rng):
    scale = np.array([1, 10, 100, 1000, 1, 1, 5, 50, 0.1, 3])
    x = (rng.normal(size=(2000, 10)) * scale + 20).astype("float32")
    y = (x[:, 3:4] > 20).astype("float32")
    inputs = keras.Input((10,))
    h = inputs
    for _ in range(6):
        h = L.Dense(32, activation="relu")(h)
    model = keras.Model(inputs, L.Dense(1, activation="sigmoid")(h))
    return model, x, y, "binary_crossentropy"


def cnn(rng):
    x = (rng.random((240, 10, 10, 3)) * 255).astype("float32")
    y = rng.integers(0, 3, size=240)
    inputs = keras.Input((10, 10, 3))
    h = L.Conv2D(8, 3, activation="relu")(inputs)
    h = L.DepthwiseConv2D(3, activation="relu")(h)
    h = L.SeparableConv2D(8, 3, activation="relu")(h)
    h = L.Flatten()(L.MaxPooling2D()(h))
    h = L.Dense(16, activation="tanh", bias_initializer="ones")(h)  # iterated
    model = keras.Model(inputs, L.Dense(3, activation="softmax")(h))
    return model, x, y, "sparse_categorical_crossentropy"


def resnet(rng):
    x = (rng.normal(size=(2000, 8)) * 30 + 5).astype("float32")
    y = (x.sum(1, keepdims=True) + 100).astype("float32")
    inputs = keras.Input((8,))
    h = L.Dense(16, activation="relu")(inputs)
    for _ in range(3):
        branch = L.Dense(16)(L.Dense(16, activation="relu")(h))
        h = L.Add()([h, branch])
    model = keras.Model(inputs, L.Dense(1)(h))
    return model, x, y, "mse"


def transformer(rng):
    x = (rng.normal(size=(192, 6, 8)) * 3).astype("float32")
    # About 1 in 6 positive: the default zero bias is then far from the best
    # constant whatever the kernels draw, so adapt_model visibly moves the loss.
    y = (x[:, 0, :1] > 3).astype("float32")
    inputs = keras.Input((6, 8))
    attention = L.MultiHeadAttention(2, 4)(inputs, inputs)
    h = L.LayerNormalization()(L.Add()([inputs, attention]))
    ffn = L.Dense(8)(L.Dense(16, activation="relu")(h))
    h = L.LayerNormalization()(L.Add()([h, ffn]))
    h = L.GlobalAveragePooling1D()(h)
    model = keras.Model(inputs, L.Dense(1, activation="sigmoid")(h))
    return model, x, y, "binary_crossentropy"


def embedding(rng):
    x = rng.integers(0, 40, size=(400, 7)).astype("int32")
    y = (x[:, :1] / 10.0 + 3).astype("float32")
    inputs = keras.Input((7,), dtype="int32")
    h = L.Flatten()(L.Embedding(40, 8)(inputs))
    h = L.Dense(16, activation="relu")(h)
    model = keras.Model(inputs, L.Dense(1)(h))
    return model, x, y, "mse"


BUILDERS = [mlp, cnn, resnet, transformer, embedding]
