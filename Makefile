# One entry point for people and CI. Every target sets up what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv proto run certs test lint bench clean test-primes

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Generated code is committed; tests/signer/test_generated_code.py regenerates into a temporary
# directory (PROTO_OUT) and fails if the committed files differ.
PROTO_OUT ?= .
proto: | $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) \
		--grpc_python_out=$(PROTO_OUT) proto/mpc/v1/signer.proto
	$(PY) -m grpc_tools.protoc -Iproto --python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) proto/mpc/v1/enclave.proto

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

# Fixture safe primes for the GG20/Paillier tests (data only; takes a few minutes of CPU).
test-primes: venv
	$(PY) -m tests.make_safe_primes
