# Everything a new user or CI needs: `make test` bootstraps its own environment on a fresh
# machine (a pinned uv in .uv/, the locked dependencies in .venv/, Meltano in .meltano-venv/),
# then lints, type-checks and runs the tests; `make demo` runs the tap through Meltano into a
# local DuckDB file against a sample API.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# Meltano is a tool that runs the tap as a subprocess from a venv of its own, so it gets its
# own venv too: in .venv its pins would constrain the tap's libraries (sqlalchemy < 2.1).
MELTANO_VENV := .meltano-venv
CODE := tap_usersnap fake_usersnap harness tests scripts benchmarks demo
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export MELTANO_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: setup meltano-venv meltano-lock lint types unit e2e report reliability test bench bench-quick bench-deletes demo dist clean

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Bytecode is compiled at install, as pip does: with PYTHONDONTWRITEBYTECODE set (as on these
# machines) every run would otherwise parse the SDK's whole source again. (A stale .pyc of the
# tap's own source is ignored by Python once the source changes.)
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups --compile-bytecode --python $(PYTHON)
	$(BIN)/python -m compileall -q tap_usersnap
	touch $@

$(MELTANO_VENV)/.installed: requirements/meltano.txt | $(UV)
	$(UV) venv --quiet --clear --python $(PYTHON) $(MELTANO_VENV)
	$(UV) pip install --quiet --python $(MELTANO_VENV)/bin/python --require-hashes \
		-r requirements/meltano.txt
	touch $@

setup: $(VENV)/.synced ## Create .venv with the tap and its dev tools

meltano-venv: $(MELTANO_VENV)/.installed ## Meltano, pinned with hashes, in .meltano-venv

meltano-lock: | $(UV) ## Re-pin requirements/meltano.txt after editing requirements/meltano.in
	$(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make meltano-lock" \
		-o requirements/meltano.txt requirements/meltano.in

lint: setup ## ruff; the layers (import-linter), no import cycle and size limits; actionlint
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/check_structure.py tap_usersnap
	$(BIN)/actionlint -shellcheck=$(BIN)/shellcheck -pyflakes= .github/workflows/*.yml

types: setup ## mypy
	$(BIN)/mypy $(CODE)

unit: setup ## the tests that need neither Meltano nor PostgreSQL (writes build/)
	$(BIN)/pytest -m "not e2e"

e2e: setup meltano-venv ## Meltano into a throwaway PostgreSQL and into DuckDB (tests/e2e/)
	$(BIN)/pytest -m e2e

# Rewrites tracked files, so a maintainer runs it on purpose after a test run; `make test`
# leaves the working tree as it found it (its figures land in build/, which git ignores).
report: setup ## docs/reliability.md and the README's table, from the last test run
	$(BIN)/python scripts/reliability_report.py

reliability: setup ## tests/reliability/ alone: faults, 429s, crash trials; then their figures
	$(BIN)/pytest tests/reliability
	$(BIN)/python scripts/reliability_report.py

test: lint types unit e2e ## lint, types and every test (what CI runs: .ci/run)

BENCH_ARGS ?=
# The tap's bytecode is compiled first, as an install does: with PYTHONDONTWRITEBYTECODE set,
# an edited module would otherwise be compiled again by every timed run.
bench: setup ## the benchmark: tap vs a plain requests loop, then what deletes cost (minutes)
	$(BIN)/python -m compileall -q tap_usersnap
	$(BIN)/python -m benchmarks.bench $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.deletes

bench-quick: setup ## the benchmark on small data, one run each: a smoke test (~15 s)
	$(BIN)/python -m benchmarks.bench --quick $(BENCH_ARGS)

bench-deletes: setup ## what deletes, late items and sweeps cost (20 x 500 items, 100 ms)
	$(BIN)/python -m benchmarks.deletes

demo: setup meltano-venv ## sample Usersnap API -> meltano run tap-usersnap target-duckdb, twice
	$(BIN)/python -m demo.run_demo

dist: | $(UV) ## wheel and sdist in dist/ (uv build), checked to hold the schemas and LICENSE
	rm -rf dist
	$(UV) build --quiet --python $(PYTHON) --out-dir dist
	$(PYTHON) scripts/check_dist.py dist

clean:
	rm -rf .uv $(VENV) $(MELTANO_VENV) .pytest_cache .mypy_cache .ruff_cache dist
