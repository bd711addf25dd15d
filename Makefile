# mlwf_nb: `make demo` and `make test` work on a fresh machine from nothing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export KERAS_BACKEND ?= tensorflow
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install demo test lint bench soak notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel

$(STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/mlwf kernel install --sys-prefix
	touch $(STAMP)

install: $(STAMP)

## demo: the main job (cpu preset) end to end on the embedded local backend
demo: install
	$(BIN)/python -m mlwf_nb.demo

## test: the whole test suite (soak cases excluded; see `make soak`)
test: install
	$(BIN)/python -m pytest -m "not soak" -q

lint: install
	$(BIN)/ruff check mlwf_nb tests benchmarks
	$(BIN)/mypy mlwf_nb

bench: install
	$(BIN)/python -m benchmarks.run

soak: install
	$(BIN)/python -m pytest -m soak -q tests/reliability

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
