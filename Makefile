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

# Two lanes side by side on two cores (each lane's output is printed whole when
# it ends, with each run's own summary):
# - everything under TensorFlow;
# - the Keras-facing tests (marked `keras`) under JAX in .venv-notf (no
#   TensorFlow; a test checks that it is absent), then those of them that
#   skipped there for want of TensorFlow under JAX beside TensorFlow (the list
#   is recorded by tests/conftest.py), then all of them under torch.
test:
	$(MAKE) --no-print-directory -j2 --output-sync=target test-lane-tf test-lane-jax

test-lane-tf: $(DEV_STAMP) $(NOTF_STAMP)
	KERAS_BACKEND=tensorflow $(BIN)/python -m pytest -p no:cacheprovider

test-lane-jax: $(DEV_STAMP) $(NOTF_STAMP)
	rm -f .tf-skips
	KBI_RECORD_TF_SKIPS=$(CURDIR)/.tf-skips $(MAKE) --no-print-directory test-notf
	@if [ -s .tf-skips ]; then \
	  sort -u .tf-skips -o .tf-skips; \
	  echo "KERAS_BACKEND=jax $(BIN)/python -m pytest -m keras @.tf-skips  # $$(wc -l < .tf-skips) tests or modules"; \
	  KERAS_BACKEND=jax $(BIN)/python -m pytest -p no:cacheprovider -m keras @.tf-skips; \
	else echo "No test skipped for want of TensorFlow."; fi
	$(MAKE) --no-print-directory test-torch

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
	rm -rf $(VENV) $(NOTF_VENV) .tf-skips build dist *.egg-info .pytest_cache .hypothesis demo_output
