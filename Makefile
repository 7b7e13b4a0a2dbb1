# VAE Training Strategies: `make book` builds the HTML book, `make test` runs the tests.
# Both create .venv from requirements.txt when it is missing or older than the pins.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book book-smoke test lint lock check-lock bench bench-book clean venv template
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
book: $(STAMP)
	$(PY) -m bookdriver build --profile full $(if $(PARAMS),--params $(PARAMS))

# Every chapter with tiny grids, into _build/smoke (never touches _build/html); `make test` runs it too.
book-smoke: $(STAMP)
	$(PY) -m bookdriver build --profile smoke $(if $(PARAMS),--params $(PARAMS))

test: $(STAMP)
	$(PY) -m pytest

# The checks of .pre-commit-config.yaml, without changing files: CI runs them.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/nbstripout --verify $$(git ls-files '*.ipynb')

# requirements.txt is the lock: every platform's pins, resolved from pyproject.toml's lower bounds.
lock: $(STAMP)
	$(VENV)/bin/uv pip compile pyproject.toml --extra book --extra dask --extra test --extra dev \
		--universal --python-version 3.11 -o requirements.txt

# The lock installs from wheels on Linux x86-64 and macOS arm64 (needs the package index).
check-lock: $(STAMP)
	for platform in x86_64-manylinux_2_28 aarch64-apple-darwin; do \
		$(VENV)/bin/uv pip compile requirements.txt --python-platform $$platform --python-version 3.11 \
			--only-binary :all: --no-header --quiet -o /dev/null || exit 1; \
		echo "requirements.txt resolves from wheels on $$platform"; \
	done

# The papermill template's parameters cell, generated from TrainConfig's fields (after changing TrainConfig).
template: $(STAMP)
	$(PY) -c "from vae_utils.experiments.template import write_parameters; write_parameters()"

bench: $(STAMP)
	$(PY) benchmarks/throughput.py

# Cold `make book` and a no-change rebuild, timed (moves _build/ aside and restores it).
bench-book: $(STAMP)
	$(PY) benchmarks/book_build.py

clean:
	rm -rf _build results artifacts
