# Brisa: `make run` starts it on the embedded default, `make test` runs the tests.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PYTHONPATH := $(CURDIR)

.PHONY: install run test lint typecheck format bench soak docs clean

# `make run` installs what running needs (requirements.txt); the test and lint tools
# (requirements-dev.txt) come with `make install`, which the other targets use.
$(BIN)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(BIN)/.installed: $(BIN)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

# Quiet: a line per finished run and per failed try, and the processes' warnings and
# errors; VERBOSE=1: every line they log. PORT and BRISA_BIND choose web's address.
run: $(BIN)/.runtime
	$(BIN)/python -m app dev $(if $(VERBOSE),--verbose)

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

# The embedded default's files in BRISA_VAR_DIR (default var/), then the folder if that
# emptied it: a BRISA_VAR_DIR that holds other files keeps them.
VAR_DIR = $(or $(BRISA_VAR_DIR),var)
VAR_FILES = brisa.db brisa.db-wal brisa.db-shm queue.db queue.db-wal queue.db-shm \
	secret_key admin_token envs

clean:
	if [ -d "$(VAR_DIR)" ]; then (cd "$(VAR_DIR)" && rm -rf $(VAR_FILES)); \
	  rmdir "$(VAR_DIR)" 2>/dev/null || echo "kept $(VAR_DIR): it holds other files"; fi
	rm -rf .pytest_cache .ruff_cache

bench: install
	$(BIN)/python -m tests.bench

# Not in CI: 10,000 runs under chaos, on a Postgres and a Redis of its own (tests/soak/).
soak: install
	$(BIN)/python -m tests.soak

# docs/api.md is generated from the OpenAPI document (tests/unit/web/test_api_docs.py keeps it current).
docs: install
	$(BIN)/python infra/gen_api_docs.py
