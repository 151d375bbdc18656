#!/usr/bin/env bash
# The Keras-facing tests and a mixed-precision adapt/verify run on a GPU, under
# JAX and under torch, on a machine without TensorFlow (issue 20).
#
# For a machine with a GPU whose python3 has JAX (CUDA) and PyTorch, pytest,
# hypothesis, scipy and scikit-learn, but not Keras, and nothing to download
# from: Keras and the pure-Python pieces it lacks travel as wheels in .whl/.
#
#   benchmarks/gpu_check.sh --fetch-wheels   # here, with pip: fills .whl/
#   benchmarks/gpu_check.sh                  # there, from the repository root
#
# The second form installs .whl/*.whl (if any) into /tmp/site, checks that a
# GPU is there (GPU_CHECK_ALLOW_CPU=1 runs it on the CPU instead, to try the
# script anywhere), then per backend (GPU_CHECK_BACKENDS, default "jax torch"):
# prints the devices, runs `pytest -m keras` (extra arguments in
# GPU_CHECK_PYTEST_ARGS) and benchmarks/gpu_check.py (mixed_float16,
# mixed_bfloat16 and bfloat16 with the model on the GPU). Exits 1 if anything
# failed. On 2 CPU cores (GPU_CHECK_ALLOW_CPU=1) it took 3 minutes of CPU, most
# of it JAX compiling for the tests.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=.whl

if [[ "${1:-}" == "--fetch-wheels" ]]; then
  # The GPU machine's Python (3.12) and platform; keras' needs it lacks there.
  exec "$PY" -m pip download --no-deps --only-binary=:all: \
    --python-version "${GPU_PYTHON_VERSION:-3.12}" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$WHEELS" "keras==${KERAS_VERSION:-3.15.1}" namex optree
fi

if compgen -G "$WHEELS/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # this checkout's package
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # JAX takes GPU memory as needed

if [[ "${GPU_CHECK_ALLOW_CPU:-0}" != 1 ]]; then
  if ! nvidia-smi -L; then
    echo "No GPU found (GPU_CHECK_ALLOW_CPU=1 runs on the CPU)."
    exit 1
  fi
fi
HAS_TF="import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow') is None)"
if "$PY" -c "$HAS_TF"; then
  echo "Note: TensorFlow is installed here; the tests run beside it."
else
  export KBI_NO_TENSORFLOW=1  # a test checks that it is really absent
fi

DEVICES='
import keras
b = keras.backend.backend()
if b == "jax":
    import jax; print("jax", jax.__version__, jax.devices())
elif b == "torch":
    import torch
    cuda = torch.cuda.is_available()
    print("torch", torch.__version__, torch.cuda.get_device_name() if cuda else "cpu")
print("keras", keras.__version__)
'
status=0
for backend in ${GPU_CHECK_BACKENDS:-jax torch}; do
  echo "=== KERAS_BACKEND=$backend"
  KERAS_BACKEND=$backend "$PY" -c "$DEVICES" || { status=1; continue; }
  start=$SECONDS
  # shellcheck disable=SC2086  # the extra arguments are meant to split
  KERAS_BACKEND=$backend "$PY" -m pytest -m keras -q -p no:cacheprovider \
    ${GPU_CHECK_PYTEST_ARGS:-} || status=1
  echo "pytest under $backend: $((SECONDS - start)) s"
  KERAS_BACKEND=$backend "$PY" benchmarks/gpu_check.py || status=1
done
echo "gpu_check: $([[ $status == 0 ]] && echo passed || echo FAILED)"
exit $status
