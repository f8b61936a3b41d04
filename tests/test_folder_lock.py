"""One writer per run folder: a second sweep on the same --out is refused, naming the holder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from bench.errors import BenchError
from bench.launch import launch_sweep
from bench.launch.folder_lock import LOCK_NAME, check_out_dir, run_folder_lock
from bench.launch.options import LaunchOptions

HOLD = (
    "import sys, time; from pathlib import Path; "
    "from bench.launch.folder_lock import run_folder_lock; "
    "cm = run_folder_lock(Path(sys.argv[1]), 'sweep A --out here'); cm.__enter__(); "
    "print('held', flush=True); time.sleep(120)"
)


@pytest.fixture
def held(tmp_path):
    """A run folder whose lock another process (a stand-in for a running sweep) holds."""
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.stdout.readline().strip() == "held"
    yield out, proc
    proc.kill()
    proc.wait()


def test_a_second_sweep_on_a_held_folder_is_refused_naming_the_holder(held, tiny_config):
    out, proc = held
    (out / "results").mkdir()
    finished = out / "results" / "head__seed0.json"
    finished.write_text("{}")  # what the holder finished: never touched by the refused sweep
    with pytest.raises(BenchError) as err:
        launch_sweep([tiny_config], out, Console(quiet=True), LaunchOptions())
    msg = str(err.value)
    assert f"pid {proc.pid}" in msg and "sweep A --out here" in msg and "since" in msg
    assert "another --out" in msg
    assert finished.read_text() == "{}"


def test_the_command_line_exits_2_when_the_folder_is_held(held, synth_dir, capsys):
    from bench.cli.run import main

    out, proc = held
    argv = ["--profile", "smoke", "--strategies", "head", "--data-root", str(synth_dir)]
    assert main([*argv, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "in use by another sweep" in err and f"pid {proc.pid}" in err


def test_the_lock_is_free_once_its_holder_dies_and_describes_nobody_after_release(held):
    out, proc = held
    proc.kill()
    proc.wait()
    with run_folder_lock(out, "sweep B") as kind:
        assert kind == "fcntl"
        assert "sweep B" in (out / LOCK_NAME).read_text()
    assert (out / LOCK_NAME).read_text() == ""


def test_out_must_be_a_writable_folder(tmp_path, monkeypatch):
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    with pytest.raises(BenchError, match="is a file, not a folder"):
        check_out_dir(afile)
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    if os.geteuid() == 0:  # root may write anywhere: stand in for a user who may not
        monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != ro)
    with pytest.raises(BenchError, match="is read-only"):
        check_out_dir(ro)
    with pytest.raises(BenchError, match=r"cannot be created \(.*ro is read-only\)"):
        check_out_dir(ro / "sub" / "run")


def test_two_real_sweeps_on_one_folder_the_second_is_refused_and_the_first_goes_on(
    tmp_path, synth_dir, capsys
):
    """The case that lost a result: sweep A (head) running, sweep B (partial1,head) started on
    the same --out. B is refused before it runs, skips or deletes anything; A is unharmed."""
    import signal
    import time

    from bench.cli.run import main

    out = tmp_path / "run"
    env = {**os.environ, "SERBENCH_CACHE": str(synth_dir), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "bench.cli.run", "--profile", "smoke", "--strategies", "head"]
    cmd += ["--epochs", "500", "--out", str(out), "--quiet"]
    sweep_a = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        log = out / "logs" / "head__seed0.log"
        deadline = time.time() + 120
        while not log.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert log.exists(), "sweep A never started its run"
        argv = ["--profile", "smoke", "--strategies", "partial1,head", "--out", str(out)]
        assert main([*argv, "--data-root", str(synth_dir), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"pid {sweep_a.pid}" in err and "--strategies head" in err
        assert not (out / "results" / "partial1__seed0.json").exists()
        assert sweep_a.poll() is None  # A trains on
    finally:
        os.killpg(sweep_a.pid, signal.SIGINT)
        sweep_a.communicate(timeout=60)
    assert sweep_a.returncode == 130


def test_a_nested_take_in_one_process_keeps_the_lock_held(tmp_path):
    """bench.run holds the lock and launch_sweep takes it again: leaving the inner take must not
    release it (closing any descriptor of a POSIX-locked file would)."""
    out = tmp_path / "run"
    probe = (
        "import sys; from pathlib import Path; from bench.errors import BenchError; "
        "from bench.launch.folder_lock import run_folder_lock\n"
        "try:\n    with run_folder_lock(Path(sys.argv[1])): print('free')\n"
        "except BenchError: print('held')"
    )

    def other_process_sees() -> str:
        return subprocess.run(
            [sys.executable, "-c", probe, str(out)],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent.parent,
            check=True,
        ).stdout.strip()

    with run_folder_lock(out, "outer"):
        with run_folder_lock(out, "inner"):
            pass
        # (no read of the lock file here: closing it would release this process's lock)
        assert other_process_sees() == "held"
    assert other_process_sees() == "free"
