# Two commands on a fresh machine: `make run` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
N      ?= 10000

.PHONY: help run test test-all lint bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## bulk-link inventory/ against the built-in Azure emulator; reports land in reports/latest/
	$(BIN)/python -m orchestrator demo --report-dir reports

test: $(STAMP)  ## the test suite (fast variants; under 10 minutes on 2 cores)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)  ## the test suite including slow variants
	$(BIN)/python -m pytest -q -m ''

lint: $(STAMP)  ## ruff and mypy (the package and the benchmark)
	$(BIN)/ruff check orchestrator bench tests
	$(BIN)/mypy orchestrator bench

bench: $(STAMP)  ## throughput, CPU per identity, peak memory against the emulator (N=10000)
	$(BIN)/python -m bench --n $(N) --out reports/bench.json

# The journal (the history each run is compared with) lives outside reports/ and is never deleted here; a journal
# an older version left in reports/ (journal.sqlite*) is kept too.
clean:  ## remove the virtualenv, caches and generated reports (never the journal)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
	find reports -mindepth 1 ! -name .gitignore ! -name '*journal.sqlite*' -delete \
		2>/dev/null || true
