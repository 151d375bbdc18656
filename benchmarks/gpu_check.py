"""adapt_output_bias and verify_loss_at_init with the model on the accelerator.

Run by `benchmarks/gpu_check.sh` under each Keras backend (`KERAS_BACKEND`), on
a machine with a GPU and no TensorFlow. For each dtype policy (mixed_float16,
mixed_bfloat16, bfloat16) it builds a classifier (softmax, sparse categorical
cross-entropy) and a regressor (linear, MAE), adapts their output biases from
NumPy data and, for the backend's own tensors in GPU memory, from those, and
checks against NumPy:

- every variable lives on the GPU (unless GPU_CHECK_ALLOW_CPU=1);
- the biases are log(class frequencies) and the median, to the precision of
  the variable's dtype (float32 under the mixed policies, bfloat16 under
  "bfloat16");
- `verify_loss_at_init` passes: the loss Keras measures at step 0 is the
  expected loss (the entropy, the mean absolute deviation).

Prints one line per check and exits 1 if any failed.
"""

import os
import sys

import keras
import numpy as np

import keras_biasinit as kbi

POLICIES = ("mixed_float16", "mixed_bfloat16", "bfloat16")
# Relative precision of a bias held in each variable dtype.
RTOL = {"float32": 1e-6, "bfloat16": 2.0**-7}
BACKEND = keras.backend.backend()
ALLOW_CPU = os.environ.get("GPU_CHECK_ALLOW_CPU") == "1"

rng = np.random.default_rng(0)
N = 4096
X = rng.normal(size=(N, 16)).astype("float32")
IDS = rng.choice(5, size=N, p=[0.5, 0.2, 0.15, 0.1, 0.05])
Y = (rng.standard_t(3, size=(N, 2)) * 10 + [100.0, -5.0]).astype("float32")
FREQ = np.bincount(IDS, minlength=5) / N
ENTROPY = float(-(FREQ * np.log(FREQ)).sum())
MEDIAN = np.median(Y.astype(np.float64), axis=0)
MAD = float(np.abs(Y - MEDIAN).mean())


def _device(variable) -> str:
    value = variable.value
    if BACKEND == "jax":
        return ",".join(str(d) for d in value.devices())
    if BACKEND == "torch":
        return str(value.device)
    return str(getattr(value, "device", "?"))


def _on_accelerator(variable) -> bool:
    name = _device(variable).lower()
    return "cuda" in name or "gpu" in name


def _device_tensors(*arrays):
    """The backend's own tensors, in GPU memory where there is one."""
    if BACKEND == "torch":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        return tuple(torch.as_tensor(a, device=device) for a in arrays)
    return tuple(keras.ops.convert_to_tensor(a) for a in arrays)


def _model(units, activation):
    model = keras.Sequential([
        keras.Input((16,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(units, activation=activation, kernel_initializer="zeros"),
    ])
    return model


def _check(results, name, ok, detail=""):
    results.append(ok)
    detail = f": {detail}" if detail else ""
    print(f"{'OK  ' if ok else 'FAIL'} {BACKEND:5s} {name}{detail}", flush=True)


def _run(results, policy, tag, x, targets, units, activation, loss, reference,
         expected_loss):
    model = _model(units, activation)
    model.compile(loss=loss)
    head = model.layers[-1]
    where = _device(head.bias)
    _check(results, f"{policy} {tag} bias on the accelerator",
           ALLOW_CPU or _on_accelerator(head.bias), where)
    kbi.adapt_output_bias(model, (x, targets), verbose=0)
    bias = np.asarray(keras.ops.convert_to_numpy(
        keras.ops.cast(head.bias, "float32")), np.float64)
    dtype = keras.backend.standardize_dtype(head.bias.dtype)
    error = float(np.max(np.abs(bias - reference) / np.maximum(np.abs(reference), 1)))
    _check(results, f"{policy} {tag} bias ({dtype}) = NumPy's",
           error <= RTOL[dtype], f"max relative error {error:.2e}")
    check = kbi.verify_loss_at_init(model, (x, targets))
    _check(results, f"{policy} {tag} verify_loss_at_init", bool(check.ok),
           f"measured {check.measured:.6f}, expected {check.expected:.6f} "
           f"(NumPy {expected_loss:.6f})")


def main() -> int:
    print(f"keras {keras.__version__}, backend {BACKEND}, "
          f"tensorflow imported: {'tensorflow' in sys.modules}", flush=True)
    results = []
    for policy in POLICIES:
        keras.config.set_dtype_policy(policy)
        try:
            for source, (x, ids, y) in (("numpy", (X, IDS, Y)),
                                        ("device", _device_tensors(X, IDS, Y))):
                _run(results, policy, f"{source} softmax", x, ids, 5, "softmax",
                     "sparse_categorical_crossentropy", np.log(FREQ), ENTROPY)
                _run(results, policy, f"{source} mae", x, y, 2, None, "mae",
                     MEDIAN, MAD)
        finally:
            keras.config.set_dtype_policy("float32")
            keras.backend.clear_session()
    _check(results, "no TensorFlow imported", "tensorflow" not in sys.modules)
    print(f"{sum(results)} of {len(results)} checks passed", flush=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
