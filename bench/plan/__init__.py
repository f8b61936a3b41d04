"""`python -m bench.plan`: project a sweep's time, cache, memory and energy from a calibration."""
