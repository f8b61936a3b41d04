"""Trackers: the NVML path against a fake NVML module, and honest nulls without a GPU."""

import dataclasses
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from bench.errors import BenchError
from bench.meter import MemoryTracker, StepTimer
from bench.result.store import read_result


class FakeNVML:
    """Enough of pynvml for the tracker: one device; this process's memory follows `readings_mib`."""

    class NVMLError(Exception):
        pass

    def __init__(self, readings_mib, *, list_own_pid=True, foreign_mib=0, energy=True):
        self.readings = list(readings_mib)
        self.calls = 0
        self.list_own_pid = list_own_pid
        self.foreign_mib = foreign_mib
        self.energy = energy
        self.energy_mj = 1_000_000.0

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return "h0"

    def nvmlDeviceGetUUID(self, h):
        return "GPU-fake"

    def _current(self):
        return self.readings[min(self.calls, len(self.readings) - 1)]

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        value = self._current()
        self.calls += 1
        procs = [
            SimpleNamespace(pid=os.getpid() + 100_000, usedGpuMemory=99_999 * 2**20)
        ]  # not ours
        if self.list_own_pid:
            procs.append(SimpleNamespace(pid=os.getpid(), usedGpuMemory=value * 2**20))
        if self.foreign_mib:
            procs.append(SimpleNamespace(pid=1, usedGpuMemory=self.foreign_mib * 2**20))
        return procs

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=(500 + self._current()) * 2**20)  # 500 MiB baseline

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=80)

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if not self.energy:
            raise self.NVMLError("Not Supported")
        self.energy_mj += 250_000.0
        return self.energy_mj


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d: 123 * 2**20)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda d: 150 * 2**20)


def _run(fake, **kw):
    tracker = MemoryTracker(torch.device("cuda", 0), interval_s=0.001, nvml=fake, **kw)
    with tracker.track():
        deadline = time.time() + 5
        while fake.calls < 8 and time.time() < deadline:
            time.sleep(0.005)
    return tracker


def test_fake_nvml_sampler_finds_the_planted_peak(fake_cuda):
    tracker = _run(FakeNVML([0, 100, 100, 4321, 200, 200]))
    report, energy = tracker.report(), tracker.energy(epochs=2, samples=50)
    assert report.peak_vram_nvml_mib == 4321  # the other process's 99,999 MiB is not ours
    assert report.nvml_source == "process"
    assert 100 <= report.mean_vram_nvml_mib < 4321 and report.p99_vram_nvml_mib <= 4321
    assert energy.gpu_util_mean_pct == 80
    assert energy.energy_j == 250.0  # one counter step of 250,000 mJ between start and end
    assert energy.energy_j_per_epoch == 125.0 and energy.energy_j_per_sample == 5.0


def test_hidden_pids_fall_back_to_device_delta_and_say_so(fake_cuda):
    report = _run(FakeNVML([0, 0, 300, 700, 100], list_own_pid=False)).report()
    assert report.nvml_source == "device-delta"
    assert report.peak_vram_nvml_mib == 700  # 1200 MiB used at peak minus the 500 MiB baseline
    assert any("containers can hide PIDs" in n for n in report.notes)


def test_busy_gpu_warns_or_aborts(fake_cuda):
    report = _run(FakeNVML([10], foreign_mib=2048)).report()
    assert any("GPU not idle" in n and "2048 MiB" in n for n in report.notes)
    with pytest.raises(BenchError, match="require-idle-gpu"):
        _run(FakeNVML([10], foreign_mib=2048), require_idle=True)


def test_missing_energy_counter_is_none_with_reason(fake_cuda):
    tracker = _run(FakeNVML([10], energy=False))
    report, energy = tracker.report(), tracker.energy(epochs=1, samples=10)
    assert energy.energy_j is None and energy.energy_j_per_epoch is None
    assert any("energy counter unavailable" in n for n in report.notes)


def test_cpu_run_reports_none_with_a_reason():
    tracker = MemoryTracker(torch.device("cpu"))
    with tracker.track():
        pass
    report = tracker.report()
    assert report.peak_vram_nvml_mib is None
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


