# Two commands on a fresh machine:
#   make train   — create .venv, install lossexp, run the default experiment (cnn on digits,
#                  hist_avg + activity), recorded in outputs/mlflow.db
#   make test    — create .venv, install lossexp with test extras, run the suite (under 15 minutes on
#                  2 cores) without the integration tier
#   make test-integration — the integration tier: servers, launchers, Ray, Optuna end to end, a browser
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup train test test-integration bench ui clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

train: setup
	$(BIN)/lossexp train $(ARGS)

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15 -m "not integration" $(PYTEST_ARGS)

test-integration: setup
	tests/integration/prerequisites.sh
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15 -m integration $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

ui: setup
	$(BIN)/lossexp ui --port 5000

clean:
	rm -rf outputs multirun .pytest_cache test-artifacts
