# maskrcnn_body top-level Makefile.
#   make            install the package + dependencies into the active Python, build libs/ ops
#   make test       run the whole test suite (what CI runs)
#   make test-fast  the quick tier (< 2 minutes): everything but the tests marked slow
#   make lint       ruff (lint + format check) and mypy on config, ops, evaluation
#   make TF=gpu     install tensorflow[and-cuda] instead of tensorflow-cpu (TF=none: keep your own)
#   make bench      run the benchmarks and write docs/BENCHMARKS.md
PYTHON ?= python
TF ?= cpu
EXTRAS := $(if $(filter none,$(TF)),test,$(TF),test)

.PHONY: all install ops gpu test test-fast lint bench clean
all: install ops

install:
	$(PYTHON) -m pip install -e ".[$(EXTRAS)]"

ops:
	$(MAKE) -C libs PYTHON=$(PYTHON)

gpu:
	$(MAKE) -C libs gpu PYTHON=$(PYTHON)

test:
	$(PYTHON) -m pytest -q tests

test-fast:
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