def test_a_planted_stall_is_counted_and_flagged(monkeypatch, tmp_path):

    from bench.meter import timing

    # A fake clock: 40 steps of 50 ms, one of them 2 s (a loader or disk hiccup).
    durations = [0.05] * 20 + [2.0] + [0.05] * 19
    now = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])
    timer = StepTimer(torch.device("cpu"), warmup_steps=0)
    timer.start_epoch()
    for d in durations:
        with timer.step(4, 8.0):
            now[0] += d
    monkeypatch.undo()
    report = timer.report()
    assert report.stall_steps == 1
    assert report.stall_s == pytest.approx(2.0)
    assert report.stall_share == pytest.approx(2.0 / (2.0 + 39 * 0.05))

    from bench.report import render

    fixture = sorted((Path(__file__).parent / "fixtures" / "results").glob("*.json"))[0]
    result = read_result(fixture)
    thr = dataclasses.replace(
        result.efficiency.throughput, stall_steps=1, stall_s=2.0, stall_share=report.stall_share
    )
    result = result.replace(efficiency=dataclasses.replace(result.efficiency, throughput=thr))
    rendered = render(tmp_path, [result])
    md = rendered.markdown.read_text()
    assert f"{result.strategy} seed {result.seed}: 1 stalled steps" in md
    assert "51% of its timed training" in md


def test_first_visits_of_an_input_shape_are_kept_out_of_steady_state():
    timer = StepTimer(torch.device("cpu"), warmup_steps=0)
    timer.start_epoch()
    for shape in [(4, 800), (4, 800), (4, 1120), (4, 800), (4, 1120), (2, 800)]:
        with timer.step(4, 1.0, shape=shape):
            pass
    report = timer.report()
    assert report.shape_warmup_steps == 3 and report.steps_timed == 3
    assert report.distinct_input_shapes == 3 and report.shape_warmup_s > 0


def test_the_step_timer_is_the_one_owner_of_allocator_peaks(monkeypatch):
    # Per-step resets would leave torch's global peak partial for anyone else reading it; the
    # timer keeps the run's maximum itself, phases (cache build, evaluation) included.
    readings = iter([10, 40, 900, 25, 30, 20])  # start, step, cache phase (reset, read), ...
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d: next(readings) * 2**20)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda d: 1000 * 2**20)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d: None)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: None)
    timer = StepTimer(torch.device("cpu"), warmup_steps=0)
    timer.cuda = True  # the allocator calls are faked; the clock stays the CPU's
    timer._mark = lambda: time.perf_counter()
    timer._seconds = lambda a, b: b - a
    timer.start_epoch()  # reads 10
    with timer.step(4, 1.0):  # reads 40
        pass
    with timer.phase("cache"):  # reads 900 at entry (reset) and 25 at exit
        pass
    with timer.phase("eval"):  # 30, 20
        pass
    report = timer.allocator()
    assert report.peak_vram_alloc_mib == 900 and report.peak_vram_reserved_mib == 1000
    assert report.alloc_peak_cache_mib == 25 and report.alloc_peak_eval_mib == 20
    assert report.alloc_peak_train_mib == 40


def test_the_baseline_before_setup_lets_device_delta_count_context_and_weights(fake_cuda):
    # Hidden PIDs: only the device's used memory tells. 1000 MiB arrive after the baseline (the
    # CUDA context and the weights that setup_run loads), then training runs at that level.
    fake = FakeNVML([0, 0, 1000, 1000, 1000, 1000], list_own_pid=False)
    tracker = MemoryTracker(torch.device("cuda", 0), interval_s=0.001, nvml=fake)
    tracker.baseline()
    with tracker.track():
        deadline = time.time() + 5
        while fake.calls < 6 and time.time() < deadline:
            time.sleep(0.005)
    report = tracker.report()
    assert report.device_baseline_mib == 500
    assert report.nvml_source == "device-delta" and report.peak_vram_nvml_mib == 1000


def test_a_busy_gpu_aborts_at_the_baseline_before_the_run_loads_anything(fake_cuda):
    tracker = MemoryTracker(
        torch.device("cuda", 0), nvml=FakeNVML([10], foreign_mib=2048), require_idle=True
    )
    with pytest.raises(BenchError, match=r"GPU not idle.*require-idle-gpu"):
        tracker.baseline()


