"""`--label-range`: parsed, printed back, carried through the run config; malformed values refused."""

from __future__ import annotations

import json

import pytest

from bench.cli.args import configs_from_args
from bench.cli.run import build_parser, main
from bench.config import RunConfig
from bench.data.adapters.label_range import LabelRange, parse_label_range
from bench.errors import BenchError


@pytest.mark.parametrize(
    ("text", "default", "by_dimension", "printed"),
    [
        ("1,7", (1.0, 7.0), (), "1,7"),
        (" 0 , 1 ", (0.0, 1.0), (), "0,1"),
        (
            "dominance=1,5;arousal=1,7;valence=1,7",
            None,
            (("arousal", 1.0, 7.0), ("valence", 1.0, 7.0), ("dominance", 1.0, 5.0)),
            "arousal=1,7;valence=1,7;dominance=1,5",
        ),
        ("1,7; dominance = 1,5;", (1.0, 7.0), (("dominance", 1.0, 5.0),), "1,7;dominance=1,5"),
        ("-1,1", (-1.0, 1.0), (), "-1,1"),
    ],
)
def test_parses_and_prints_back(text, default, by_dimension, printed):
    parsed = parse_label_range(text)
    assert parsed == LabelRange(default, by_dimension)
    assert parsed.text() == printed and parse_label_range(printed) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7", "give LO,HI"),
        ("1,x", "give LO,HI"),
        ("1,2,3", "give LO,HI"),
        ("7,1", "LO must be a finite number below HI"),
        ("1,nan", "LO must be a finite number below HI"),
        ("activation=1,7", "unknown dimension 'activation'; use arousal, valence, dominance"),
        ("arousal=1,7;arousal=1,5", "arousal is given twice"),
        ("1,7;1,5", "one range without a dimension, not two"),
        (";", "needs LO,HI"),
    ],
)
def test_malformed_ranges_name_the_flag(text, message):
    with pytest.raises(BenchError, match="--label-range") as err:
        parse_label_range(text)
    assert message in str(err.value)


def test_the_flag_reaches_every_run_and_survives_the_result_json(tmp_path):
    args = build_parser().parse_args(
        ["--dataset", "csv", "--data-root", "m.csv", "--profile", "smoke", "--seeds", "2",
         "--strategies", "full", "--label-range=arousal=1,7;valence=-1,1", "--out", str(tmp_path)]
    )  # fmt: skip
    configs, _, _ = configs_from_args(args)
    assert {c.data.label_range for c in configs} == {
        LabelRange(None, (("arousal", 1.0, 7.0), ("valence", -1.0, 1.0)))
    }
    cfg = configs[0]
    back = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and back.config_hash() == cfg.config_hash()


def test_a_malformed_flag_exits_2_before_anything_runs(capsys, tmp_path):
    assert main(["--dataset", "csv", "--label-range", "7,1", "--out", str(tmp_path)]) == 2
    assert "--label-range '7,1': LO must be a finite number below HI" in capsys.readouterr().err
