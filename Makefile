# One entry point per job. Each target creates the virtual environment and installs the project first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-all bench lint docs docs-serve clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	-scripts/install_haproxy.sh $(BIN)/python  # Ray Serve's fast ingress; if it cannot, `ame serve run` says what it costs
	touch $@

install: $(BIN)/.installed

demo: install  ## the main job on the embedded defaults
	$(BIN)/ame demo

test: install  ## the fast suite (what CI runs)
	$(BIN)/python -m pytest

test-all: install  ## everything, slow tests included
	$(BIN)/python -m pytest -m ""

bench: install  ## every benchmark, with its baseline, in one run
	$(BIN)/python -m benchmarks

lint: install  ## ruff, with the rules of pyproject.toml ([tool.ruff])
	$(BIN)/ruff check .

docs: install  ## the documentation site into site/ (reference pages generated from the code); fails on any warning
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: install  ## the documentation site on localhost:8000, rebuilt on every change
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

clean:
	rm -rf .ame .pytest_cache site
