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
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m calibration tests/test_plan.py

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

# The one command a GPU machine runs. No install step: it must work with the packages of a
# CUDA PyTorch image plus this checkout (the project's venv is used when there is one).
# Every step runs even when an earlier one fails (GPU time is scarce: a failing GPU test must
# not cost the sweep's figures), most telling first; the exit code says whether any failed, and
# which. The second sweep is the study's prefix strategies with +graph, in a folder of its own
# so that the first stays the `--strategies all` sweep whose wall time the issue bounds.
GPU_PY ?= $(if $(wildcard $(PY)),$(PY),python3)
GPU_RUN = PYTHONPATH=. $(GPU_PY) -m
gpu-check:
	@failed=""; \
	$(GPU_RUN) bench.run --profile gpu-check --strategies all --out reports/gpu-check $(ARGS) || failed="$$failed sweep"; \
	$(GPU_RUN) bench.cli.ceiling --profile gpu-check --lengths 3,5,8 --top-kernels 6 \
		--strategies partial3,partial3+amp,partial3+graph,partial3+amp+graph,full || failed="$$failed lengths"; \
	$(GPU_RUN) bench.run --profile gpu-check --strategies partial3+graph,partial3+amp+graph \
		--out reports/gpu-check-graph $(ARGS) || failed="$$failed graph-sweep"; \
	$(GPU_RUN) pytest tests/gpu -q -s -p no:cacheprovider || failed="$$failed gpu-tests"; \
	$(GPU_RUN) bench.cli.ceiling reports/gpu-check || failed="$$failed ceiling"; \
	if [ -n "$$failed" ]; then echo "gpu-check: failed:$$failed"; exit 1; fi

# Each strategy's ceiling (the same step on a fixed batch on the device, no loader, no meter)
# next to what the sweep in DIR measured (default reports/quick, from `make bench` on a CPU).
bench-ceiling: install
	HF_HUB_OFFLINE=1 $(PY) -m bench.cli.ceiling $(or $(DIR),reports/quick) $(ARGS)

bench-meter: install
	HF_HUB_OFFLINE=1 $(PY) -m bench.cli.meter $(ARGS)
