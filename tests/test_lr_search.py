"""The learning-rate search: --lrs grid points as ordinary runs (own config hash and result
file), each strategy's rate chosen on validation only, and what the report shows of it."""

from __future__ import annotations

import hashlib
import json

import pytest

from bench.cli.args import LrPoint, build_run_parser, configs_from_args, parse_lrs, with_lrs
from bench.cli.run import main as run_main
from bench.config import lr_label
from bench.errors import BenchError
from bench.launch.isolated import planned_runs
from bench.report import build_report, render
from bench.report.lr_search import search, search_rows, search_summary
from bench.result.store import load_results, write_result
from bench.train.setup import setup_run
from strategies import parse_strategy
from tests.conftest import ok_result, typed, write_run


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def test_parse_lrs():
    assert parse_lrs(None) == []
    assert parse_lrs("x0.3, x1,X3") == [
        LrPoint(factor=0.3),
        LrPoint(factor=1.0),
        LrPoint(factor=3.0),
    ]
    assert parse_lrs("1e-4,3e-4") == [LrPoint(lr=1e-4), LrPoint(lr=3e-4)]
    for bad, msg in (
        ("x0.3,1e-4", "not both"),
        ("x0", "not a positive multiple"),
        ("fast", "not a positive multiple"),
        ("x1,x1", "listed twice"),
        ("1e-4,", "not a positive multiple"),
    ):
        with pytest.raises(BenchError, match=msg):
            parse_lrs(bad)


def test_grid_points_are_ordinary_runs_with_their_own_hash_and_file(tmp_path):
    args = build_run_parser().parse_args(
        ["--profile", "smoke", "--strategies", "full,lora", "--seeds", "2", "--lrs", "x0.5,x2"]
    )
    configs, _, _ = configs_from_args(args)
    assert len(configs) == 2 * 2 * 2
    assert len({c.config_hash() for c in configs}) == 8
    assert {lr_label(c.train) for c in configs} == {"x0.5", "x2"}
    paths = {r.path.name for r in planned_runs(configs, tmp_path)}
    assert "full__lrx0.5__seed0.json" in paths and "lora__lrx2__seed1.json" in paths
    assert len(paths) == 8
    labels = {r.label for r in planned_runs(configs, tmp_path)}
    assert "lora lr x2 seed 1" in labels
    absolute = with_lrs(configs[:1], [LrPoint(lr=1e-4)])
    assert planned_runs(absolute, tmp_path)[0].path.name == "full__lr0.0001__seed0.json"


def test_a_run_without_lrs_keeps_its_config_hash(tiny_config):
    d = tiny_config.to_dict()
    for newer in ("lr_factor", "tf32", "cudnn_benchmark"):  # newer than existing results' hashes
        del d["train"][newer]
    old = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]
    assert tiny_config.config_hash() == old
    assert tiny_config.with_train(lr_factor=1.0).config_hash() != old
    assert planned_runs([tiny_config], tiny_config.data.root)[0].path.name == "partial2__seed0.json"


def test_the_factor_multiplies_the_strategy_default(tiny_config):
    default = parse_strategy(tiny_config.strategy).strategy.default_lr * tiny_config.train.lr_scale
    ctx = setup_run(tiny_config.with_train(lr_factor=3.0))
    assert ctx.lr == pytest.approx(3.0 * default)
    assert setup_run(tiny_config.with_train(lr=1e-4)).lr == pytest.approx(1e-4)


def point(strategy, seed, factor, lr, val, test):
    """A finished run at grid point x`factor` with best validation CCC `val`, test CCC `test`."""
    return ok_result(
        strategy,
        seed,
        strategy_spec={"lr": lr},
        metrics={
            "ccc": {"arousal": test, "valence": test},
            "ccc_mean": test,
            "val_ccc_best": val,
            "history": [{"epoch": 0, "elapsed_s": 5.0, "val_ccc_mean": val}],
        },
        efficiency={"train_samples_per_s": 10.0, "epoch_time_s": 10.0, "train_wall_s": 20.0},
        data={
            "name": "c",
            "dimensions": ["arousal", "valence"],
            "n_utterances": {"train": 10},
        },
        config={
            "profile": "test",
            "strategy": strategy,
            "seed": seed,
            "train": {"lr_factor": factor},
        },
    )


def grid() -> list[dict]:
    """lora: x1 is best on validation (0.50, 0.52) but x3 is best on test (0.70): the test set
    must not choose. full: x3 best on validation."""
    out = []
    for seed in (0, 1):
        out += [
            point("lora", seed, 1.0, 5e-4, 0.50 + 0.02 * seed, 0.40),
            point("lora", seed, 3.0, 1.5e-3, 0.45, 0.70),
            point("full", seed, 1.0, 5e-5, 0.30, 0.35),
            point("full", seed, 3.0, 1.5e-4, 0.40, 0.30),
        ]
    return out


