# smpp-bridge: `make run` starts the whole bridge on this machine, `make test` runs every test,
# `make lint` runs ruff and mypy. Each creates .venv and installs the project into it when missing
# (or when pyproject.toml or constraints.txt changed), every package at its constraints.txt pin.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint constraints bench faults clean interop-deps

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test,lint]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/smpp-bridge run

# Third-party SMPP software for the interoperability tests: node-smpp from the npm registry, and
# smpp34 from PyPI in its own virtualenv (var/venv-smpp34, kept apart from the project's .venv).
SMPP34_VENV := var/venv-smpp34
interop-deps:
	@if [ -f tests/interop/package.json ]; then \
	  if command -v npm >/dev/null 2>&1; then \
	    (cd tests/interop && { [ -d node_modules/smpp ] || npm ci --no-audit --no-fund --loglevel=error; }); \
	  else echo "npm not found: the interop tests need Node.js and npm (apt-get install nodejs npm)" >&2; exit 1; fi; \
	fi
	@if [ -f tests/interop/requirements-smpp34.txt ] && \
	    [ ! $(SMPP34_VENV)/.installed -nt tests/interop/requirements-smpp34.txt ]; then \
	  rm -rf $(SMPP34_VENV) && $(PYTHON) -m venv $(SMPP34_VENV) && \
	  $(SMPP34_VENV)/bin/python -m pip install -q -r tests/interop/requirements-smpp34.txt && \
	  touch $(SMPP34_VENV)/.installed \
	  || { rm -rf $(SMPP34_VENV); echo "could not install smpp34 into $(SMPP34_VENV)" >&2; exit 1; }; \
	fi

# ruff (lint, then the format check) and mypy, with the settings in pyproject.toml and the
# versions pinned by the lint extra. Every step runs, so one pass shows all that is wrong.
lint: $(STAMP)
	@rc=0; \
	echo "== ruff check ."; $(VENV)/bin/ruff check . || rc=1; \
	echo "== ruff format --check ."; $(VENV)/bin/ruff format --check . || rc=1; \
	echo "== mypy"; $(VENV)/bin/mypy || rc=1; \
	exit $$rc

# Rewrite constraints.txt from what .venv has now (after upgrading a package in it on purpose;
# docs/testing.md, "Habits"). Not on the stamp: that would first re-install the old pins.
constraints:
	@test -x $(PY) || { echo "no $(VENV): run make lint or make test first" >&2; exit 1; }
	@{ echo "# Every package of the project's venv, pinned (make constraints wrote it from pip freeze)."; \
	  echo "# make installs with pip install -c constraints.txt, so an upstream release changes nothing"; \
	  echo "# until this file does. How to upgrade a pin: docs/testing.md, \"Habits\"."; \
	  $(PY) -m pip freeze --all --exclude-editable; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt
	@git diff --stat -- constraints.txt 2>/dev/null || true

# pytest's exit code 5 ("no tests collected") is a failure here, never a pass.
test: $(STAMP) interop-deps
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Every bench/ script with quick settings (about 4 min in all, each under a timeout), each table
# rewritten in its marked block of docs/benchmarks.md (bench/publish.py). Each script runs as a
# module from the repository root (python -m bench.accept): no sys.path edits.
# BENCH_ARGS="--long" runs each with its own defaults; "--only e2e" one; "--dry-run" prints.
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m bench.publish $(BENCH_ARGS)

# The delivery engine's fault scenarios, each run for real in a temporary directory, then a summary
# table (docs/testing.md, "The fault suite"); about a minute. FAULTS_ARGS="--scale 5" for longer.
FAULTS_ARGS ?=
faults: $(STAMP)
	$(VENV)/bin/smpp-bridge prove faults $(FAULTS_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
