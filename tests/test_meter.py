"""Trackers: the NVML path against a fake NVML module, and honest nulls without a GPU."""

import os
import time
from types import SimpleNamespace

import torch

from bench.meter import MemoryTracker, StepTimer


class FakeNVML:
    """Enough of pynvml for the sampler: one device, this process using a planted peak once."""

    class NVMLError(Exception):
        pass

    def __init__(self, readings_mib):
        self.readings = list(readings_mib)
        self.calls = 0

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return "h0"

    def nvmlDeviceGetUUID(self, h):
        return "GPU-fake"

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        value = self.readings[min(self.calls, len(self.readings) - 1)]
        self.calls += 1
        return [
            SimpleNamespace(pid=os.getpid(), usedGpuMemory=value * 2**20),
            SimpleNamespace(pid=os.getpid() + 1, usedGpuMemory=99_999 * 2**20),
        ]  # another process


def test_fake_nvml_sampler_finds_the_planted_peak(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d: 123 * 2**20)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda d: 150 * 2**20)
    fake = FakeNVML([100, 100, 4321, 200, 200])
    tracker = MemoryTracker(torch.device("cuda", 0), interval_s=0.001, nvml=fake)
    with tracker.track():
        deadline = time.time() + 5
        while fake.calls < 6 and time.time() < deadline:
            time.sleep(0.005)
    report = tracker.report()
    assert report.peak_vram_nvml_mib == 4321  # the other process's 99,999 MiB is not ours
    assert report.peak_vram_alloc_mib == 123 and report.peak_vram_reserved_mib == 150


def test_cpu_run_reports_none_with_a_reason():
    tracker = MemoryTracker(torch.device("cpu"))
    with tracker.track():
        pass
    report = tracker.report()
    assert report.peak_vram_nvml_mib is None and report.peak_vram_alloc_mib is None
    assert any("no CUDA device" in n for n in report.notes)
    assert report.peak_rss_mib > 0


def test_step_timer_excludes_warmup_and_counts_samples():
    timer = StepTimer(torch.device("cpu"), warmup_steps=2)
    timer.start_epoch()
    for _ in range(5):
        with timer.step(n_samples=4, audio_s=8.0):
            time.sleep(0.002)
    report = timer.report()
    assert report.steps_timed == 3
    assert report.train_samples_per_s * sum(timer.durations) == 12
    assert report.train_audio_s_per_s == report.train_samples_per_s * 2


def test_step_timer_without_steady_steps_says_why():
    timer = StepTimer(torch.device("cpu"), warmup_steps=10)
    timer.start_epoch()
    with timer.step(1, 1.0):
        pass
    report = timer.report()
    assert report.train_samples_per_s is None and "warm-up" in report.note
