"""The demo's whole-network panel: a deep MLP on raw (unscaled) features.

Bundled breast-cancer data (569 x 30, E[x^2] about 5.6e4, no scaler), a
12 x Dense(64, relu) MLP with a sigmoid output, binary cross-entropy, Adam.
Four initialisations, each from the same seed (the same draws where they
share an initializer) and trained on the same batches:

- Keras defaults: glorot_uniform kernels, zero biases;
- he_normal: every hidden kernel He-initialised;
- HeScaled first layer: `kbi.HeScaled.from_dataset` on the first layer (it
  divides by the raw features' second moment), he_normal after it;
- adapt_model: Keras defaults, then `kbi.adapt_model` on the training split
  (every hidden layer at second moment 1, the output kernel scaled down to
  0.01, the output bias at the prior logit).

Reported: the training loss at step 0 and at the end, and the steps each
needs to reach `LEVEL` (the median over seeds).
"""

from __future__ import annotations

from typing import Dict, List

import keras
import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split

import keras_biasinit as kbi

DEPTH, WIDTH = 12, 64
LEVEL = 0.3  # a binary cross-entropy the panel times every variant to
VARIANTS = ("Keras defaults", "he_normal", "HeScaled first layer", "adapt_model")


def _data():
    x, y = datasets.load_breast_cancer(return_X_y=True)
    x_train, _, y_train, _ = train_test_split(
        x.astype("float32"), y[:, None].astype("float32"), test_size=0.2,
        random_state=0, stratify=y)
    return x_train, y_train


def _build(variant: str, x_train) -> keras.Model:
    hidden = "glorot_uniform" if variant in ("Keras defaults", "adapt_model") \
        else "he_normal"
    first = (kbi.HeScaled.from_dataset(x_train, verbose=0)
             if variant == "HeScaled first layer" else hidden)
    layers = [keras.Input((x_train.shape[1],))]
    for depth in range(DEPTH):
        layers.append(keras.layers.Dense(
            WIDTH, activation="relu", kernel_initializer=first if depth == 0
            else hidden))
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    return keras.Sequential(layers)


def _train(variant, x, y, seed, order) -> np.ndarray:
    keras.utils.set_random_seed(seed)
    model = _build(variant, x)
    model.compile(keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    if variant == "adapt_model":
        kbi.adapt_model(model, (x, y), verbose=0)
    loss = keras.losses.BinaryCrossentropy()
    curve = np.empty(len(order) + 1)
    for step, batch in enumerate(order):
        curve[step] = float(loss(y, model.predict_on_batch(x)))
        model.train_on_batch(x[batch], y[batch])
    curve[-1] = float(loss(y, model.predict_on_batch(x)))
    return curve


def run(seeds: List[int], steps: int, batch_order) -> Dict[str, np.ndarray]:
    """`{variant: curves (seeds x steps + 1)}`, every variant on each seed's
    batches."""
    x, y = _data()
    curves = {variant: [] for variant in VARIANTS}
    for seed in seeds:
        order = batch_order(len(y), steps, seed)
        for variant in VARIANTS:
            curves[variant].append(_train(variant, x, y, seed, order))
    return {variant: np.array(c) for variant, c in curves.items()}


def summary(curves: Dict[str, np.ndarray], steps_to_reach) -> List[dict]:
    rows = []
    for variant, c in curves.items():
        reach = [steps_to_reach(curve, LEVEL) for curve in c]
        rows.append({"variant": variant, "step0": float(np.median(c[:, 0])),
                     "final": float(np.median(c[:, -1])),
                     "steps_to_level": float(np.median(reach)),
                     "reach_per_seed": reach})
    return rows


def print_summary(rows: List[dict], steps: int, seeds: int) -> None:
    print(f"\nWhole network: {DEPTH} x Dense({WIDTH}, relu) on raw breast-cancer "
          f"features, binary cross-entropy; medians over {seeds} seeds.")
    print(f"{'initialisation':<24}{'step 0':>11}{f'@{steps}':>11}"
          f"{f'steps to {LEVEL:g}':>16}")
    for r in rows:
        reach = (f"> {steps}" if not np.isfinite(r["steps_to_level"])
                 else f"{r['steps_to_level']:.0f}")
        print(f"{r['variant']:<24}{r['step0']:>11.4g}{r['final']:>11.4g}"
              f"{reach:>16}")


def plot(curves: Dict[str, np.ndarray], path: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    colors = ("tab:red", "tab:orange", "tab:green", "tab:blue")
    for (variant, c), color in zip(curves.items(), colors):
        x = np.arange(c.shape[1])
        for curve in c:
            ax.plot(x, curve, color=color, alpha=0.25, lw=0.8)
        ax.plot(x, np.median(c, axis=0), color=color, lw=1.8, label=variant)
    ax.axhline(LEVEL, color="black", ls=":", lw=1, label=f"loss {LEVEL:g}")
    ax.set_yscale("log")
    ax.set_title(f"{DEPTH} x Dense({WIDTH}, relu), raw breast-cancer features")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (binary cross-entropy)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
