# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_PEOPLE ?= 20000
DEMO_SEED   ?= 7
DEMO_DIR    ?= data/demo
PORT        ?= 8501

.PHONY: run test setup lint typecheck bench clean demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall whenever the project definition or the lock changes.
$(STAMP): $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev,bench,browser]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/portal synth --people $(DEMO_PEOPLE) --seed $(DEMO_SEED) --out $(DEMO_DIR)/raw
	@if $(BIN)/portal --help | grep -q " run "; then $(BIN)/portal run --raw $(DEMO_DIR)/raw --demo; else echo "make run: the pipeline (portal run) is not built yet; the portal will say what is missing."; fi

run: demo
	$(BIN)/streamlit run app.py --server.port $(PORT) --server.headless true

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 tests

lint: $(STAMP)
	$(BIN)/ruff check pipelines anonymise synthetic portal tests benchmarks app.py pages
	$(BIN)/ruff format --check pipelines anonymise synthetic portal
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_synth.py

clean:
	rm -rf $(VENV) data/demo .pytest_cache
