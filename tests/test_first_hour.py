"""A newcomer's first hour (issue 21): the device's precision facts, emulated precision named
wherever it shows, a default strategy set that finishes, and the traps of the start path."""

from __future__ import annotations

import builtins
import csv
import dataclasses
import io
import json
import shutil

import pytest
import torch
from conftest import TINY_SPEC, fixture_results, typed, write_run
from rich.console import Console

import bench.cli.args as cli_args
from bench.cli.args import ALL, configs_from_args, default_strategies, strategy_names
from bench.cli.planning import confirm
from bench.cli.run import build_parser, main
from bench.config import DataConfig
from bench.data.adapters.hf_options import HFOptions
from bench.data.adapters.label_range import parse_label_range
from bench.data.datasets import load_dataset
from bench.data.synthetic import SyntheticSpec
from bench.meter.precision import describe_facts, is_emulated, precision_facts
from bench.report import render
from bench.report.rows import label_by_config
from bench.result.store import load_results, read_sweep_notes, write_result, write_sweep_notes
from bench.train.worker import run_one

# What an AVX2-only CPU reports (bench/meter/precision.py).
AVX2 = {
    "cpu_capability": "AVX2",
    "isa_flags": ["avx2"],
    "onednn_max_cpu_isa": None,
    "bf16_native": False,
    "fp16_native": False,
}
FAST = ["--profile", "smoke", "--epochs", "1", "--max-seconds", "1", "--quiet"]


def test_the_strategy_list_splits_only_between_strategies():
    assert strategy_names("lora:r=16,alpha=8,partial3") == ["lora:r=16,alpha=8", "partial3"]
    assert strategy_names("lora:targets=q,v,ff1") == ["lora:targets=q,v,ff1"]
    assert strategy_names("full,turbo") == ["full", "turbo"]  # refused by name, not glued
    assert strategy_names("all") == ALL


def test_a_readme_spelling_runs_two_strategies(tmp_path, synth_dir):
    out = tmp_path / "run"
    argv = ["--strategies", "lora:r=16,alpha=8,partial3", "--data-root", str(synth_dir)]
    assert main([*argv, *FAST, "--out", str(out)]) == 0
    names = sorted(r.strategy for r in load_results(out))
    assert names == ["lora:r=16,alpha=8", "partial3"]


