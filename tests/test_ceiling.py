"""The ceiling tools: the clip-length sweep of `bench-ceiling` and the GPU busy-share arithmetic."""

import pytest
import torch
from rich.console import Console

from bench.cli import ceiling as ceiling_cli
from bench.cli.args import strategy_names
from bench.cli.ceiling import ceilings_for, length_table, main, parse_seconds
from bench.errors import BenchError
from bench.train.ceiling import covered, top_kernels


def test_covered_counts_overlapping_spans_once():
    assert covered([]) == 0
    assert covered([(0, 10), (5, 15), (20, 25), (21, 22)]) == 20
    assert covered([(3, 4), (0, 1)]) == 2


def test_lengths_must_be_positive_seconds():
    assert parse_seconds("3,5,8") == [3.0, 5.0, 8.0]
    for bad in ("", "3,x", "0", "-2"):
        with pytest.raises(BenchError, match="--lengths takes positive clip seconds"):
            parse_seconds(bad)


def test_strategies_all_means_every_strategy_in_both_modes():
    from bench.cli.args import ALL

    assert strategy_names("all") == ALL
    assert strategy_names("full,lora") == ["full", "lora"]
    assert strategy_names(None) is None


def test_length_sweep_on_cpu_gives_a_ceiling_and_host_ops_per_length_and_no_busy_share():
    cpu = torch.device("cpu")
    cs = ceilings_for("tiny-w2v2", "partial1", 2, [8_000, 16_000], cpu, min_seconds=0.05)
    assert len(cs) == 2
    assert all(c.samples_per_s > 0 and c.profile.gpu is None for c in cs)
    # Operator counts do not depend on the clip length; autocast's casts add operators.
    assert cs[0].profile.host_ops == cs[1].profile.host_ops > 100
    (amp,) = ceilings_for("tiny-w2v2", "partial1+amp", 2, [8_000], cpu, min_seconds=0.05)
    assert amp.profile.host_ops > cs[0].profile.host_ops

    table, _, failed = length_table(
        "tiny-w2v2", ["partial1", "partial1+amp"], 2, [0.5], cpu, min_seconds=0.05
    )
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert "measured on CUDA only" in text and failed == {}
    headers = [c.header for c in table.columns]
    assert headers == ["strategy", "0.5 s: samples/s", "vs partial1", "host ops/step"]
    rows = table.columns[2]._cells
    assert rows[0] == "1.00x" and rows[1].endswith("x")


def test_top_kernels_rank_names_by_device_time_per_step():
    events = [("gemm", 100.0), ("conv", 300.0), ("gemm", 150.0), ("copy", 10.0), ("conv", 100.0)]
    # two steps: conv 400 us in 2 calls, gemm 250 us in 2 calls, copy 10 us in 1 call
    assert top_kernels(events, steps=2, n=2) == [("conv", 0.2, 1.0), ("gemm", 0.125, 1.0)]
    assert top_kernels([], steps=1, n=3) == []


def test_top_kernels_off_cuda_says_none_were_profiled(capsys):
    argv = ["--lengths", "0.5", "--strategies", "partial1", "--model", "tiny-w2v2"]
    assert main([*argv, "--batch-size", "1", "--top-kernels", "3"]) == 0
    assert "profiled on CUDA only; none listed" in capsys.readouterr().out


def test_a_strategy_that_cannot_run_here_fails_in_its_row_and_the_rest_is_measured(capsys):
    argv = ["--lengths", "0.5", "--strategies", "partial1+graph,partial1", "--model", "tiny-w2v2"]
    assert main([*argv, "--batch-size", "1"]) == 1
    out = capsys.readouterr().out
    rows = {
        cells[0]: cells[1:]
        for line in out.splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 4
    }
    assert rows["partial1+graph"][0].startswith("failed: BenchError: +graph replays CUDA graphs")
    assert rows["partial1+graph"][1:] == ["-", "-"]
    assert float(rows["partial1"][0]) > 0 and rows["partial1"][1] == "-"  # no baseline to divide by
    assert "partial1+graph failed: BenchError: +graph replays CUDA graphs" in out


def test_an_unknown_strategy_is_a_clear_error(capsys):
    assert main(["--lengths", "1", "--strategies", "nope", "--model", "tiny-w2v2"]) == 2
    assert "unknown strategy 'nope'" in capsys.readouterr().err


def test_an_unexpected_error_in_one_strategy_keeps_the_other_rows(monkeypatch, capsys):
    real = ceiling_cli.ceilings_for

    def flaky(model_name, spelling, *args, **kwargs):
        if spelling == "partial1+amp":
            raise RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR\nmore detail")
        return real(model_name, spelling, *args, **kwargs)

    monkeypatch.setattr(ceiling_cli, "ceilings_for", flaky)
    argv = ["--lengths", "0.5", "--strategies", "partial1,partial1+amp,partial2"]
    assert main([*argv, "--model", "tiny-w2v2", "--batch-size", "1"]) == 1
    out = capsys.readouterr().out
    rows = {
        cells[0]: cells[1:]
        for line in out.splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 4
    }
    assert (
        rows["partial1+amp"][0] == "failed: RuntimeError: cuDNN error: CUDNN_STATUS_INTERNAL_ERROR"
    )
    assert float(rows["partial1"][0]) > 0 and rows["partial1"][1] == "1.00x"
    assert float(rows["partial2"][0]) > 0 and rows["partial2"][1].endswith("x")
    assert "partial1+amp failed:" in out
