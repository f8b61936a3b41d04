"""Projecting a sweep's time, cache, memory and energy from a calibration (the command is
bench/cli/plan.py, `python -m bench.plan`): calibrate.py times the run's step at a few lengths,
fit.py fits them, project.py sums over the corpus, build.py makes the whole plan and render.py
prints and writes it."""