def test_cpu_precision_facts_are_recorded():
    facts = precision_facts(torch.device("cpu"))
    assert facts["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert isinstance(facts["bf16_native"], bool) and isinstance(facts["fp16_native"], bool)
    assert "ATen" in describe_facts(facts)
    assert is_emulated("bf16", AVX2) and not is_emulated("fp32", AVX2)
    assert not is_emulated("bf16", {"bf16_native": None})  # unknown is not called emulated


def test_an_amp_run_on_a_cpu_without_bf16_is_flagged_and_the_report_marks_it(
    tmp_path, tiny_config, monkeypatch
):
    monkeypatch.setattr("bench.meter.environment.precision_facts", lambda device: dict(AVX2))
    out = tmp_path / "run"
    for strategy in ("partial2", "partial2+amp"):
        cfg = dataclasses.replace(tiny_config, strategy=strategy).with_train(max_epochs=1)
        result = run_one(cfg)
        assert result.device["precision"] == AVX2
        write_result(out / "results" / f"{strategy}__seed0.json", result)
    results = {r.strategy: r for r in load_results(out)}
    amp = results["partial2+amp"]
    assert amp.strategy_spec["precision_resolved"] == "bf16"
    assert amp.strategy_spec["precision_emulated"] is True
    assert any(n.startswith("EMULATED bf16") for n in amp.notes)
    assert results["partial2"].strategy_spec["precision_emulated"] is False
    rendered = render(out, tolerance=0.01)
    md = rendered.markdown.read_text()
    assert "| Precision |" in md or "Precision" in md
    assert "ATen AVX2" in md and "bf16 emulated" in md
    assert "_(emulated bf16)_" in md  # the table's mark on the row
    assert "EMULATED precision: partial2+amp (bf16)" in md
    html = rendered.html.read_text()
    assert 'class="badge emulated bf16"' in html


def test_the_default_set_on_a_cpu_without_bf16_runs_fp32_twins_and_says_so(monkeypatch):
    monkeypatch.setattr(cli_args, "precision_facts", lambda device: dict(AVX2))
    choice = default_strategies(torch.device("cpu"))
    assert "partial3+amp" not in choice.names
    assert "partial3+cache" in choice.names and "lora3+cache" in choice.names
    assert not any("+amp" in n for n in choice.names)
    (note,) = choice.notes
    assert (
        "partial3+amp left out" in note and "partial3+cache instead of partial3+amp+cache" in note
    )
    assert "--strategies all" in note
    # A device with native bf16 runs `all` unchanged.
    monkeypatch.setattr(cli_args, "precision_facts", lambda device: {**AVX2, "bf16_native": True})
    assert default_strategies(torch.device("cpu")).names == ALL


def test_the_default_set_is_printed_before_the_sweep_and_recorded(
    tmp_path, synth_dir, monkeypatch, capsys
):
    monkeypatch.setattr(cli_args, "precision_facts", lambda device: dict(AVX2))
    out = tmp_path / "run"
    # --plan-first declined: the note must be out before anything runs
    monkeypatch.setattr("bench.cli.run.confirm", lambda console, yes: False)
    argv = ["--data-root", str(synth_dir), "--out", str(out), "--plan-first"]
    argv += ["--calibration-points", "1", "--calibration-seconds", "0.01"]
    monkeypatch.setattr("bench.cli.run.run_plan", lambda *a, **k: None)
    assert main([*argv, *FAST]) == 0
    err = capsys.readouterr().err
    assert "default strategy set changed" in err and "partial3+cache instead of" in err
    assert not (out / "results").exists()


def test_an_explicit_amp_strategy_runs_as_typed(monkeypatch, synth_dir):
    monkeypatch.setattr(cli_args, "precision_facts", lambda device: dict(AVX2))
    args = build_parser().parse_args(["--strategies", "partial3+amp", *FAST])
    configs, _, notes = configs_from_args(args)
    assert [c.strategy for c in configs] == ["partial3+amp"] and notes == []


def test_sweep_notes_reach_the_report(tmp_path):
    out = write_run(tmp_path / "run", fixture_results())
    cli_args_note = "the default strategy set changed: X instead of Y"
    write_sweep_notes(out, [cli_args_note])
    assert read_sweep_notes(out) == [cli_args_note]
    assert cli_args_note in render(out).markdown.read_text()


def test_a_second_corpus_cannot_land_in_the_same_folder(tmp_path, synth_dir, capsys):
    out = tmp_path / "run"
    base = ["--strategies", "head", *FAST, "--out", str(out)]
    assert main([*base, "--data-root", str(synth_dir)]) == 0
    other = tmp_path / "other"
    shutil.copytree(synth_dir, other)
    (first,) = load_results(out)
    # another configuration: another corpus (--data-root) and batch size
    assert main([*base, "--data-root", str(other), "--batch-size", "2"]) == 2
    assert "another configuration" in capsys.readouterr().err
    assert [r.run_id for r in load_results(out)] == [first.run_id]  # nothing overwritten
    assert main([*base, "--data-root", str(other), "--batch-size", "2", "--force"]) == 0
    (second,) = load_results(out)
    assert second.run_id != first.run_id
    assert len(list((out / "results" / "superseded").glob("head__seed0__*.json"))) == 1


def test_the_report_never_pools_two_configurations(tmp_path):
    a = fixture_results()
    b = json.loads(json.dumps(a))
    for r in b:
        r["config"]["train"]["batch_size"] = 99  # another experiment
    labelled = label_by_config(typed(a + b))
    names = {r.strategy for r in labelled}
    assert len({n.split(" · ")[0] for n in names}) == 2  # two configurations, two row groups
    assert all(n.startswith("config ") for n in names)
    assert label_by_config(labelled) == labelled  # labelling twice changes nothing


def test_default_out_is_named_by_corpus_and_model():
    args = build_parser().parse_args(["--profile", "smoke", "--dataset", "csv", "--data-root", "x"])
    _, out, _ = configs_from_args(args)
    assert str(out) == "reports/smoke-csv"
    args = build_parser().parse_args(["--profile", "smoke", "--model", "tiny-w2v2,tiny-wavlm"])
    assert str(configs_from_args(args).out) == "reports/smoke-tiny-w2v2-tiny-wavlm"
    assert str(configs_from_args(build_parser().parse_args(["--profile", "smoke"])).out) == (
        "reports/smoke"
    )


def test_offline_weights_are_decided_before_the_first_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # nothing cached
    argv = ["--profile", "smoke", "--model", "facebook/wav2vec2-base", "--strategies", "head"]
    out = tmp_path / "run"
    assert main([*argv, "--weights", "pretrained", "--out", str(out)]) == 2
    assert "--weights pretrained: cannot load 'facebook/wav2vec2-base'" in capsys.readouterr().err
    assert not out.exists()
    configs, _, notes = configs_from_args(build_parser().parse_args([*argv, "--weights", "auto"]))
    assert {c.weights for c in configs} == {"random"}
    assert "RANDOM-INIT" in notes[0] and "decided before the first run" in notes[0]


def _msp_like_csv(folder, synth_dir) -> str:
    """A csv in MSP-Podcast's own words: EmoAct/EmoVal/EmoDom on 1-7, Train/Development/Test1
    and a Test2 row, over the tiny synthetic corpus' audio."""
    rows = list(csv.DictReader(next(synth_dir.rglob("manifest.csv")).open()))
    base = next(synth_dir.rglob("manifest.csv")).parent
    names = {"train": "Train", "val": "Development", "test": "Test1"}
    path = folder / "labels.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "EmoAct", "EmoVal", "EmoDom", "split", "speaker"])
        for i, r in enumerate(rows):
            split = "Test2" if i == 0 else names[r["split"]]
            w.writerow([str(base / r["path"]), 4, 4, 4, split, r["speaker"]])
    return str(path)


def test_msp_split_names_and_csv_label_columns(tmp_path, synth_dir):
    manifest = _msp_like_csv(tmp_path, synth_dir)
    hf = HFOptions.parse(label_columns="arousal=EmoAct,valence=EmoVal,dominance=EmoDom")
    data = DataConfig(
        "csv", manifest, True, SyntheticSpec(), label_range=parse_label_range("1,7"), hf=hf
    )
    corpus = load_dataset(data, 0)
    n = corpus.summary()["n_utterances"]
    assert all(n[s] > 0 for s in ("train", "val", "test"))
    assert sum(n.values()) == TINY_SPEC.n_speakers * TINY_SPEC.clips_per_speaker - 1  # Test2 out
    assert corpus.dimensions == ("arousal", "valence", "dominance")


def test_csv_takes_label_columns_from_the_command_line(tmp_path, synth_dir):
    manifest = _msp_like_csv(tmp_path, synth_dir)
    argv = ["--dataset", "csv", "--data-root", manifest, "--profile", "smoke"]
    argv += ["--label-columns", "arousal=EmoAct,valence=EmoVal", "--label-range", "1,7"]
    (cfg,), _, _ = configs_from_args(build_parser().parse_args([*argv, "--strategies", "head"]))
    corpus = load_dataset(cfg.data, 0)
    assert corpus.dimensions == ("arousal", "valence")
    bad = build_parser().parse_args([*argv, "--strategies", "head", "--audio-column", "wav"])
    (cfg,), _, _ = configs_from_args(bad)
    with pytest.raises(Exception, match="--audio-column, --speaker-column and --hf-splits apply"):
        load_dataset(cfg.data, 0)


def test_an_empty_split_names_why_rows_were_skipped(tmp_path, synth_dir):
    from bench.errors import BenchError

    rows = list(csv.DictReader(next(synth_dir.rglob("manifest.csv")).open()))
    base = next(synth_dir.rglob("manifest.csv")).parent
    path = tmp_path / "m.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "arousal", "split", "speaker"])
        for r in rows:
            label = "nan" if r["split"] == "test" else r["arousal"]
            w.writerow([str(base / r["path"]), label, r["split"], r["speaker"]])
    with pytest.raises(BenchError, match=r"the test split is empty .*NaN label.*is not a finite"):
        load_dataset(DataConfig("csv", str(path), False, SyntheticSpec()), 0)


def test_the_plan_first_prompt_shows_its_choices(monkeypatch):
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=80)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr(builtins, "input", lambda *a: "n")
    assert not confirm(console, yes=False)
    assert "run it? [y/N]" in out.getvalue()


