# `make test` and `make demo` work on a fresh machine with only Python 3:
# each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.dev-installed
# Every other backend, without TensorFlow: the package's own dependencies, the
# test tools, JAX and a CPU build of torch ($(TORCH), a wheel pip finds through
# its configured index / find-links; PyPI itself has only the CUDA build, GBs).
# Where no such wheel is found the torch run says so and is left out.
NOTF_VENV ?= .venv-notf
NOTF_BIN := $(NOTF_VENV)/bin
NOTF_STAMP := $(NOTF_VENV)/.installed
TORCH ?= torch==2.13.0+cpu
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test test-lane-tf test-lane-jax test-notf test-torch demo bench clean

$(DEV_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

$(NOTF_STAMP): pyproject.toml
	$(PYTHON) -m venv $(NOTF_VENV)
	$(NOTF_BIN)/python -m pip install --quiet --upgrade pip
	$(NOTF_BIN)/python -m pip install --quiet "$(TORCH)" || echo "No $(TORCH) wheel found: the torch run is left out."
	$(NOTF_BIN)/python -m pip install --quiet -e ".[test]" "jax[cpu]>=0.10"
	touch $@

install: $(DEV_STAMP)

# Four runs in two lanes, side by side on two cores (each lane's output is
# printed whole when it ends, with each run's own summary):
# - everything under TensorFlow, then the Keras-facing tests (marked `keras`)
#   under torch in .venv-notf (no TensorFlow);
# - the Keras-facing tests under JAX beside TensorFlow, then under JAX in
#   .venv-notf (a test checks that TensorFlow is absent there).
test:
	$(MAKE) --no-print-directory -j2 --output-sync=target test-lane-tf test-lane-jax

test-lane-tf: $(DEV_STAMP) $(NOTF_STAMP)
	KERAS_BACKEND=tensorflow $(BIN)/python -m pytest -p no:cacheprovider
	$(MAKE) --no-print-directory test-torch

test-lane-jax: $(DEV_STAMP) $(NOTF_STAMP)
	KERAS_BACKEND=jax $(BIN)/python -m pytest -p no:cacheprovider -m keras
	$(MAKE) --no-print-directory test-notf

# The last two runs of `make test` alone.
test-notf: $(NOTF_STAMP)
	KBI_NO_TENSORFLOW=1 KERAS_BACKEND=jax $(NOTF_BIN)/python -m pytest -p no:cacheprovider -m keras

test-torch: $(NOTF_STAMP)
	@if $(NOTF_BIN)/python -c "import torch" 2>/dev/null; then \
	  KBI_NO_TENSORFLOW=1 KERAS_BACKEND=torch $(NOTF_BIN)/python -m pytest -p no:cacheprovider -m keras; \
	else echo "torch is not installed in $(NOTF_VENV): the torch run is left out."; fi

demo: $(DEV_STAMP)
	$(BIN)/python examples/demo.py

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(NOTF_VENV) build dist *.egg-info .pytest_cache .hypothesis demo_output