def test_the_rate_is_chosen_on_validation_never_on_test():
    s, chosen = search(typed(grid()))
    assert s.chosen == {"lora": "x1", "full": "x3"}
    assert {(r.strategy, r.metrics.ccc_mean) for r in chosen} == {("lora", 0.40), ("full", 0.30)}
    assert s.chosen_point("lora").val_ccc.mean == pytest.approx(0.51)
    assert s.runs == 8 and s.wall_s == pytest.approx(160.0)
    report = build_report(typed(grid()))
    assert report.analysis.get("lora").mean("ccc_mean") == pytest.approx(0.40)
    assert len(report.analysis.runs) == 4  # the chosen points' runs only


def test_a_rate_chosen_at_the_end_of_its_grid_is_said_to_be_one():
    three = grid() + [
        point("lora", seed, 0.3, 1.5e-4, 0.30, 0.20) for seed in (0, 1)
    ]  # lora's x1 now sits inside its grid; full's x3 is still its highest rate
    s, _ = search(typed(three))
    assert s.at_edge("lora") is None and s.at_edge("full") == "highest"
    assert "widen --lrs): full (the highest rate searched)." in search_summary(s)
    marks = {(row[0], row[1]): row[-1] for row in search_rows(s)}
    assert marks[("full", "x3")] == "chosen (highest rate searched)"
    assert marks[("lora", "x1")] == "chosen"
    lowest, _ = search(typed([point("full", 0, f, 5e-5 * f, 0.5 - 0.1 * f, 0.3) for f in (1, 2)]))
    assert lowest.at_edge("full") == "lowest"
    single, _ = search(typed([point("full", 0, 1.0, 5e-5, 0.5, 0.3)]))
    assert single.at_edge("full") is None and "widen" not in search_summary(single)


def test_the_report_names_the_chosen_rates_and_plots_the_sensitivity(tmp_path):
    results = grid()
    folder = tmp_path / "run"
    for r in typed(results):  # grid points need their own files
        p = r.config["train"]["lr_factor"]
        write_result(folder / "results" / f"{r.strategy}__lrx{p:g}__seed{r.seed}.json", r)
    out = render(folder)
    rows = {r.strategy: r for r in out.report.table.rows}
    assert "lr x1 = 0.0005" in rows["lora"].badges and "lr x3 = 0.00015" in rows["full"].badges
    assert [p.name for p in out.plots][-1] == "val_ccc_vs_lr"
    assert (folder / "plots" / "val_ccc_vs_lr.png").exists()
    md = out.markdown.read_text()
    assert "### Learning-rate search" in md and "The search cost 8 runs, 160 s" in md
    assert "lr x1 = 0.0005" in md
    assert 'id="lr-search"' in out.html.read_text()
    assert not any("different configurations" in w for w in out.report.header.warnings)
    csv_head = out.csv.read_text().splitlines()[0].split(",")
    assert "lr" in csv_head and "lr_point" in csv_head


def test_a_plain_sweep_has_no_search_and_five_plots(tmp_path):
    results = [r for r in grid() if r["config"]["train"]["lr_factor"] == 1.0 and r["seed"] == 0]
    for r in results:
        del r["config"]["train"]
    out = render(write_run(tmp_path / "run", results))
    assert out.report.lr_search is None and len(out.plots) == 5


def test_grid_points_go_through_the_gpus_launcher_as_ordinary_runs(
    tmp_path, monkeypatch, synth_dir
):
    """`--lrs` with `--launcher gpus`: each grid point is a job on a device of the pool (two
    stand-in devices: no CUDA is touched, the runs train on the CPU), and the folder's report
    chooses a rate. The local launcher goes through the same planned runs; CI runs the Slurm
    launcher's sweep (.ci/run)."""
    monkeypatch.setattr("bench.launch.gpus.visible_devices", lambda: ["0", "1"])
    out = tmp_path / "run"
    argv = ["--profile", "smoke", "--epochs", "1", "--max-seconds", "1", "--quiet"]
    argv += ["--strategies", "full", "--lrs", "x0.3,x3", "--data-root", str(synth_dir)]
    assert run_main([*argv, "--launcher", "gpus", "--out", str(out)]) == 0
    results = load_results(out)
    assert sorted(p.name for p in (out / "results").glob("*.json")) == [
        "full__lrx0.3__seed0.json",
        "full__lrx3__seed0.json",
    ]
    assert {r.launch["launcher"] for r in results} == {"gpus"} and all(r.ok for r in results)
    assert sorted(r.strategy_spec["lr"] for r in results) == pytest.approx([1.5e-5, 1.5e-4])
    s, _ = search(results)
    assert s is not None and set(s.chosen) == {"full"}
    assert "### Learning-rate search" in (out / "report.md").read_text()
