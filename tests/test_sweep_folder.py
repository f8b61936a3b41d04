"""A sweep's report is its folder's report, and it notices runs trained on different data;
user data with rich markup in it (a `[/b]` path) is printed as text."""

from __future__ import annotations

import shutil

from bench.cli.run import main
from bench.data.synthetic import generate
from bench.report import render
from bench.result.store import load_results
from tests.conftest import TINY_SPEC


def test_a_clip_deleted_between_runs_is_noticed_and_the_report_is_the_folders(
    tmp_path, synth_dir, capsys
):
    corpus = tmp_path / "[" / "b]corpus"  # a path holding rich markup: [/b]corpus
    shutil.copytree(generate(TINY_SPEC, synth_dir).parent, corpus)
    manifest = corpus / "manifest.csv"
    with manifest.open("a") as fh:
        fh.write("wav/absent.wav,0.1,0.1,0.1,train,spk000\n")  # one bad row: a warning names it
    out = tmp_path / "[" / "b]run"
    argv = ["--profile", "smoke", "--dataset", "csv", "--data-root", str(manifest)]
    argv += ["--epochs", "1", "--out", str(out)]

    assert main([*argv, "--strategies", "head,head"]) == 0
    captured = capsys.readouterr()
    assert f"{manifest}:" in captured.err.replace("\n", "")  # the [/b] path, printed as text
    assert "strategies given more than once ran once: head" in captured.err
    first = load_results(out)
    assert [r.strategy for r in first] == ["head"] and first[0].data.fingerprint

    for wav in sorted((corpus / "wav").glob("*.wav"))[:3]:
        wav.unlink()  # three clips gone before the next sweep
    assert main([*argv, "--strategies", "partial1"]) == 0
    captured = capsys.readouterr()
    assert "different versions of the data" in captured.err.replace("\n", " ")
    md = (out / "report.md").read_text()
    assert "different versions of the data" in md
    assert "| head |" in md and "| partial1 |" in md  # the folder's runs, not only this sweep's
    fingerprints = {r.strategy: r.data.fingerprint for r in load_results(out)}
    assert fingerprints["head"] != fingerprints["partial1"]
    assert render(out).markdown.read_text() == md  # bench.report of the folder: the same report


def test_the_header_warns_only_when_fingerprints_differ():
    import dataclasses

    from bench.report.header import different_data
    from tests.conftest import fixture_results, typed

    results = [r for r in typed(fixture_results()) if r.data is not None]
    assert different_data(results) is None  # results from before fingerprints: nothing to say
    same = [r.replace(data=dataclasses.replace(r.data, fingerprint="aaaa")) for r in results]
    assert different_data(same) is None
    changed = [same[0].replace(data=dataclasses.replace(same[0].data, fingerprint="bbbb"))]
    warning = different_data(changed + same[1:])
    assert "2 different versions of the data" in warning
    assert (
        f"bbbb ({'/'.join(map(str, same[0].data.n_utterances.values()))} train/val/test" in warning
    )
