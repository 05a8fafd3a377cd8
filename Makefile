# Two entry points for a fresh machine: `make demo` and `make test`. Each installs what it needs
# into .venv (once; re-running is a no-op until pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.speechgap-installed

.PHONY: install browser demo test lint clean

install: $(STAMP)

# torch is pinned here, not only in pyproject: 2.13.0 is the CPU wheel; an unpinned torch pulls CUDA.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/speechgap demo --out runs/demo

# The report's browser tests drive Debian's Chromium through Playwright (installed with the test extra).
browser:
	@command -v chromium >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  (echo "the browser tests need Chromium: apt-get install chromium (as root)" >&2; exit 1)

test: install browser
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
