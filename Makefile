# One entry point for people and CI. Every target sets up what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv proto run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy enclave signer
	$(VENV)/bin/lint-imports

test: venv lint
	$(VENV)/bin/pytest -q

bench: venv
	$(PY) -m bench --out bench-results/bench.json

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
