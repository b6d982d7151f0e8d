# Brisa: `make run` starts it on the embedded default, `make test` runs the tests.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PYTHONPATH := $(CURDIR)

.PHONY: install run test lint typecheck format bench docs clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python -m app dev

test: install
	$(BIN)/python -m pytest

lint: install typecheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy over the layers below the processes: the files and settings are in pyproject.toml.
typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var .pytest_cache .ruff_cache

bench: install
	$(BIN)/python -m tests.bench

# docs/api.md is generated from the OpenAPI document (tests/unit/web/test_api_docs.py keeps it current).
docs: install
	$(BIN)/python infra/gen_api_docs.py
