# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180

.PHONY: install run start stop test lint bench screenshots clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip uv 2>/dev/null
	# --compile-bytecode: this machine sets PYTHONDONTWRITEBYTECODE, and without .pyc files every process
	# spends ~5 s compiling Prefect and Great Expectations on import.
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv with everything the product and its tests need
# Azurite (pinned in package-lock.json), the Azure Blob emulator the storage tests start; skipped without npm
	@test node_modules/.package-lock.json -nt package-lock.json || ! command -v npm >/dev/null || \
		npm ci --no-audit --no-fund --loglevel=error

run: install  ## bring everything up (Prefect server, worker, deployments, demo data, first model); Ctrl-C stops it
	$(BIN)/rtv up

start: install  ## the same, in the background
	$(BIN)/rtv up --detach

stop:  ## stop a stack started with `make start`
	$(BIN)/rtv down

test: install  ## run the whole test suite (services it needs are checked first)
	@bash .ci/services.sh check
# two workers, one test module each: much of the suite waits on servers, sleeps and the network (10.5 min vs 26)
	$(BIN)/pytest -q -n 2 --dist loadfile

lint:  ## ruff over the code base
	@$(BIN)/ruff check .

screenshots: install  ## a PNG of every dashboard page (synthetic demo data) into docs/screenshots/
	@test -x /usr/bin/chromium || { echo 'needs Debian chromium: apt-get install -y chromium' >&2; exit 1; }
	$(BIN)/python -m dashboard.screenshots --out docs/screenshots

bench: install  ## benchmarks; figures go to bench/README.md
	cd bench && ../$(BIN)/python ingest.py --rows 100000 1000000
	cd bench && ../$(BIN)/python retrain.py
	cd bench && ../$(BIN)/python drift_calibration.py
	cd bench && ../$(BIN)/python dashboard_overview.py
	cd bench && ../$(BIN)/python api_load.py

clean:  ## remove generated data (keeps .venv)
	rm -rf data .pytest_cache
