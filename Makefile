# One entry point for people and CI. Every target sets up what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv lock proto run certs test test-unit lint bench soak fuzz clean test-primes eif run-enclave tools

# Every package comes from requirements/dev.lock, hashes required (pip itself included), so a
# clone installs the bytes CI tested whatever the index serves later; then the project itself,
# with no dependency resolution. `make lock` is the only thing that changes the lock.
LOCKS := requirements/runtime.lock requirements/dev.lock
$(STAMP): pyproject.toml $(LOCKS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/dev.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) tools/check_lock.py --venv
	touch $(STAMP)

venv: $(STAMP)

# Regenerates both locks from pyproject.toml (and requirements/dev.in) with pip-tools from the
# dev lock. Without UPGRADE=1 pinned versions are kept where they still satisfy the declared
# ones; with it every transitive package moves to the newest the index serves. Read the diff.
PIP_COMPILE := $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade,)
# Needs only pip-tools, not an up-to-date venv: after a change to pyproject.toml the venv's own
# check (tools/check_lock.py --venv) fails until the locks are regenerated, so `lock` must not
# wait for it.
$(VENV)/bin/pip-compile:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/dev.lock

lock: | $(VENV)/bin/pip-compile
	$(PIP_COMPILE) --output-file requirements/runtime.lock pyproject.toml
	$(PIP_COMPILE) --extra dev --output-file requirements/dev.lock pyproject.toml requirements/dev.in
	$(PY) tools/check_lock.py

# Generated code is committed; tests/signer/test_generated_code.py regenerates into a temporary
# directory (PROTO_OUT) and fails if the committed files differ.
PROTO_OUT ?= .
proto: | $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) \
		--grpc_python_out=$(PROTO_OUT) proto/mpc/v1/signer.proto
	$(PY) -m grpc_tools.protoc -Iproto --python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) proto/mpc/v1/enclave.proto

# Development credentials for `make run` (never overwritten; `mpc-signer certs --force` replaces them).
CERTS := var/certs
$(CERTS)/ca.pem: | $(STAMP)
	$(VENV)/bin/mpc-signer certs --out $(CERTS)

certs: $(CERTS)/ca.pem

# Serves on 127.0.0.1:9091 with the embedded defaults: the enclave as a supervised child process
# on unix://var/enclave.sock, SQLite under var/. Ctrl-C stops both.
run: venv proto certs
	$(VENV)/bin/mpc-signer serve

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy enclave signer door
	$(VENV)/bin/lint-imports

# Test tools outside the virtualenv, under .tools/: the Consul 1.8.7 agent (Debian 11's package,
# fetched without touching the system's apt state) and the Compose specification's JSON schema.
tools: venv
	tools/install-consul .tools
	PYTHON=$(PY) tools/fetch-compose-schema .tools/compose-spec.json

# Branch coverage of signer/, enclave/ and door/ ([tool.coverage] in pyproject.toml): a summary of
# the files not fully covered on the terminal, all of it in var/coverage.xml. Code run in the
# enclave and signer child processes the integration tests start is not counted.
COVERAGE := --cov --cov-report=term:skip-covered --cov-report=xml:var/coverage.xml
test: venv lint tools
	$(VENV)/bin/pytest -q $(COVERAGE)

# The in-process rooms (maths, protocols, host units, the SQLite store): no PostgreSQL, no
# Consul agent (markers `postgres`, `consul`), a few minutes. `make test` runs everything.
UNIT_TESTS := tests/enclave tests/signer tests/storage
test-unit: venv
	$(VENV)/bin/pytest -q -m "not postgres and not consul" $(UNIT_TESTS)

bench: venv
	$(PY) -m bench --out bench-results/bench.json

# Mixed load against a real host and enclave for SOAK_SECONDS (README, "Soak, chaos and fuzz");
# JSON lines on stdout and in bench-results/soak.jsonl; fails on any error or growing memory.
SOAK_SECONDS ?= 600
soak: venv
	$(PY) -m bench.soak --seconds $(SOAK_SECONDS) --out bench-results/soak.jsonl

