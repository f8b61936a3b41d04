"""One run, from its config to its result: `setup.py` builds everything a run needs, `step.py`
is the one training step, `trainer.py` the loop, `ceiling.py` the same step on a fixed batch,
and `worker.py` runs and measures the whole thing in its own process."""
