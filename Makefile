# smpp-bridge: `make run` starts the whole bridge on this machine, `make test` runs every test.
# Both create .venv and install the project into it when missing (or when pyproject.toml changed).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test bench clean interop-deps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
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

# pytest's exit code 5 ("no tests collected") is a failure here, never a pass.
test: $(STAMP) interop-deps
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Each script runs as a module from the repository root (python -m bench.accept), so it imports
# bridge, smpp, tests.harness and bench like any other code: no sys.path edits.
bench: $(STAMP)
	@for script in bench/*.py; do \
	  name=$$(basename $$script .py); [ $$name = __init__ ] && continue; \
	  echo "== python -m bench.$$name"; $(PY) -m bench.$$name || exit 1; \
	done

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
