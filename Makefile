# A new user's entry points. Each target does its own set-up, so `make run`
# and `make test` work on a fresh machine.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Where the datasets are looked for: shared/data beside the checkout when it
# exists (Fashion-MNIST lives there), else ./data (torchvision downloads).
BNNCTL_DATA ?= $(firstword $(wildcard ../shared/data) ./data)
export BNNCTL_DATA

.PHONY: setup run test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: a short real training run that ends with a results table:
# the BNN-paper MLP recipe on Fashion-MNIST, 1024 units wide, 3 epochs
# (a couple of minutes on 2 cores; `bnnctl train experiment=bnn_fashion` is the full one).
run: setup
	$(BIN)/bnnctl train experiment=bnn_fashion model.width=1024 train.epochs=3

# The whole suite, the slow real-data checks included.
test: setup
	$(BIN)/pytest -q

# Lint, format, layering and type checks (CI runs them before the tests).
lint: setup
	$(BIN)/ruff check bnnctl tests
	$(BIN)/ruff format --check bnnctl tests
	$(BIN)/lint-imports
	$(BIN)/mypy

test-fast: setup
	$(BIN)/pytest -q -m "not slow"

bench: setup
	$(BIN)/bnnctl bench train

clean:
	rm -rf $(VENV) .pytest_cache build dist
