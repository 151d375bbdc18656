"""One worker of the multi-worker test (tests/test_distribute.py).

Run as `python tests/_multi_worker.py OUT.json` with `TF_CONFIG` naming this
worker. Reads its own shard of the data of `shard_data` (as a
MultiWorkerMirroredStrategy input pipeline would), computes every initializer
with the strategy, adapts a two-head model built in its scope
(`adapt_heads`), builds a Dense layer in its scope, and writes what it got
as JSON. The last step is a shard with a NaN on worker 1: both workers must
raise (not hang).
"""

import contextlib
import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras_biasinit as kbi  # noqa: E402

TINY = 64 * 2**10  # forces the multi-pass order statistics


def shard_data(worker, workers=2):
    """Worker i's shard of one dataset (unequal sizes, different values)."""
    rng = np.random.default_rng(100 + worker)
    n = 3000 if worker == 0 else 1700
    x = rng.normal(3.0 * (worker + 1), 2.0, (n, 4)).astype("float32")
    ids = rng.choice(4, n, p=[0.6, 0.2, 0.15, 0.05] if worker else [0.1] * 3 + [0.7])
    multi = (rng.random((n, 3)) < [0.1, 0.5, 0.9 - 0.5 * worker]).astype("float32")
    y = np.column_stack([rng.standard_t(3, n) * 5 + 100 * (worker + 1),
                         rng.integers(0, 5, n) * 1.0])
    w = rng.integers(1, 4, n) * 0.5
    return {"x": x, "ids": ids, "multi": multi, "y": y, "w": w}


def _numbers(init):
    config = init.get_config()
    return {k: v for k, v in config.items() if k not in ("seed",)}


def compute(strategy, data):
    """Every initializer from `data`, with `strategy` (None: one process)."""
    x, y, w = data["x"], data["y"], data["w"]
    ds = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(128)
    out = {}
    out["prior"] = kbi.ClassPriorBias.from_dataset(
        (x, data["ids"], w), num_classes=4, strategy=strategy, verbose=0)
    out["sigmoid"] = kbi.ClassPriorBias.from_dataset(
        (x, data["multi"]), activation="sigmoid", strategy=strategy, verbose=0)
    out["he"] = kbi.HeScaled.from_dataset(ds, strategy=strategy, verbose=0, seed=1)
    scope = contextlib.nullcontext() if strategy is None else strategy.scope()
    with scope:  # found from the scope, not passed
        out["mean"] = kbi.MeanBias.from_dataset(ds, verbose=0)
        out["median"] = kbi.MedianBias.from_dataset(ds, verbose=0)
        out["median_tiny"] = kbi.MedianBias.from_dataset(
            ds, memory_budget=TINY, verbose=0)
    out["quantile_tiny"] = kbi.QuantileBias.from_dataset(
        ds, q=0.9, memory_budget=TINY, strategy=strategy, verbose=0)
    out["huber_tiny"] = kbi.HuberBias.from_dataset(
        ds, delta=2.0, memory_budget=TINY, strategy=strategy, verbose=0)
    return out


def adapt_heads(strategy, data):
    """A two-head model (softmax cross-entropy, MAE on two columns with a
    multi-pass budget) built in `strategy`'s scope and adapted on `data`:
    each head's initializer config and the bias the model then holds."""
    import keras

    scope = contextlib.nullcontext() if strategy is None else strategy.scope()
    ds = tf.data.Dataset.from_tensor_slices(
        (data["x"], (data["ids"], data["y"]), data["w"])).batch(128)
    with scope:
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(3, activation="relu")(inputs)
        cls = keras.layers.Dense(4, activation="softmax", name="cls")(hidden)
        reg = keras.layers.Dense(2, name="reg")(hidden)
        model = keras.Model(inputs, [cls, reg])
        model.compile(loss=["sparse_categorical_crossentropy", "mae"])
        inits = kbi.adapt_output_bias(model, ds, memory_budget=TINY,
                                      strategy=strategy, verbose=0)
    return {name: {"config": _numbers(init), "bias": keras.ops.convert_to_numpy(
        model.get_layer(name).bias).tolist()} for name, init in inits.items()}


def adapt_scales(strategy, data):
    """An MLP with seeded kernels, built in `strategy`'s scope: its kernel
    gains from `adapt_kernel_scales` on `data`, in layer order."""
    import keras

    scope = contextlib.nullcontext() if strategy is None else strategy.scope()
    ds = tf.data.Dataset.from_tensor_slices((data["x"], data["y"])).batch(128)
    with scope:
        model = keras.Sequential([keras.Input((4,))] + [
            keras.layers.Dense(8, activation=activation,
                               kernel_initializer=keras.initializers.RandomNormal(
                                   seed=seed))
            for seed, activation in enumerate(["relu", "tanh", None])])
        gains = kbi.adapt_kernel_scales(model, ds, strategy=strategy, verbose=0)
    return [gains[layer.name] for layer in model.layers]


def main(path):
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    worker = strategy.cluster_resolver.task_id
    data = shard_data(worker)
    result = {"worker": worker}
    result.update({k: _numbers(v) for k, v in compute(strategy, data).items()})
    result["adapt"] = adapt_heads(strategy, data)
    result["scales"] = adapt_scales(strategy, data)
    with strategy.scope():
        import keras

        layer = keras.layers.Dense(2, bias_initializer=kbi.MeanBias.from_dataset(
            (data["x"], data["y"]), verbose=0))
        layer.build((None, 4))
    result["dense_bias"] = keras.ops.convert_to_numpy(layer.bias).tolist()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        local = kbi.MeanBias.from_dataset(data["y"], verbose=0)  # no strategy
    result["local_mean"] = local.bias.tolist()
    result["warning"] = " ".join(str(c.message) for c in caught)
    bad = data["y"].copy()
    if worker == 1:
        bad[5, 0] = np.nan
    try:
        kbi.MeanBias.from_dataset(bad, strategy=strategy, verbose=0)
        result["failure"] = None
    except Exception as error:  # noqa: BLE001 - the test reads it
        result["failure"] = f"{type(error).__name__}: {error}"
    with open(path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
