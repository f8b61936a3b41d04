import json

from bench.results import SCHEMA, load_results, read_result, result_path, write_result


def test_write_is_atomic_and_round_trips(tmp_path):
    path = result_path(tmp_path, "partial3+amp+cache", 2)
    assert path.name == "partial3+amp+cache__seed2.json"
    write_result(path, {"schema": SCHEMA, "strategy": "x", "seed": 2})
    assert read_result(path)["seed"] == 2
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_unreadable_or_foreign_files_are_ignored(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "half.json").write_text('{"schema": 1, "strat')
    (folder / "other.json").write_text(json.dumps({"schema": 999}))
    write_result(folder / "good.json", {"schema": SCHEMA, "strategy": "full", "seed": 0})
    assert [r["strategy"] for r in load_results(tmp_path)] == ["full"]


def test_nan_is_written_as_null_with_a_note(tmp_path):
    import json
    import math

    from bench.results import write_result

    p = tmp_path / "r.json"
    write_result(
        p, {"schema": 1, "metrics": {"ccc": {"arousal": math.nan}}, "notes": ["x"], "l": [math.inf]}
    )
    r = json.loads(p.read_text())
    assert r["metrics"]["ccc"]["arousal"] is None and r["l"] == [None]
    assert r["notes"][0] == "x"
    assert "metrics.ccc.arousal" in r["notes"][1] and "l[0]" in r["notes"][1]


def test_supersede_keeps_the_replaced_result_with_its_time(tmp_path):
    from bench.results import load_results, result_path, supersede, write_result

    path = result_path(tmp_path, "full", 0)
    write_result(path, {"schema": 1, "status": "ok", "strategy": "full", "seed": 0})
    kept = supersede(path)
    assert not path.exists() and kept.parent.name == "superseded"
    assert kept.name.startswith("full__seed0__") and kept.suffix == ".json"
    assert load_results(tmp_path) == []  # superseded results are not part of the run any more
