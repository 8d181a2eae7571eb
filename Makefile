# Shortcuts; each target is the README's command of the same purpose.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint format bench

run:
	python3 -m venv $(VENV) && $(BIN)/pip install -q . && $(BIN)/reputation serve --no-auth

test:
	python3 -m venv $(VENV) && $(BIN)/pip install -q -e '.[test]' && $(BIN)/pytest

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

format:
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench:
	$(BIN)/python -m benchmarks
