# Two entry points: `make demo` (main job on the embedded synthetic default) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := test,bench,dynamics,sweep  # every optional extra: `make test` installs and tests them all

.PHONY: demo test lint bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0  # pinned first: a CPU wheel here, never an unpinned CUDA pull
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	$(BIN)/pip install -q --no-deps nlb-tools==0.0.4
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nlb-eval demo --overwrite  # replaces only its own earlier runs/demo and demo package

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
