# The two commands of the README: `make demo` (the main job) and `make test`.
# Both create or reuse the virtual environment in .venv and install the pinned CPU stack.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements-cpu.lock
STAMP := $(VENV)/.l2s-installed

.PHONY: demo test lint env

env: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -r $(LOCK)
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@# The registry's torchaudio is a CUDA build: where its extension cannot load, drop it and keep
	@# the pure-Python parts (speechbrain and vocos need only those).
	$(BIN)/python -c "import torchaudio" 2>/dev/null || { \
	  echo "torchaudio's compiled extension does not load here: removing it (pure-Python parts kept)"; \
	  rm -f $(VENV)/lib/python3*/site-packages/torchaudio/lib/*.so; \
	  $(BIN)/python -c "import torchaudio"; }
	touch $@

demo: $(STAMP)
	$(BIN)/l2s demo

lint: $(STAMP)
	$(BIN)/flake8 l2s tests

test: lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q
