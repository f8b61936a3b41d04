# Every target installs what it needs into .venv first (once; a no-op afterwards).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: install test bench smoke report lint format bench-micro bench-data clean bench-meter gpu-check bench-cache bench-ceiling test-plan

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=/path/to/python3.11)"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not calibration"

# The plan-vs-measured check of `python -m bench.plan` (issue 13): ~5 minutes of real epochs,
# within 20% only on a machine that nothing else is loading.
test-plan: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m calibration tests/test_plan.py tests/test_plan_check.py

bench: install
	$(PY) -m bench.run $(ARGS)

smoke: install
	HF_HUB_OFFLINE=1 $(PY) -m bench.run --profile smoke --strategies all --out reports/smoke --force $(ARGS)

report: install
	$(PY) -m bench.report $(or $(DIR),reports/quick) $(ARGS)

bench-micro: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest tests/benchmarks --benchmark-enable --benchmark-only --benchmark-autosave \
		--benchmark-storage=reports/benchmarks -p no:cacheprovider $(ARGS)

bench-data: install
	HF_HUB_OFFLINE=1 $(PY) -m bench.cli.data $(ARGS)

# Prefix-cache write/read GB/s on this machine, and a cached epoch with the store in memory vs
# on disk (read wait vs compute). ARGS="--gib 4 --dir /fast/disk" to size and place it.
bench-cache: install
	HF_HUB_OFFLINE=1 $(PY) -m bench.cli.cache $(ARGS)

lint: install
	$(PY) -m ruff check bench strategies tests
	$(PY) -m ruff format --check bench strategies tests

format: install
	$(PY) -m ruff format bench strategies tests
	$(PY) -m ruff check --fix bench strategies tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info reports/*/ .benchmarks

# The one command a GPU machine runs, sized for a short window (<= 8 minutes on one H100/H200).
# No install step: it must work with the packages of a CUDA PyTorch image plus this checkout (the
# project's venv is used when there is one); pytest-benchmark is not needed. Each step runs under
# its own time limit, whatever the others did (bench/cli/gpu_check.py); GPU_CHECK_OUT receives
# summary.txt and gpu-check.tar.gz (every report and log). Without CUDA it is a CPU rehearsal
# (< 2 minutes) whose summary names the steps it skipped.
GPU_PY ?= $(if $(wildcard $(PY)),$(PY),python3)
GPU_CHECK_OUT ?= reports/gpu-check-out
gpu-check:
	PYTHONPATH=. $(GPU_PY) -m bench.cli.gpu_check --out $(GPU_CHECK_OUT) $(ARGS)

# Each strategy's ceiling (the same step on a fixed batch on the device, no loader, no meter)
# next to what the sweep in DIR measured (default reports/quick, from `make bench` on a CPU).
bench-ceiling: install
	HF_HUB_OFFLINE=1 $(PY) -m bench.cli.ceiling $(or $(DIR),reports/quick) $(ARGS)

bench-meter: install
	HF_HUB_OFFLINE=1 $(PY) -m bench.cli.meter $(ARGS)