def test_the_worker_takes_the_nvml_baseline_before_setup_run(tiny_config, monkeypatch):
    import bench.train.worker as worker

    order: list[str] = []

    class Spy(MemoryTracker):
        def baseline(self) -> None:
            order.append("baseline")
            super().baseline()

    real_setup = worker.setup_run

    def setup(*args, **kwargs):
        order.append("setup_run")
        return real_setup(*args, **kwargs)

    monkeypatch.setattr(worker, "MemoryTracker", Spy)
    monkeypatch.setattr(worker, "setup_run", setup)
    result = worker.run_one(tiny_config.with_train(max_epochs=1))
    assert result.status == "ok" and order == ["baseline", "setup_run"]


def test_a_sampler_that_never_says_ready_becomes_a_note_not_a_hang(fake_cuda, monkeypatch):
    import sys

    # A planted hang: the sampler process starts and never answers (a stuck driver call).
    tracker = MemoryTracker(torch.device("cuda", 0), nvml=FakeNVML([10]), ready_timeout_s=0.5)
    tracker.injected = False  # the process form, with the hanging command below
    hang = [
        sys.executable,
        "-c",
        "import sys, time; sys.stdout.write('rea'); sys.stdout.flush(); time.sleep(60)",
    ]
    monkeypatch.setattr(tracker, "_sampler_argv", lambda pid, uuid: hang)
    t0 = time.monotonic()
    with tracker.track():
        pass
    assert time.monotonic() - t0 < 10
    report = tracker.report()
    assert report.peak_vram_nvml_mib is None
    assert any(
        "did not report ready within 0.5 s (it wrote 'rea')" in n and "not measured" in n
        for n in report.notes
    )


def test_wait_ready_accepts_a_sampler_that_says_ready():
    import subprocess
    import sys

    from bench.meter.memory import wait_ready

    ok = subprocess.Popen(
        [sys.executable, "-c", "print('ready', flush=True); input()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    wait_ready(ok, 10.0)
    out, _ = ok.communicate("stop\n", timeout=10)
    assert ok.returncode == 0 and out == ""


def test_a_graph_capture_and_the_step_after_it_are_not_steady_steps():
    # Stand-in for +graph's runner: `count` rises when a step (or evaluation) captures a graph.
    count = [0]
    timer = StepTimer(torch.device("cpu"), warmup_steps=0, captures=lambda: count[0])
    timer.start_epoch()
    kinds = []
    # (shape, captures during the step, captures before it, e.g. in evaluation)
    plan = [
        ((4, 800), 1, 0),  # new shape, captured: first visit
        ((4, 800), 0, 0),  # right after a capture: the allocator refills its cache
        ((4, 800), 0, 0),  # steady
        ((4, 800), 0, 2),  # evaluation captured two graphs of its own shapes since
        ((4, 800), 0, 0),  # steady
    ]
    for shape, during, before in plan:
        count[0] += before
        with timer.step(4, 1.0, shape=shape):
            count[0] += during
        kinds.append(timer._pending[-1].kind)
    assert kinds == ["shape", "shape", "steady", "shape", "steady"]
    report = timer.report()
    assert report.steps_timed == 2 and report.shape_warmup_steps == 3
    assert report.capture_warmup_steps == 2  # the two not already first visits of a shape
    assert report.distinct_input_shapes == 1


def test_without_a_capture_counter_only_new_shapes_are_set_aside():
    timer = StepTimer(torch.device("cpu"), warmup_steps=0)
    timer.start_epoch()
    for _ in range(3):
        with timer.step(4, 1.0, shape=(4, 800)):
            pass
    report = timer.report()
    assert report.steps_timed == 2 and report.capture_warmup_steps == 0


def test_load_tracker_records_the_machine_load():
    from bench.meter.load import LoadTracker

    tracker = LoadTracker(sample_every_s=0.01)
    with tracker.track():
        sum(i * i for i in range(20_000))
    load = tracker.report()
    assert load.cpus is not None and load.cpus >= 1
    if load.note is None:  # Linux: /proc/stat and the load average
        assert 0.0 <= load.others_cpu_share <= 1.0
        assert load.loadavg_1m_max >= max(load.loadavg_1m_start, load.loadavg_1m_end)
