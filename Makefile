# Everything a fresh machine needs is installed from here: a virtualenv in .venv with the package and its dev tools,
# and (for make test) the system packages the tests use for real: a PostgreSQL server and headless Chromium.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: help venv system-deps demo test lint fmt bench reliability serve clean

help:
	@echo "make demo        - run the demo on a local file store (./demo-home)"
	@echo "make test        - install everything (PostgreSQL, Chromium included) and run the whole test suite"
	@echo "make lint        - ruff (lint + format check) and mypy --strict"
	@echo "make bench       - benchmarks against the physical floor and peers; writes docs/benchmarks.md"
	@echo "make reliability - the full durability campaign; writes docs/reliability.md"
	@echo "make serve       - the dashboard on ./demo-home (after make demo)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

venv: $(STAMP)

# PostgreSQL (run by the tests as the unprivileged postgres user) and Chromium + ChromeDriver for the browser test.
system-deps:
	sh scripts/system-deps.sh

demo: $(STAMP)
	$(BIN)/python examples/demo.py --home ./demo-home

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks reliability
	$(BIN)/ruff format --check src tests examples benchmarks reliability
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format src tests examples benchmarks reliability
	$(BIN)/ruff check --fix src tests examples benchmarks reliability

bench: $(BENCH_STAMP) system-deps
	$(BIN)/python -m benchmarks

reliability: $(STAMP)
	$(BIN)/python -m reliability

serve: $(STAMP)
	$(BIN)/atlas-tasks serve --home ./demo-home

clean:
	rm -rf $(VENV) demo-home .pytest_cache .mypy_cache .ruff_cache
