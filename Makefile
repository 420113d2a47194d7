# Two commands on a fresh machine (README quickstart):
#   make demo   set up .venv, then train the spiking digits classifier (aura-snn demo)
#   make test   set up .venv, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.aura-installed
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt
OUT    ?= out/demo

.PHONY: setup demo test test-all bench lint clean

setup: $(STAMP)

# lava-nc 0.10.0 declares Python<3.11: its real dependencies come from the [lava]
# extra, then lava itself without them; hardware/lava_compat.py patches the one
# Python 3.11 incompatibility at import time.
$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) -q -e ".[peers,lava,distributed,dev]"
	$(PIP) -q --no-deps --ignore-requires-python lava-nc==0.10.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/aura-snn demo --out $(OUT)

test: $(STAMP)
	$(BIN)/ruff check aura_snn hybrid neuromodulation hardware benchmarks examples tests
	$(BIN)/python -m pytest -n 2 -q -rs tests

test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q -rs --run-slow tests

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_lif.py --quick --json out/bench_lif.json

lint: $(STAMP)
	$(BIN)/ruff check aura_snn hybrid neuromodulation hardware benchmarks examples tests

clean:
	rm -rf $(VENV) out .pytest_cache
