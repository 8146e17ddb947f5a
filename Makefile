# One entry point per job. Each target creates the virtual environment and installs the project first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-all bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
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

clean:
	rm -rf .ame .pytest_cache
