"""Every run option is checked before the first run: exit 2 and one line naming the option;
repeated strategies and seeds are merged, and the merge is said."""

from __future__ import annotations

import os

import pytest
import torch

from bench.cli.args import build_run_parser, configs_from_args, unique_runs
from bench.cli.run import main
from strategies import parse_strategy


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategies", ""], "--strategies '' names no strategy"),
        (["--strategies", ", ,"], "--strategies ', ,' names no strategy"),
        (["--seeds", ","], "--seeds ',' names no seed"),
        (["--seeds", "0,-1"], "--seeds must be >= 0, not -1"),
        (["--tolerance", "-1"], "--tolerance must be a number >= 0"),
        (["--tolerance", "nan"], "--tolerance must be a number >= 0"),
        (["--strategies", "lora:dropout=2"], "dropout must be in [0, 1), got 2"),
        (["--max-seconds", "0.01"], "--max-seconds must be >= 0.5, not 0.01: shorter crops"),
        (["--device", "tpu9"], "--device takes auto, cpu, cuda or cuda:N, not 'tpu9'"),
    ],
)
def test_a_bad_option_exits_2_naming_it_before_anything_runs(capsys, tmp_path, args, message):
    assert main(["--profile", "smoke", "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # refused before the run folder was made


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_device_cuda_without_a_gpu_exits_2(capsys, tmp_path):
    assert main(["--profile", "smoke", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "--device cuda: no CUDA GPU is available here" in capsys.readouterr().err


def test_out_naming_a_file_or_a_read_only_folder_exits_2(capsys, tmp_path, monkeypatch):
    afile = tmp_path / "results.txt"
    afile.write_text("x")
    assert main(["--profile", "smoke", "--out", str(afile)]) == 2
    assert f"--out {afile} is a file, not a folder" in capsys.readouterr().err
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    if os.geteuid() == 0:  # root may write anywhere: stand in for a user who may not
        monkeypatch.setattr(os, "access", lambda path, mode: str(path) != str(ro))
    assert main(["--profile", "smoke", "--out", str(ro)]) == 2
    assert f"--out {ro} is read-only" in capsys.readouterr().err


def test_duplicates_are_merged_by_canonical_spelling_and_said():
    args = build_run_parser().parse_args(
        ["--profile", "smoke", "--strategies", "partial3,partial:k=3,full,full", "--seeds", "0,1,0"]
    )
    configs, _, notes = configs_from_args(args)
    assert [(c.strategy, c.seed) for c in configs] == [
        ("partial3", 0),
        ("full", 0),
        ("partial3", 1),
        ("full", 1),
    ]
    assert notes[0] == (
        "strategies given more than once ran once: partial3, full; "
        "seeds given more than once ran once: 0"
    )


def test_unique_runs_says_nothing_when_nothing_repeats():
    specs = [parse_strategy(n) for n in ("full", "partial3+amp")]
    kept, seeds, merged = unique_runs(specs, [0, 1])
    assert [s.name for s in kept] == ["full", "partial3+amp"] and seeds == [0, 1]
    assert merged is None
