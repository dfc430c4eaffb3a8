# dinar-pipeline: the README's commands. Every target sets up what it needs (idempotently).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STATE ?= $(or $(DINAR_STATE_DIR),$(HOME)/.local/state/dinar-pipeline)
RUNS ?= runs/demo
export DINAR_STATE_DIR := $(STATE)
export PREFECT_HOME ?= $(STATE)/prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180
export PREFECT_RESULTS_PERSIST_BY_DEFAULT := false
# Keep torch from oversubscribing the 2 cores when Dask runs several workers.
export KMP_DUPLICATE_LIB_OK := TRUE

.PHONY: setup demo test test-clients test-slow test-all fuzz bench eval train-demo server clean-venv

# The environment, built once; the stamp changes only when pyproject.toml does.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip check
	@touch $@

# The Khronos glTF validator (npm, project-local) for the GLB tests; skipped when npm is not installed.
VALIDATOR := tools/gltf-validator
$(VALIDATOR)/node_modules/.installed: $(VALIDATOR)/package-lock.json
	@if command -v npm >/dev/null; then (cd $(VALIDATOR) && npm ci --silent --no-audit --no-fund) && touch $@; \
	else echo "npm not found: the GLB validator tests will be skipped"; fi

# The report's 3D viewer (Google's <model-viewer>, npm, project-local; copied beside report.html at each report).
VIEWER := tools/model-viewer
$(VIEWER)/node_modules/.installed: $(VIEWER)/package-lock.json
	@if command -v npm >/dev/null; then (cd $(VIEWER) && npm ci --silent --no-audit --no-fund) && touch $@; \
	else echo "npm not found: the report will have no 3D viewer"; fi

setup: $(VENV)/.installed $(VALIDATOR)/node_modules/.installed $(VIEWER)/node_modules/.installed

demo: setup
	$(VENV)/bin/dinar run data/samples --out $(RUNS) --config configs/default.yaml

test: setup
	$(PY) -m pytest -q

# Our files in the real clients (marker `clients`): Blender's own glTF importer, headless, and the report's 3D
# viewer in headless Chromium. Installs Debian's blender 3.4 and chromium when missing (apt, ~1.5 min, root);
# `make test` runs the same tests where the clients are installed, else skips them with this hint.
CLIENT_PACKAGES := blender python3-numpy chromium chromium-driver
test-clients: setup
	@if ! command -v blender >/dev/null || ! command -v chromedriver >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -q $(CLIENT_PACKAGES); \
		else echo "missing clients: sudo apt-get install $(CLIENT_PACKAGES)"; exit 1; fi; fi
	$(PY) -m pytest -q -m clients

test-slow: setup
	$(PY) -m pytest -q -m slow

test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

# The decoders' fuzz tests at full strength (tests/fuzz/conftest.py: seeded, 5 s and 1 GB per case); `make test`
# runs the same tests with DINAR_FUZZ_EXAMPLES' default (200 per decoder).
fuzz: setup
	DINAR_FUZZ_EXAMPLES=100000 DINAR_FUZZ_REPORT=bench/results/fuzz.json OMP_NUM_THREADS=1 $(PY) -m pytest -q -p no:cacheprovider tests/fuzz

# All three phases of `dinar train` on a synthetic corpus at the CPU sizes, the bundle, and `dinar eval` of held-out
# persons with the trained and the untrained model (a benchmark, not a test: about an hour on one core;
# `python -m bench.train_demo --resume` keeps the phases an interrupted run finished).
train-demo: setup
	OMP_NUM_THREADS=1 $(PY) -m bench.train_demo

bench: setup
	$(PY) -m bench.run

# The evaluation protocol on the shipped Pose2Sim frames and a synthetic corpus (docs/evaluation.md):
# tables in runs/eval/*/summary.md, figures in bench/results/eval.json.
eval: setup
	$(PY) -m bench.run eval

# A local Prefect server (UI + API on 127.0.0.1:4200, SQLite under $(STATE)/prefect): while it runs, dinar commands
# use it instead of a temporary server (~10 s less each), and schedules can fire (`dinar serve` needs
# export PREFECT_API_URL=http://127.0.0.1:4200/api in its shell).
server: setup
	$(VENV)/bin/dinar server --host 127.0.0.1 --port 4200

clean-venv:
	rm -rf $(VENV)
