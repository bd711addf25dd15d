# mlwf_nb: `make demo` and `make test` work on a fresh machine from nothing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export KERAS_BACKEND ?= tensorflow
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install demo test lint bench soak notebooks clean hub-env hub-test

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

## test: the whole test suite (soak cases excluded; see `make soak`; the hub: `make hub-test`)
test: install
	$(BIN)/python -m pytest -m "not soak and not hub" -q

lint: install
	$(BIN)/ruff check mlwf_nb tests benchmarks
	$(BIN)/mypy mlwf_nb

bench: install
	$(BIN)/python -m benchmarks.run

soak: install
	$(BIN)/python -m pytest -m soak -q tests/reliability

## hub-test: the tutorials on a real JupyterHub, two local users, LocalProcessSpawner (root; docs/jupyterhub.md)
# The users' environment is made from /usr/bin/python3 outside root's private home, and holds a
# regular (not editable) install of this checkout, so every user can read and run it.
HUB_PYTHON ?= /usr/bin/python3
HUB_PREFIX ?= /opt/mlwf-hub-test
HUB_ENV    := $(HUB_PREFIX)/env
HUB_PROXY  := tests/hub/node_modules/.bin/configurable-http-proxy

$(HUB_ENV)/bin/python:
	$(HUB_PYTHON) -m venv $(HUB_ENV)
	$(HUB_ENV)/bin/python -m pip install -q --upgrade pip setuptools wheel

hub-env: $(HUB_ENV)/bin/python
	$(HUB_ENV)/bin/python -m pip install -q --no-warn-script-location '.[hub]'
	$(HUB_ENV)/bin/mlwf kernel install --sys-prefix
	chmod -R a+rX,go-w $(HUB_PREFIX)

$(HUB_PROXY): tests/hub/package.json tests/hub/package-lock.json
	npm ci --prefix tests/hub --no-audit --no-fund --loglevel=error
	touch $(HUB_PROXY)

hub-test: install hub-env $(HUB_PROXY)
	MLWF_HUB_ENV=$(HUB_ENV) MLWF_HUB_PREFIX=$(HUB_PREFIX) MLWF_HUB_PROXY=$(abspath $(HUB_PROXY)) \
	  $(BIN)/python -m pytest -m hub -q -s -p no:cacheprovider tests/hub

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