def test_the_plan_warns_of_emulated_precision_next_to_the_fp32_twin(
    tmp_path, tiny_config, monkeypatch
):
    from bench.plan.build import make_plan
    from bench.plan.corpus import from_corpus
    from bench.plan.render import markdown
    from strategies.registry import fp32_twin

    monkeypatch.setattr("bench.plan.build.precision_facts", lambda device: dict(AVX2))
    assert fp32_twin("partial3+amp+cache") == "partial3+cache"
    cfg = dataclasses.replace(tiny_config, strategy="partial1+amp")
    corpus = from_corpus(load_dataset(cfg.data, 0), cfg.train.max_seconds)
    seen = []
    plan = make_plan([cfg], corpus, torch.device("cpu"), 1, 0.01, tmp_path, seen.append)
    assert seen == ["partial1+amp", "partial1 (the fp32 twin of partial1+amp, for comparison)"]
    assert [s.strategy for s in plan.strategies] == ["partial1+amp"]  # the twin is not planned
    # the caveats of a loaded machine (loose bounds) may come too; the emulation warning is first
    warning = plan.warnings[0]
    assert warning.startswith("partial1+amp: bf16 is EMULATED on this cpu (ATen AVX2")
    assert "for its fp32 twin partial1" in warning
    assert "**Warning**: partial1+amp: bf16 is EMULATED" in markdown(plan, None)
    assert plan.to_dict()["warnings"][0] == warning


def test_the_plan_says_when_it_says_little():
    from types import SimpleNamespace

    from bench.plan.build import caveats
    from bench.plan.project import Figure

    def plan(name, value, error):
        return SimpleNamespace(strategy=name, total_s=Figure(value, "s", error, "fit"))

    tight = [plan("full", 100.0, 5.0)]
    assert caveats(tight, calibration_s=10.0) == []
    (loose,) = caveats([plan("full", 3.4, 198.0), *tight], calibration_s=10.0)
    assert loose.startswith("the bounds of full are half their estimates")
    (costly,) = caveats(tight, calibration_s=377.0)
    assert "calibrating took 377 s, longer than the 100 s" in costly


def test_cuda_precision_facts_name_what_decides_amp(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    facts = precision_facts(torch.device("cuda"))
    assert facts["compute_capability"] == "7.0"
    assert facts["bf16_native"] is False and facts["fp16_native"] is True  # a V100
    for key in ("tf32_matmul", "tf32_cudnn", "cudnn_version", "cudnn_benchmark"):
        assert key in facts
    assert is_emulated("bf16", facts) and not is_emulated("fp16", facts)
    text = describe_facts(facts)
    assert "compute capability 7.0" in text and "bf16 emulated" in text and "TF32 matmul" in text
