# One command to serve, one to test. Both install everything they need into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Every distribution in the repository, installed editable in one pip call so
# the root's dependencies on its default plugins resolve to these folders.
DISTS := . $(sort $(dir $(wildcard plugins/*/setup.cfg) $(wildcard contrib/*/setup.cfg)))
SETUP_FILES := setup.cfg requirements-dev.txt system-packages.txt $(wildcard plugins/*/setup.cfg) $(wildcard contrib/*/setup.cfg)
PYTEST_ARGS ?=
# The suite runs in parallel (pytest-xdist, whole modules per worker so their
# shared servers stay shared), then the tests marked serial alone. Exit status 5
# is "no test selected" (PYTEST_ARGS naming only parallel or only serial tests).
TEST_WORKERS ?= 2

.PHONY: serve test install lint bench clean

serve: $(BIN)/.installed
	$(BIN)/workeros serve

# Lint first: a change that breaks the import contracts, the generated docs or
# ruff fails the test run (and so CI, which runs exactly this).
test: $(BIN)/.installed lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not serial" --durations=30 $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ]

install: $(BIN)/.installed

$(BIN)/.installed: $(SETUP_FILES)
	sh scripts/ensure_system_packages.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(foreach d,$(DISTS),-e $(d)) -r requirements-dev.txt
	touch $@

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/python scripts/gen_hook_docs.py --check
	$(BIN)/python scripts/lint_imports.py
	$(BIN)/python scripts/gen_config_docs.py --check
	$(BIN)/python scripts/gen_plugin_listing.py --check

bench: $(BIN)/.installed
	$(BIN)/python -m pip install -q -r bench/requirements.txt  # the peer run beside workeros (PocketBase)
	command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null || echo "wrk not installed: HTTP suites will be skipped"
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist .workeros
