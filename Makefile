# gtm_assets: the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export GTM_HOME ?= $(CURDIR)/.gtm
export DAGSTER_HOME ?= $(GTM_HOME)/dagster
export DAGSTER_PG_PORT ?= 5432
DEMO_DAYS ?= 90
DEMO_END ?= $(shell date -u -d yesterday +%F)
DEMO_START ?= $(shell date -u -d "$(DEMO_END) -$$(( $(DEMO_DAYS) - 1 )) days" +%F)

.PHONY: demo test dev install homes bench clean

$(BIN)/gtm: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

install: $(BIN)/gtm

homes:
	@mkdir -p "$(GTM_HOME)" "$(DAGSTER_HOME)"
	@test -f "$(DAGSTER_HOME)/dagster.yaml" || cp $(if $(DAGSTER_PG_HOST),deploy/dagster.yaml,dagster.yaml) "$(DAGSTER_HOME)/dagster.yaml"

demo: install homes
	GTM_DEMO_END_DATE=$${GTM_DEMO_END_DATE:-$(DEMO_END)} $(BIN)/gtm run --start $(DEMO_START) --end $(DEMO_END)
	@echo ""
	@echo "Warehouse: $${GTM_WAREHOUSE_URL:-duckdb:///$(GTM_HOME)/warehouse.duckdb}"
	@echo "Open the Dagster UI with: make dev   (then http://127.0.0.1:3000)"

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

dev: install homes
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: install
	$(BIN)/python benchmarks/bench_pipeline.py

clean:
	rm -rf "$(GTM_HOME)"
