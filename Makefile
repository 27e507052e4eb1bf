# Two commands do everything on a fresh machine: `make run` and `make test`. `make check` is the fast lane.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180

.PHONY: install run start stop test check lint types layers format upgrade bench screenshots clean

$(STAMP): pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install -q --upgrade pip uv 2>/dev/null
	# The exact versions the tests passed with (uv.lock); --inexact keeps uv itself in the venv.
	# --compile-bytecode: this machine sets PYTHONDONTWRITEBYTECODE, and without .pyc files every process
	# spends ~5 s compiling Prefect and Great Expectations on import.
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --inexact --extra dev --compile-bytecode -q
	@touch $(STAMP)

install: $(STAMP)  ## create .venv with the locked versions of everything the product and its tests need
# Azurite (pinned in package-lock.json), the Azure Blob emulator the storage tests start; skipped without npm
	@test node_modules/.package-lock.json -nt package-lock.json || ! command -v npm >/dev/null || \
		npm ci --no-audit --no-fund --loglevel=error

upgrade:  ## refresh uv.lock to the newest versions pyproject.toml allows, then reinstall
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install -q uv; }
	$(BIN)/uv lock --upgrade
	@rm -f $(STAMP)
	@$(MAKE) --no-print-directory install

run: install  ## bring everything up (Prefect server, worker, deployments, demo data, first model); Ctrl-C stops it
	$(BIN)/rtv up

start: install  ## the same, in the background
	$(BIN)/rtv up --detach

stop:  ## stop a stack started with `make start`
	$(BIN)/rtv down

check: install lint  ## the fast lane: lint, types, layers, and every test that needs no server process
	$(BIN)/pytest -q -n 2 -m "not server" -p no:cacheprovider

test: install  ## run the whole test suite (services it needs are checked first)
	@bash .ci/services.sh check
# two workers, one test module each: much of the suite waits on servers, sleeps and the network (10.5 min vs 26)
	$(BIN)/pytest -q -n 2 --dist loadfile

lint: install  ## ruff (rules and formatting), mypy --strict on tasks/ flows/ cli/, the layers contract
	$(BIN)/ruff check .
	$(BIN)/ruff format --check --quiet .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache >/dev/null || $(BIN)/lint-imports --no-cache

format:  ## rewrite the code in the project's format and apply safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

screenshots: install  ## a PNG of every dashboard page (synthetic demo data) into docs/screenshots/
	@test -x /usr/bin/chromium || { echo 'needs Debian chromium: apt-get install -y chromium' >&2; exit 1; }
	$(BIN)/python -m dashboard.screenshots --out docs/screenshots

bench: install  ## benchmarks; figures go to bench/README.md
	cd bench && ../$(BIN)/python ingest.py --rows 100000 1000000
	cd bench && ../$(BIN)/python retrain.py
	cd bench && ../$(BIN)/python drift_calibration.py
	cd bench && ../$(BIN)/python rounds.py --households 1000000
	cd bench && ../$(BIN)/python api_load.py

clean:  ## remove generated data (keeps .venv)
	rm -rf data .pytest_cache .mypy_cache
