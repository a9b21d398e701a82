# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# 50,000 people: every headline tile has 35+ in every year (none shows c); generating
# and running the pipeline take about 40 s of CPU (docs/measures.md).
DEMO_PEOPLE ?= 50000
DEMO_SEED   ?= 7
DEMO_DIR    ?= data/demo
PORT        ?= 8501
SERVICE_PORT ?= 8600

.PHONY: run test setup lock lint contracts typecheck bench clean demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall whenever the project definition or the lock changes. The lock carries a hash
# for every file (scripts/lock.py), so nothing but the tested files can be installed; the
# project itself comes last, without dependencies (they are all in the lock).
$(STAMP): $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-pin after changing dependencies in pyproject.toml (`LOCK_ARGS=--upgrade` to move on).
lock: $(BIN)/python
	$(BIN)/python scripts/lock.py $(LOCK_ARGS)

setup: $(STAMP)

DEMO_STORE  ?= sqlite:///$(CURDIR)/$(DEMO_DIR)/portal.sqlite

# The demo county is regenerated only when missing (or made before it shipped population
# estimates); the pipeline runs every time.
DEMO_RAW := $(DEMO_DIR)/raw/reference/population_estimates.csv
$(DEMO_RAW): | $(STAMP)
	$(BIN)/portal synth --people $(DEMO_PEOPLE) --seed $(DEMO_SEED) --out $(DEMO_DIR)/raw

demo: $(STAMP) $(DEMO_RAW)
	$(BIN)/portal db upgrade --store $(DEMO_STORE)
	$(BIN)/portal run --raw $(DEMO_DIR)/raw --work $(DEMO_DIR)/work --store $(DEMO_STORE) --demo
	$(BIN)/portal comparators load --demo --store $(DEMO_STORE)

# Two processes: the release service (the only one with the secrets, the store and the work
# folder) and the Streamlit portal (its client). Ctrl-C stops both.
run: demo
	$(BIN)/portal up --demo --store $(DEMO_STORE) --work $(DEMO_DIR)/work \
		--port $(PORT) --service-port $(SERVICE_PORT)

# Lint, types and the import contracts first (fast, and a broken layer fails the build),
# then the suite. loadgroup keeps each browser module (one `portal up` each) on one worker.
test: lint contracts
	$(BIN)/python -m pytest -n 2 --dist loadgroup tests

lint: $(STAMP)
	$(BIN)/ruff check registry pipelines anonymise synthetic portal tests benchmarks scripts app.py pages portal_web.py
	$(BIN)/ruff format --check registry pipelines anonymise synthetic portal
	$(BIN)/mypy

# The zones as layers: [tool.importlinter] in pyproject.toml.
contracts: $(STAMP)
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_synth.py

clean:
	rm -rf $(VENV) data/demo .pytest_cache
