# Every target installs what it needs into .venv first (once; a no-op afterwards).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: install test bench smoke quick report lint format bench-micro clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=/path/to/python3.11)"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

bench: install
	$(PY) -m bench.run --strategies all $(ARGS)

smoke: install
	HF_HUB_OFFLINE=1 $(PY) -m bench.run --profile smoke --strategies all --out reports/smoke --force $(ARGS)

report: install
	$(PY) -m bench.report $(or $(DIR),reports/quick)

bench-micro: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest tests/benchmarks --benchmark-only --benchmark-autosave \
		--benchmark-storage=reports/benchmarks -p no:cacheprovider $(ARGS)

lint: install
	$(PY) -m ruff check bench strategies tests
	$(PY) -m ruff format --check bench strategies tests

format: install
	$(PY) -m ruff format bench strategies tests
	$(PY) -m ruff check --fix bench strategies tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info reports/*/ .benchmarks
