# VAE Training Strategies: `make book` builds the HTML book, `make test` runs the tests.
# Both create .venv from requirements.txt when it is missing or older than the pins.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP := PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore $(PY) -m pip --quiet

.PHONY: book book-smoke test test-fast test-busy lint lock check-lock bench bench-book clean venv template
PARAMS ?=

# One line per step; pip itself is quiet (its errors still show). The editable install's
# "Editable installation ... folders with the same name" notice is information only (the folder of
# that name is the package itself), so it is filtered; any other warning of the build shows.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || { echo "[venv] creating $(VENV) with $(PYTHON)" && $(PYTHON) -m venv $(VENV); }
	@echo "[venv] installing the lock (requirements.txt): a few minutes the first time"
	@$(PIP) install --upgrade pip
	@$(PIP) install -r requirements.txt
	@echo "[venv] installing vae-utils from this folder (editable)"
	@PYTHONWARNINGS="ignore:Editable installation" $(PIP) install --no-deps --no-build-isolation -e .
	@touch $@

venv: $(STAMP)

# The HTML book into _build/html (full profile). `make book PARAMS=my.yaml` applies a reader's
# parameter file (YAML keyed by chapter stem). Unchanged chapters come from the execution cache.
book: $(STAMP)
	$(PY) -m bookdriver build --profile full $(if $(PARAMS),--params $(PARAMS))

# Every chapter with tiny grids, into _build/smoke (never touches _build/html); `make test` runs it too.
book-smoke: $(STAMP)
	$(PY) -m bookdriver build --profile smoke $(if $(PARAMS),--params $(PARAMS))

# Two pytest workers (pytest-xdist), each module's tests in one of them (--dist loadscope: a module's
# fixtures are made once), handed out in conftest.py's order (the smoke build first, not last as by
# size). `make test TEST_JOBS=0` runs them in this process.
TEST_JOBS ?= 2
XDIST = $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadscope --no-loadscope-reorder)
test: $(STAMP)
	$(PY) -m pytest $(XDIST) $(ARGS)

# The unit tests alone (under 3 minutes on 2 cores): the `slow` ones (book builds, papermill
# kernels, installs, Dask) deselected.
test-fast: $(STAMP)
	$(PY) -m pytest $(XDIST) -m "not slow" $(ARGS)

# The suite as a loaded machine runs it: BUSY processes (default 2) spinning on the CPU, and pytest
# with SIGINT ignored, as in a background job (`nohup make test &`); the busy processes end with it.
# `make test-busy ARGS=tests/test_interrupts.py` runs a part.
BUSY ?= 2
test-busy: $(STAMP)
	@echo "[test-busy] $(BUSY) busy processes; the tests with SIGINT ignored (as in a background job)"
	@pids=""; for i in $$(seq 1 $(BUSY)); do $(PY) -c "while True: pass" & pids="$$pids $$!"; done; \
	trap 'kill $$pids 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	(trap '' INT; exec $(PY) -m pytest $(XDIST) $(ARGS))

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
