# The two commands of the README: `make demo` and `make test`. Everything else is a helper for them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test check install install-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Install, start the offline demo site and a local Slack stand-in, crawl, score, alert, show the results.
demo: $(VENV)/.installed
	$(BIN)/python -m demo

## Install the dev dependencies, check the floors and the types, and run the whole test suite.
test: check
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

## Imports run one way between the floors (import-linter), and the types hold (mypy).
check: $(VENV)/.installed-dev
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench.bench_crawl --pages 2000

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .import_linter_cache *.egg-info