# The fuzz tests of `make test` with FUZZ_EXAMPLES examples per protocol round instead of its few.
FUZZ_EXAMPLES ?= 5000
fuzz: venv
	MPC_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/pytest -q tests/fuzz

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# Fixture safe primes for the GG20/Paillier tests (data only; takes a few minutes of CPU).
test-primes: venv
	$(PY) -m tests.make_safe_primes

# --- AWS Nitro Enclaves (docs/nitro.md); run on the Nitro-enabled parent instance ------------
ENCLAVE_IMAGE ?= mpc-signer-enclave:latest
ENCLAVE_EIF ?= var/mpc-enclave.eif
ENCLAVE_PCRS ?= var/pcrs.json
ENCLAVE_CPUS ?= 2
ENCLAVE_MEMORY_MIB ?= 4096
ENCLAVE_CID ?= 16
# --debug-mode gives a console (nitro-cli console) but the enclave then attests with zero PCRs,
# so KMS refuses it; never set it in production.
ENCLAVE_DEBUG ?=
# The KMS key (full ARN) the enclave seals with; built into the image (see enclave/Dockerfile).
KMS_KEY_ARN ?=
# Optional: the signing policy's P-256 public key (PEM file); the enclave then requires approvals.
POLICY_KEY_FILE ?=
# Every file time in the image; the commit's own time, so a rebuild of one commit gives the same
# PCR0 (docs/nitro.md, "Rebuilding and comparing PCRs").
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

# Builds the image, converts it to an EIF and records the measurements nitro-cli prints (its JSON
# follows any progress lines).
eif:
	@test -n "$(KMS_KEY_ARN)" || { echo "make eif needs KMS_KEY_ARN=arn:aws:kms:REGION:ACCOUNT:key/ID" >&2; exit 2; }
	mkdir -p var
	docker build --file enclave/Dockerfile --build-arg KMS_KEY_ID=$(KMS_KEY_ARN) \
		--build-arg SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) \
		--build-arg POLICY_KEY=$(if $(POLICY_KEY_FILE),"$$(grep -v -- ----- $(POLICY_KEY_FILE) | tr -d '\n')",) \
		--tag $(ENCLAVE_IMAGE) .
	nitro-cli build-enclave --docker-uri $(ENCLAVE_IMAGE) --output-file $(ENCLAVE_EIF) > var/build-enclave.json
	$(PYTHON) -c 'import json, sys; t = open("var/build-enclave.json").read(); m = json.loads(t[t.index("{"):])["Measurements"]; json.dump({k: v for k, v in m.items() if k == "HashAlgorithm" or k.startswith("PCR")}, sys.stdout, indent=2, sort_keys=True)' > $(ENCLAVE_PCRS)
	@cat $(ENCLAVE_PCRS)

# The enclave starts without a channel key: deliver the host's (ENCLAVE_PSK, the file the signer's
# enclave.psk_file names) at once, only to an enclave whose attestation matches ENCLAVE_PCRS, so
# the trust-on-first-use window is as short as the boot (docs/nitro.md §3). Fails if someone else
# claimed the channel first.
ENCLAVE_PSK ?= var/certs/enclave.psk
run-enclave:
	@test -s $(ENCLAVE_PSK) || { echo "run-enclave needs the host's channel key ENCLAVE_PSK=$(ENCLAVE_PSK) (mpc-signer certs)" >&2; exit 2; }
	nitro-cli run-enclave --eif-path $(ENCLAVE_EIF) --cpu-count $(ENCLAVE_CPUS) \
		--memory $(ENCLAVE_MEMORY_MIB) --enclave-cid $(ENCLAVE_CID) $(ENCLAVE_DEBUG)
	for i in $$(seq 60); do $(PY) -m signer.cli enclave-ping --address vsock://$(ENCLAVE_CID):5000 \
		--psk-file $(ENCLAVE_PSK) --expected-pcrs-file $(ENCLAVE_PCRS) && exit 0; sleep 0.5; done; exit 1
