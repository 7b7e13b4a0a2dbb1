# VAE Training Strategies: `make book` builds the HTML book, `make test` runs the tests.
# Both create .venv from requirements.txt when it is missing or older than the pins.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book book-smoke test lint bench bench-book clean demo venv
PARAMS ?=

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

# The HTML book into _build/html (full profile). `make book PARAMS=my.yaml` applies a reader's
# parameter file (YAML keyed by chapter stem). Unchanged chapters come from the execution cache.
# Run as a file, not `-m vae_utils.book`, so the driver itself does not import TensorFlow.
book: $(STAMP)
	$(PY) vae_utils/book.py build --profile full $(if $(PARAMS),--params $(PARAMS))

# Every chapter with tiny grids, into _build/smoke (never touches _build/html); `make test` runs it too.
book-smoke: $(STAMP)
	$(PY) vae_utils/book.py build --profile smoke $(if $(PARAMS),--params $(PARAMS))

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/throughput.py

# Cold `make book` and a no-change rebuild, timed (moves _build/ aside and restores it).
bench-book: $(STAMP)
	$(PY) benchmarks/book_build.py

clean:
	rm -rf _build results artifacts
