# maskrcnn_body top-level Makefile.
#   make            install the package + dependencies into the active Python, build libs/ ops
#   make test       run the whole test suite (what CI runs)
#   make test-fast  the quick tier (< 2 minutes): everything but the tests marked slow
#   make lint       ruff (lint + format check) and mypy on the whole package
#   make TF=gpu     install tensorflow[and-cuda] instead of tensorflow-cpu (TF=none: keep your own)
#   make bench      run the benchmarks and write docs/BENCHMARKS.md
#
# The interpreter: PYTHON=... when given, else the active virtual environment's python, else python3, else
# python (tools/find_python.sh; it explains what to do when there is none, or when it is a system Python that
# refuses pip installs). `make` and `make test` install what they need from the system (Node.js/npm for `make web`;
# Chromium, shellcheck for the tests) through apt when they can, or say in one line what to run (tools/system_deps.sh).
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell tools/find_python.sh 2>/dev/null)
endif
TF ?= cpu
EXTRAS := $(if $(filter none,$(TF)),test,$(TF),test)

.PHONY: all install ops web gpu test test-fast test-deps check-python lint bench clean
all: install ops web

check-python:
	@if [ -z "$(PYTHON)" ]; then tools/find_python.sh >/dev/null; exit 1; fi

install: check-python
	$(PYTHON) -m pip install -e ".[$(EXTRAS)]"

ops: check-python
	$(MAKE) -C libs PYTHON=$(PYTHON)

# ONNX Runtime Web for the in-browser page (`export --web`), from the npm registry, pinned and checked
# (web/fetch_runtime.py, docs/BROWSER.md). Without npm and no way to install it: a warning (an error under CI).
web: check-python
	@tools/system_deps.sh node npm || [ "$${CI:-}" != "true" ]
	$(PYTHON) web/fetch_runtime.py --optional

gpu:
	$(MAKE) -C libs gpu PYTHON=$(PYTHON)

test-deps:
	@tools/system_deps.sh chromium shellcheck node npm

test: check-python test-deps
	$(PYTHON) -m pytest -q tests

test-fast: check-python
	$(PYTHON) -m pytest -q -m "not slow" tests

lint:
	@$(PYTHON) -c "import ruff, mypy" 2>/dev/null || { echo "make lint: ruff/mypy missing, installing the [test] extra's linters"; \
		$(PYTHON) -m pip install --quiet "ruff>=0.6" "mypy>=1.10"; }
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

bench:
	$(PYTHON) -m bench.run_all

clean:
	$(MAKE) -C libs clean
