"""The command line: exit codes and messages for bad input, listing, and a tiny end-to-end sweep."""

import json
import subprocess
import sys

import pytest

from bench.cli.args import parse_seeds
from bench.cli.run import main
from bench.errors import BenchError
from bench.result import SCHEMA
from bench.result.store import read_result


def test_unknown_strategy_exits_2_listing_valid_names(capsys):
    assert main(["--strategies", "full,turbo", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "unknown strategy 'turbo'" in err and "partial" in err and "lora" in err


def test_graph_on_a_cpu_sweep_exits_2_before_anything_runs(capsys):
    assert main(["--strategies", "partial1+graph", "--profile", "smoke", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "partial1+graph" in err and "replays CUDA graphs" in err and "cpu" in err


@pytest.mark.parametrize(
    ("flag", "value", "listed"),
    [("--profile", "huge", "smoke, quick, study"), ("--dataset", "nope", "synthetic, csv")],
)
def test_unknown_profile_or_dataset_exits_2(capsys, flag, value, listed):
    assert (
        main(
            [
                flag,
                value,
                "--profile" if flag != "--profile" else "--seeds",
                "smoke" if flag != "--profile" else "1",
            ]
        )
        == 2
    )
    assert listed in capsys.readouterr().err


def test_list_strategies_prints_every_family_and_modifier(capsys):
    assert main(["--list-strategies"]) == 0
    out = capsys.readouterr().out
    for word in ("full", "partial<k>", "lora", "+amp", "+cache", "all ="):
        assert word in out


def test_seeds_parse_as_count_or_list():
    assert parse_seeds("3", 1) == [0, 1, 2]
    assert parse_seeds("0,5,7", 1) == [0, 5, 7]
    assert parse_seeds(None, 2) == [0, 1]
    with pytest.raises(BenchError):
        parse_seeds("x", 1)


def test_module_help_runs():
    out = subprocess.run(
        [sys.executable, "-m", "bench.cli.run", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--strategies" in out.stdout and "--list-strategies" in out.stdout


def test_end_to_end_sweep_writes_results_and_report(tmp_path, synth_dir, monkeypatch):
    """Two strategies, two epochs, each in its own process; then the resume path skips both."""
    monkeypatch.setenv("SERBENCH_CACHE", str(synth_dir))
    out = tmp_path / "run"
    args = [
        "--profile",
        "smoke",
        "--strategies",
        "partial2+cache,lora",
        "--epochs",
        "2",  # 1 would leave no steady step: warm-up, then first visits of each padded length
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    results = sorted((out / "results").glob("*.json"))
    assert [p.name for p in results] == ["lora__seed0.json", "partial2+cache__seed0.json"]
    r = json.loads(results[1].read_text())
    for key in (
        "schema",
        "strategy",
        "seed",
        "status",
        "error",
        "profile",
        "model",
        "device",
        "metrics",
        "efficiency",
        "notes",
    ):
        assert key in r
    assert r["schema"] == SCHEMA and set(r["efficiency"]) >= {"throughput", "memory", "time"}
    r = read_result(results[1])
    assert r.status == "ok" and r.strategy == "partial2+cache"
    assert set(r.metrics.ccc) == {"arousal", "valence", "dominance"}
    assert r.model.weights == "random-init" and r.model.params_trainable < r.model.params_total
    eff = r.efficiency
    assert eff.throughput.train_samples_per_s > 0 and eff.time.cache_build_s > 0
    assert eff.harness_efficiency > 0 and eff.ceiling.steps >= 5
    assert eff.throughput.stall_steps >= 0 and 1 <= eff.throughput.distinct_input_shapes <= 64
    assert r.data.distinct_input_lengths in range(1, 33)
    assert r.data.loader.mode == "memory"
    assert (out / "logs" / "partial2+cache__seed0.log").exists() and r.log.endswith(".log")
    assert eff.memory.peak_vram_nvml_mib is None and any(
        "GPU memory and energy not measured" in n for n in r.notes
    )
    md = (out / "report.md").read_text()
    assert "| partial2+cache |" in md and "RANDOM-INIT" in md
    assert "<table" in (out / "index.html").read_text()
    mtime = results[0].stat().st_mtime
    assert main(args) == 0  # resume: nothing reruns
    assert results[0].stat().st_mtime == mtime


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--max-seconds", "-2"], "--max-seconds must be >="),
    ],
)
def test_out_of_range_overrides_exit_2(capsys, args, message):
    assert main(["--profile", "smoke", *args]) == 2
    assert message in capsys.readouterr().err


def test_folds_are_a_sweep_dimension_with_their_own_result_files():
    from bench.cli.args import configs_from_args, parse_folds
    from bench.cli.run import build_parser
    from bench.launch.isolated import planned_runs

    assert parse_folds("1-5") == [1, 2, 3, 4, 5] and parse_folds("1,3") == [1, 3]
    argv = "--dataset iemocap --folds 1-3 --seeds 2 --strategies full,lora --profile smoke"
    args = build_parser().parse_args([*argv.split(), "--data-root", "/nowhere"])
    configs, out, _ = configs_from_args(args)
    assert len(configs) == 2 * 3 * 2
    assert {(c.seed, c.data.fold) for c in configs} == {(s, f) for s in (0, 1) for f in (1, 2, 3)}
    paths = {r.path.name for r in planned_runs(configs, out)}
    assert len(paths) == len(configs) and "lora__seed1__fold3.json" in paths


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--folds", "1-5"], "--folds applies to --dataset iemocap only"),
        (["--dataset", "iemocap", "--folds", "1-5", "--fold", "2"], "exclude each other"),
        (["--dataset", "iemocap", "--folds", "1,1"], "distinct folds"),
        (["--dataset", "iemocap", "--folds", "one"], "--folds takes a range"),
        (["--slurm-partition", "gpu"], "only apply with --launcher slurm"),
    ],
)
def test_bad_folds_or_launch_flags_exit_2(capsys, args, message):
    assert main(["--profile", "smoke", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_model_list_plans_every_backbone_x_strategy(tmp_path):
    from bench.cli.args import configs_from_args
    from bench.cli.run import build_parser

    args = build_parser().parse_args(
        ["--profile", "smoke", "--model", "tiny-w2v2,tiny-wavlm", "--strategies", "full,lora"]
    )
    configs, _, _ = configs_from_args(args)
    assert [(c.model, c.strategy) for c in configs] == [
        ("tiny-w2v2", "full"),
        ("tiny-w2v2", "lora"),
        ("tiny-wavlm", "full"),
        ("tiny-wavlm", "lora"),
    ]


def test_an_unsupported_family_in_the_model_list_exits_2(tmp_path, capsys):
    from transformers import Wav2Vec2ConformerConfig

    Wav2Vec2ConformerConfig(hidden_size=32, num_hidden_layers=1).save_pretrained(tmp_path)
    assert main(["--profile", "smoke", "--model", f"tiny-w2v2,{tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "'wav2vec2-conformer' checkpoint" in err and "hubert, wavlm, data2vec-audio" in err


def test_weights_default_to_the_profiles_and_the_flag_overrides_them():
    from bench.cli.args import configs_from_args
    from bench.cli.run import build_parser

    def weights(*argv):
        configs, _, _ = configs_from_args(
            build_parser().parse_args(["--strategies", "full", *argv])
        )
        return {c.weights for c in configs}

    # gpu-check is random init by design: no run asks the hub (offline, that cost 23 s a run).
    assert weights("--profile", "gpu-check") == {"random"}
    assert weights("--profile", "smoke") == {"auto"}
    assert weights("--profile", "gpu-check", "--weights", "auto") == {"auto"}
