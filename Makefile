# Shortcuts for the commands in README.md and CONTRIBUTING.md; all use the venv made by `make setup`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-fast lint format bench

setup:
	python3 -m venv $(VENV)
	$(BIN)/pip install -e '.[dev]'

run:
	$(BIN)/streamlit run streamlit_app.py

# Everything, browser tests included (needs Debian's chromium).
test:
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast:
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not browser"

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Fixes what ruff can (import order included), then formats.
format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Timings are only meaningful on an idle machine.
bench:
	$(BIN)/python bench/bench_inference.py
	$(BIN)/python bench/bench_detect.py
	$(BIN)/python bench/bench_tracking.py
	$(BIN)/python bench/bench_ray.py
