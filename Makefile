# `make test` and `make demo` work on a fresh machine with only Python 3:
# each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.dev-installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test demo bench clean

$(DEV_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(DEV_STAMP)

# Everything under TensorFlow, then the Keras-facing tests (marked `keras`)
# again under JAX; each run prints its own summary.
test: $(DEV_STAMP)
	KERAS_BACKEND=tensorflow $(BIN)/python -m pytest
	KERAS_BACKEND=jax $(BIN)/python -m pytest -m keras

demo: $(DEV_STAMP)
	$(BIN)/python examples/demo.py

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis demo_output
