# Everything a new user or CI needs: `make test` bootstraps its own environment on a fresh
# machine (a pinned uv in .uv/, the locked dependencies in .venv/), then lints, type-checks
# and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup lint types unit report reliability test bench bench-quick clean

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups --python $(PYTHON)
	touch $@

setup: $(VENV)/.synced ## Create .venv with the tap and its dev tools

lint: setup ## ruff: style and common bugs
	$(BIN)/ruff check tap_usersnap tests scripts benchmarks
	$(BIN)/ruff format --check tap_usersnap tests scripts benchmarks

types: setup ## mypy
	$(BIN)/mypy tap_usersnap tests scripts benchmarks

unit: setup ## the test suite alone (it writes the reliability figures to build/)
	$(BIN)/pytest

report: setup ## docs/reliability.md and the README's table, from the last test run
	$(BIN)/python scripts/reliability_report.py

reliability: setup ## the fault suite and the crash-and-resume trials alone, then their figures
	$(BIN)/pytest tests/test_faults.py tests/test_crash_resume.py
	$(BIN)/python scripts/reliability_report.py

test: lint types unit report ## lint, types, every test, then the reliability figures

BENCH_ARGS ?=
bench: setup ## issue 5's benchmark: tap vs a plain requests loop (a few minutes; BENCH_ARGS=--help)
	$(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

bench-quick: setup ## the benchmark on small data, one run each: a smoke test (~15 s)
	$(BIN)/python -m benchmarks.bench --quick $(BENCH_ARGS)

clean:
	rm -rf .uv $(VENV) .pytest_cache .mypy_cache .ruff_cache
