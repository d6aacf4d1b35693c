# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing and install the package (editable) with its pins.
# Override TORCH_PINS on machines whose local wheels differ, e.g.
#   make test TORCH_PINS="torch==2.9.1 torchvision==0.24.1"
# GPU machines (vLLM pins torch exactly: vLLM 0.33 and 0.34 need torch 2.14.0), with the GPU extra:
#   make setup VENV=.venv-gpu EXTRAS=dev,gpu TORCH_PINS="torch==2.14.0 torchvision==0.29.0"
#   .venv-gpu/bin/pip install flash-attn --no-build-isolation   # its build imports torch
# The suite on the transformers version that resolution picks (see the README's dry run):
#   make test VENV=.venv-tf TRANSFORMERS_PIN=transformers==5.20.2
PYTHON ?= python3
VENV ?= .venv
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
TRANSFORMERS_PIN ?=
EXTRAS ?= dev
PY := $(VENV)/bin/python
STAMP := $(VENV)/.videor1-installed
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: setup test test-slow test-all lint format demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS) $(TRANSFORMERS_PIN) -e '.[$(EXTRAS)]'
	@touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench experiments
	$(VENV)/bin/ruff format --check src tests bench experiments

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests bench experiments
	$(VENV)/bin/ruff format src tests bench experiments

# Default suite (pyproject addopts): unit + integration, every module's docstring examples, every
# bench/*.py at --toy size; slow and gpu tests excluded.
test: lint
	$(PY) -m pytest -q $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

# Slow tests (long multi-process and end-to-end runs), documented in the README.
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

test-all: lint
	$(PY) -m pytest -q -m 'not gpu' $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/videor1 demo $(DEMO_ARGS)

bench: $(STAMP)
	@echo "See bench/README.md: each script is run on its own (they install peers into a separate env)."

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
