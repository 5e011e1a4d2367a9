# Treatment Policy API. `make help` lists the targets.
PORT ?= 8000
WORKERS ?= 4
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app api

.DEFAULT_GOAL := help
.PHONY: help run fake-square fake-cliniko test test-unit lint format spec spec-check migrate seed keys screenshots

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The webhook and connector workers run beside gunicorn; when gunicorn exits they get SIGTERM and end
# after their pass. Kept in instance/, made on first run (production sets them itself; README
# "Configuration"): the key that encrypts connectors' credentials (TPA_SECRET_KEYS) and the key the
# console's forms are signed with (TPA_SECRET_KEY). The public pages' URLs default to this server.
run: export TPA_PUBLIC_BASE_URL ?= http://127.0.0.1:$(PORT)
run: $(BIN)/.installed ## Set up, migrate, seed on first run, serve on 127.0.0.1:$(PORT), run the workers
	@mkdir -p instance && test -s instance/secret_key || \
		(umask 077 && $(BIN)/python -c 'import secrets; print(secrets.token_hex(32))' > instance/secret_key)
	$(FLASK) db upgrade
	$(FLASK) seed --if-empty --demo
	@test -s instance/secret-keys || (umask 077 && $(FLASK) connectors new-key > instance/secret-keys)
	@echo "Serving on http://127.0.0.1:$(PORT)  (docs: /docs, public pages: $$TPA_PUBLIC_BASE_URL/, staff console: /console)"
	export TPA_SECRET_KEYS="$${TPA_SECRET_KEYS:-$$(cat instance/secret-keys)}"; \
	export TPA_SECRET_KEY="$${TPA_SECRET_KEY:-$$(cat instance/secret_key)}"; \
	$(FLASK) webhooks deliver --forever & worker=$$!; \
	$(FLASK) connectors run & connectors=$$!; \
	trap 'kill -TERM $$worker $$connectors 2>/dev/null; wait $$worker $$connectors' EXIT INT TERM; \
	$(BIN)/gunicorn --no-control-socket --workers $(WORKERS) --bind 127.0.0.1:$(PORT) 'api:create_app()'

# A fake Square on 127.0.0.1:$(SQUARE_PORT) with three services, for following the README's
# "Connecting the booking system: Square" without a Square account (tests/fakes/square.py).
SQUARE_PORT ?= 8100
fake-square: $(BIN)/.installed ## Serve a fake Square (for the README's connector walk-through)
	$(BIN)/python -m tests.fakes.square --port $(SQUARE_PORT) \
		--notify-url http://127.0.0.1:$(PORT)/v1/connectors/1/events

CLINIKO_PORT ?= 8101
fake-cliniko: $(BIN)/.installed ## Serve a fake Cliniko (for the README's connector walk-through)
	$(BIN)/python -m tests.fakes.cliniko --port $(CLINIKO_PORT)

test: $(BIN)/.installed lint ## Lint, check the committed OpenAPI document, run the whole suite
	$(BIN)/pytest

test-unit: $(BIN)/.installed ## Only the pure-rule unit tests (no database)
	$(BIN)/pytest tests/unit

lint: $(BIN)/.installed ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.installed ## Format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

spec: $(BIN)/.installed ## Rewrite openapi.yaml from the code
	$(FLASK) openapi write --format=yaml openapi.yaml

screenshots: $(BIN)/.installed ## Take the README's pictures: public pages, widget, staff console (docs/screenshots/)
	$(BIN)/python tools/screenshots.py
	$(BIN)/python tools/console_screenshots.py

migrate: $(BIN)/.installed ## Apply migrations to the configured database
	$(FLASK) db upgrade

seed: $(BIN)/.installed ## Load the seed catalogue (idempotent)
	$(FLASK) seed

# Benchmarks (benchmarks/; see README "Benchmarks"). Extra options: make bench BENCH_ARGS="--db sqlite".
.PHONY: bench bench-scale
BENCH_ARGS ?=
bench: $(BIN)/.installed ## App vs bare-Flask baseline under wrk, PostgreSQL then SQLite (~12 min)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

bench-scale: $(BIN)/.installed ## Latency and memory at 50, 5,000 and 50,000 treatments on PostgreSQL (~5 min)
	$(BIN)/python benchmarks/bench_scale.py $(BENCH_ARGS)

# Soak (benchmarks/soak.py; README "Reliability"): CI runs it with --duration 20.
.PHONY: soak
SOAK_DURATION ?= 60
soak: $(BIN)/.installed ## Readers, booking checks and writers at once on gunicorn + PostgreSQL, then checks (60 s)
	$(BIN)/python benchmarks/soak.py --duration $(SOAK_DURATION)

# Contract fuzzing (tests/contract/run_schemathesis.sh, schemathesis.toml; README "Contract fuzzing").
# Needs the PostgreSQL server of CONTRACT_DATABASE_SERVER (default 127.0.0.1:5432, user postgres).
# SEED: empty for the pinned seed CI uses (in tests/contract/run_schemathesis.sh), `random` for a
# new draw each run (the hunt: its summary prints the seed), or an integer to replay one:
# make contract SEED=random, make contract SEED=12345. Only the command line sets it (`=`, not `?=`:
# a SEED in the environment does not unpin the default run).
.PHONY: contract
SEED =
contract: $(BIN)/.installed ## schemathesis over every operation, stateful too, on gunicorn + PostgreSQL (≤ 5 min)
	CONTRACT_SEED='$(SEED)' tests/contract/run_schemathesis.sh
