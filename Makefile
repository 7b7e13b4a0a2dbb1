# VAE Training Strategies: `make book` builds the HTML book, `make test` runs the tests.
# Both create .venv from requirements.txt when it is missing or older than the pins.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book test lint bench clean demo

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

# Until the book exists: a demo training run that prints its held-out metrics.
book: $(STAMP)
	$(PY) -m vae_utils train --dataset digits --epochs 30

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/throughput.py

clean:
	rm -rf _build results artifacts
