# Everything a fresh machine needs is installed from here: a virtualenv in .venv with the package and its dev tools.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv demo test lint fmt clean

help:
	@echo "make demo   - run the demo on a local file store (./demo-home)"
	@echo "make test   - install everything and run the whole test suite"
	@echo "make lint   - ruff (lint + format check) and mypy --strict"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py --home ./demo-home

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format src tests examples
	$(BIN)/ruff check --fix src tests examples

clean:
	rm -rf $(VENV) demo-home .pytest_cache .mypy_cache .ruff_cache
