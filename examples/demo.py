"""`make demo`: default (zero) output bias vs the bias computed from data.

Runs on scikit-learn's bundled datasets (no downloads), on CPU, in a few
minutes. For every case, two models are built from the same seed (identical
hidden and output kernels; checked) and trained on the same batches in the same
order with Adam; they differ only in the output layer's `bias_initializer`:
Keras's default zeros vs the keras_biasinit initializer computed on the
training split with `from_dataset`.

Cases:
- digits-10: bundled 8x8 digits, class 0 kept whole, the nine others
  subsampled to about 1:10; a small CNN (He-initialised), softmax,
  sparse categorical cross-entropy, `ClassPriorBias`.
- cancer-binary: bundled breast-cancer data, malignant (the positive class)
  subsampled to about 1:10 against benign; an MLP, sigmoid, binary
  cross-entropy, `ClassPriorBias(activation="sigmoid")`.
- diabetes-mse / -mae / -huber: bundled diabetes data with its unscaled target
  (mean about 152); an MLP, linear output, with `MeanBias` / `MedianBias` /
  `HuberBias`.
- cancer-focal: the same imbalanced breast-cancer data and MLP under
  `BinaryFocalCrossentropy(gamma=2, alpha=0.25, apply_class_balancing=True)`,
  three models side by side: zero bias, the prior logit (`ClassPriorBias`,
  what RetinaNet-style heads use, optimal for cross-entropy only) and the
  focal-optimal bias that `kbi.adapt_output_bias` sets on the compiled model.
  Its output kernel starts at zero in all three (the "init well" recipe), so
  step 0 shows what each bias alone is worth.

Then the whole-network panel (examples/network_panel.py): a deep MLP on raw
breast-cancer features under Keras defaults, he_normal, a HeScaled first
layer and `kbi.adapt_model`, same seeds and batches.

The loss curve is the loss on the whole training split, measured before every
update (so step 0 is the untrained model) and after the last one. The table
reports medians over the seeds; the PNG shows every seed's curve.

Usage: `python examples/demo.py [--seeds 3] [--steps 500] [--out demo_output]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from typing import Callable, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn import datasets  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import keras_biasinit as kbi  # noqa: E402
import network_panel  # noqa: E402  (examples/network_panel.py)

DATA_SEED = 0  # the subsample and the train/validation split; fixed across seeds
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
# Huber's delta in target units (diabetes progression, std about 77): residuals
# beyond 30 count linearly, so the loss is MAE-like for the large residuals of
# an untrained model and MSE-like once it fits. A design choice, not a result.
HUBER_DELTA = 30.0
NETWORK_STEPS = 300  # the whole-network panel (examples/network_panel.py)


@dataclasses.dataclass
class Case:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    build: Callable[[object], keras.Model]  # bias_initializer -> model
    loss: keras.losses.Loss
    make_bias: Callable[[tf.data.Dataset], kbi.initializers.BiasInitializer]
    # Further biases trained side by side: name -> bias (from the training split).
    extra: Callable[[tf.data.Dataset], dict] = lambda ds: {}


def _subsample(labels: np.ndarray, keep_whole: int, rng) -> np.ndarray:
    """Row ids: every row of `keep_whole`, about 1/10 as many of every other label."""
    whole = np.flatnonzero(labels == keep_whole)
    per_label = max(1, round(whole.size / 10))
    parts = [whole] + [
        rng.choice(np.flatnonzero(labels == c), per_label, replace=False)
        for c in np.unique(labels)
        if c != keep_whole
    ]
    return np.sort(np.concatenate(parts))


def _split(x, y, stratify=True):
    return train_test_split(
        x, y, test_size=0.2, random_state=DATA_SEED, stratify=y if stratify else None
    )


def _dense(units, activation=None, **kwargs):
    return keras.layers.Dense(
        units, activation=activation, kernel_initializer="he_normal", **kwargs
    )


def digits_case() -> Case:
    digits = datasets.load_digits()
    rng = np.random.default_rng(DATA_SEED)
    rows = _subsample(digits.target, keep_whole=0, rng=rng)
    x = (digits.images[rows] / 16.0)[..., None].astype("float32")
    y = digits.target[rows].astype("int64")
    x_train, x_val, y_train, y_val = _split(x, y)

    def build(bias):
        return keras.Sequential(
            [
                keras.Input(x.shape[1:]),
                keras.layers.Conv2D(16, 3, activation="relu",
                                    kernel_initializer="he_normal"),
                keras.layers.Conv2D(32, 3, activation="relu",
                                    kernel_initializer="he_normal"),
                keras.layers.Flatten(),
                _dense(32, "relu"),
                keras.layers.Dense(10, activation="softmax", bias_initializer=bias),
            ]
        )

    return Case(
        "digits-10 (1:10)", x_train, y_train, x_val, y_val, build,
        keras.losses.SparseCategoricalCrossentropy(),
        lambda ds: kbi.ClassPriorBias.from_dataset(ds, num_classes=10, verbose=0),
    )


def cancer_case() -> Case:
    cancer = datasets.load_breast_cancer()
    malignant = (cancer.target == 0).astype("int64")  # the positive class
    rng = np.random.default_rng(DATA_SEED)
    rows = _subsample(malignant, keep_whole=0, rng=rng)  # all benign, ~1/10 malignant
    x, y = cancer.data[rows], malignant[rows, None].astype("float32")
    x_train, x_val, y_train, y_val = _split(x, y)
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = (scaler.transform(a).astype("float32") for a in (x_train, x_val))

    def build(bias):
        return keras.Sequential(
            [
                keras.Input(x.shape[1:]),
                _dense(16, "relu"),
                _dense(16, "relu"),
                keras.layers.Dense(1, activation="sigmoid", bias_initializer=bias),
            ]
        )

    return Case(
        "cancer-binary (1:10)", x_train, y_train, x_val, y_val, build,
        keras.losses.BinaryCrossentropy(),
        lambda ds: kbi.ClassPriorBias.from_dataset(ds, activation="sigmoid", verbose=0),
    )


FOCAL = dict(gamma=2.0, alpha=0.25, apply_class_balancing=True)


def focal_case() -> Case:
    """The cancer data under focal loss: adapt_output_bias on the compiled model."""
    cancer = cancer_case()
    loss = keras.losses.BinaryFocalCrossentropy(**FOCAL)

    def build(bias):
        return keras.Sequential(
            [
                keras.Input(cancer.x_train.shape[1:]),
                _dense(16, "relu"),
                _dense(16, "relu"),
                keras.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros",
                                   bias_initializer=bias),
            ]
        )

    def focal_optimum(ds):
        probe = build("zeros")
        probe.compile(loss=loss)
        return kbi.adapt_output_bias(probe, ds, verbose=0)[probe.layers[-1].name]

    def prior(ds):
        return {"prior": kbi.ClassPriorBias.from_dataset(ds, activation="sigmoid",
                                                         verbose=0)}

    return dataclasses.replace(cancer, name="cancer-focal (1:10)", build=build,
                               loss=loss, make_bias=focal_optimum, extra=prior)


def diabetes_cases() -> List[Case]:
    x, y = datasets.load_diabetes(return_X_y=True)  # features scaled, target not
    x_train, x_val, y_train, y_val = _split(
        x.astype("float32"), y[:, None].astype("float32"), stratify=False
    )

    def build(bias):
        return keras.Sequential(
            [
                keras.Input(x.shape[1:]),
                _dense(32, "relu"),
                _dense(32, "relu"),
                keras.layers.Dense(1, bias_initializer=bias),
            ]
        )

    data = (x_train, y_train, x_val, y_val, build)
    return [
        Case("diabetes-mse", *data, keras.losses.MeanSquaredError(),
             lambda ds: kbi.MeanBias.from_dataset(ds, verbose=0)),
        Case("diabetes-mae", *data, keras.losses.MeanAbsoluteError(),
             lambda ds: kbi.MedianBias.from_dataset(ds, verbose=0)),
        Case(f"diabetes-huber(d={HUBER_DELTA:g})", *data,
             keras.losses.Huber(delta=HUBER_DELTA),
             lambda ds: kbi.HuberBias.from_dataset(ds, delta=HUBER_DELTA, verbose=0)),
    ]


def _full_loss(model, loss, x, y) -> float:
    return float(loss(y, model.predict_on_batch(x)))


def train(case: Case, bias, seed: int, order: np.ndarray):
    """Builds and trains one model; returns (loss curve, validation loss, model)."""
    keras.utils.set_random_seed(seed)
    model = case.build(bias)
    model.compile(keras.optimizers.Adam(LEARNING_RATE), loss=case.loss)
    curve = np.empty(len(order) + 1)
    for step, batch in enumerate(order):
        curve[step] = _full_loss(model, case.loss, case.x_train, case.y_train)
        model.train_on_batch(case.x_train[batch], case.y_train[batch])
    curve[-1] = _full_loss(model, case.loss, case.x_train, case.y_train)
    return curve, _full_loss(model, case.loss, case.x_val, case.y_val)


def _batch_order(n_rows: int, steps: int, seed: int) -> np.ndarray:
    """`steps` batches of row ids (shuffled epochs of full batches), shared by
    both models of a seed."""
    rng = np.random.default_rng(seed)
    per_epoch = n_rows // BATCH_SIZE
    epochs = -(-steps // per_epoch)
    batches = np.concatenate([
        rng.permutation(n_rows)[: per_epoch * BATCH_SIZE].reshape(per_epoch, BATCH_SIZE)
        for _ in range(epochs)
    ])
    return batches[:steps]


def _same_start(case: Case, bias, seed: int) -> bool:
    """Both models start from identical weights except the output bias."""
    keras.utils.set_random_seed(seed)
    a = case.build("zeros").get_weights()
    keras.utils.set_random_seed(seed)
    b = case.build(bias).get_weights()
    return all(np.array_equal(u, v) for u, v in zip(a[:-1], b[:-1]))


def run_case(case: Case, seeds: List[int], steps: int) -> dict:
    train_ds = tf.data.Dataset.from_tensor_slices((case.x_train, case.y_train))
    bias = case.make_bias(train_ds.batch(256))
    extra = case.extra(train_ds.batch(256))
    result = {"expected": bias.expected_loss, "bias": bias.bias.tolist(),
              "default": [], "biased": [], "val_default": [], "val_biased": [],
              "verify": [],
              "extra_bias": {k: b.bias.tolist() for k, b in extra.items()}}
    for key in extra:
        result[key], result[f"val_{key}"] = [], []
    for seed in seeds:
        if not _same_start(case, bias, seed):
            raise RuntimeError(f"{case.name}: the two models do not start alike.")
        order = _batch_order(len(case.y_train), steps, seed)
        for key, init in (("default", "zeros"), ("biased", bias), *extra.items()):
            curve, val = train(case, init, seed, order)
            result[key].append(curve)
            result[f"val_{key}"].append(val)
        keras.utils.set_random_seed(seed)
        fresh = case.build(bias)
        fresh.compile(keras.optimizers.Adam(LEARNING_RATE), loss=case.loss)
        result["verify"].append(
            kbi.verify_loss_at_init(fresh, (case.x_train, case.y_train))
        )
    return result


def steps_to_reach(curve: np.ndarray, level: float) -> float:
    hits = np.flatnonzero(curve <= level)
    return float(hits[0]) if hits.size else np.inf


def summarise(name: str, r: dict, steps: int) -> dict:
    default, biased = np.array(r["default"]), np.array(r["biased"])
    reach = [steps_to_reach(d, b[0]) for d, b in zip(default, biased)]
    kernel_parts = [v.kernel_part for v in r["verify"]]
    return {
        "case": name,
        "expected_loss": r["expected"],
        "step0_default": float(np.median(default[:, 0])),
        "step0_biased": float(np.median(biased[:, 0])),
        "final_default": float(np.median(default[:, -1])),
        "final_biased": float(np.median(biased[:, -1])),
        "val_default": float(np.median(r["val_default"])),
        "val_biased": float(np.median(r["val_biased"])),
        "steps_to_reach": float(np.median(reach)),
        "reach_per_seed": reach,
        "verify_ok": sum(v.ok for v in r["verify"]),
        "kernel_part": float(np.median(kernel_parts)),
        "seeds": len(reach),
        "steps": steps,
    }


def print_side_by_side(name: str, r: dict, steps: int) -> None:
    """Zero bias, the extra biases and the data bias: loss at init and after."""
    params = ", ".join(f"{k}={v}" for k, v in FOCAL.items())
    print(f"\n{name}: BinaryFocalCrossentropy({params}); medians over seeds; "
          "focal loss on the training split")
    print(f"{'bias':<22}{'value':>9}{'step 0':>11}{f'@{steps}':>11}{'val':>11}")
    biases = {"default": ("zero", 0.0), **{k: (f"{k} logit", v[0]) for k, v in
                                           r["extra_bias"].items()},
              "biased": ("focal optimum", r["bias"][0])}
    for key, (label, value) in biases.items():
        curves = np.array(r[key])
        print(f"{label:<22}{value:>9.3f}{np.median(curves[:, 0]):>11.4g}"
              f"{np.median(curves[:, -1]):>11.4g}{np.median(r[f'val_{key}']):>11.4g}")
    print(f"expected_loss of the focal optimum: {r['expected']:.4g}")


def print_table(rows: List[dict], steps: int, seeds: int) -> None:
    head = (f"{'case':<24}{'expected':>10}{'step0 dflt':>12}{'step0 bias':>12}"
            f"{f'@{steps} dflt':>12}{f'@{steps} bias':>12}{'val dflt':>11}"
            f"{'val bias':>11}{'dflt steps':>12}  verify@init")
    print(f"\nMedians over {seeds} seeds; losses on the training split (val: "
          f"held-out 20%, after {steps} steps); batch {BATCH_SIZE}, Adam "
          f"lr={LEARNING_RATE:g}.")
    print("'dflt steps' = steps the default-bias model needs to reach the loss the "
          "data-bias model has at step 0.")
    print(head)
    print("-" * len(head))
    for r in rows:
        reach = (f"> {steps}" if not np.isfinite(r["steps_to_reach"])
                 else f"{r['steps_to_reach']:.0f}")
        verdict = (f"ok {r['verify_ok']}/{r['seeds']}, kernel {r['kernel_part']:+.3g}")
        print(f"{r['case']:<24}{r['expected_loss']:>10.4g}{r['step0_default']:>12.4g}"
              f"{r['step0_biased']:>12.4g}{r['final_default']:>12.4g}"
              f"{r['final_biased']:>12.4g}{r['val_default']:>11.4g}"
              f"{r['val_biased']:>11.4g}{reach:>12}  {verdict}")


def _json_safe(value):
    """Plain JSON: floats, with "> budget" (inf) written as null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def plot(results: dict, path: str, steps: int) -> None:
    import matplotlib.pyplot as plt

    n = len(results)
    cols = 3
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, (name, r) in zip(axes.flat, results.items()):
        x = np.arange(steps + 1)
        for key, color, label in (("default", "tab:red", "default (zero) bias"),
                                  ("prior", "tab:orange", "prior logit"),
                                  ("biased", "tab:blue", "bias from data")):
            if key not in r:
                continue
            curves = np.array(r[key])
            for c in curves:
                ax.plot(x, c, color=color, alpha=0.25, lw=0.8)
            ax.plot(x, np.median(curves, axis=0), color=color, lw=1.8, label=label)
        ax.axhline(r["expected"], color="black", ls="--", lw=1,
                   label="expected_loss")
        ax.set_yscale("log")
        ax.set_title(name)
        if "prior" in r:
            ax.legend(fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (>= 1)")
    parser.add_argument("--steps", type=int, default=500, help="training steps")
    parser.add_argument("--out", default="demo_output", help="output folder")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.steps < 1:
        parser.error("--seeds and --steps must be positive")
    start = time.perf_counter()
    seeds = list(range(1, args.seeds + 1))
    os.makedirs(args.out, exist_ok=True)

    results, rows = {}, []
    for case in [digits_case(), cancer_case(), *diabetes_cases(), focal_case()]:
        t = time.perf_counter()
        results[case.name] = run_case(case, seeds, args.steps)
        rows.append(summarise(case.name, results[case.name], args.steps))
        print(f"{case.name}: {len(case.y_train)} training rows, "
              f"bias {np.round(results[case.name]['bias'], 3).tolist()}, "
              f"{time.perf_counter() - t:.0f} s", flush=True)

    print_table(rows, args.steps, len(seeds))
    for name, r in results.items():
        if r["extra_bias"]:
            print_side_by_side(name, r, args.steps)
    network_steps = min(args.steps, NETWORK_STEPS)
    network = network_panel.run(seeds, network_steps, _batch_order)
    network_rows = network_panel.summary(network, steps_to_reach)
    network_panel.print_summary(network_rows, network_steps, len(seeds))
    network_panel.plot(network, os.path.join(args.out, "network_curves.png"))
    with open(os.path.join(args.out, "network.json"), "w") as f:
        json.dump(_json_safe(network_rows), f, indent=1)
    png = os.path.join(args.out, "loss_curves.png")
    plot(results, png, args.steps)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(_json_safe(rows), f, indent=1)
    first = results[next(iter(results))]["verify"][0]
    print(f"\nverify_loss_at_init on {next(iter(results))}, seed {seeds[0]}:\n{first}")
    print(f"\nLoss curves (log scale): {os.path.abspath(png)}")
    print(f"Table as JSON: {os.path.abspath(os.path.join(args.out, 'results.json'))}")
    print(f"Total time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
