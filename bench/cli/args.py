"""What the commands share: the run flags, and turning them into validated run configs.

`python -m bench.run`, `python -m bench.plan` and `python -m bench.cli.ceiling` read the same
flags into the same `RunConfig`s here, so a plan, a ceiling and a sweep of one command line are
of the same runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from rich.console import Console

from bench.config import PROFILES, DataConfig, MeterConfig, RunConfig, get_profile
from bench.data.adapters.hf_options import HFOptions
from bench.data.adapters.label_range import parse_label_range
from bench.data.datasets import ADAPTERS
from bench.errors import BenchError
from bench.launch.folder_lock import check_out_dir
from bench.launch.options import add_launch_arguments
from bench.meter.environment import pick_device
from bench.meter.precision import describe_facts, is_emulated, precision_facts
from bench.model.backbones import architecture_config, decide_weights
from bench.model.graphs import require_cuda
from bench.train.step import resolve_precision
from strategies import StrategySpec, parse_strategy
from strategies.registry import (
    describe,
    describe_modifiers,
    fp32_twin,
    registered,
    split_strategy_list,
)

# `all`: the study's five strategies, then ours: SUPERB-style layer weighting, BitFit, DoRA, and
# LoRA in the last three layers with its frozen prefix cached.
ALL = [
    "full",
    "partial3",
    "partial3+amp",
    "partial3+amp+cache",
    "lora",
    "head",
    "bitfit",
    "dora",
    "lora3+amp+cache",
]


def parse_seeds(text: str | None, default_count: int) -> list[int]:
    """`3` -> [0, 1, 2]; `0,5,7` -> [0, 5, 7]."""
    if text is None:
        return list(range(default_count))
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        n = int(text)
    except ValueError:
        raise BenchError(f"--seeds takes a count (3) or a list (0,1,2), not {text!r}") from None
    if n < 1:
        raise BenchError("--seeds count must be >= 1")
    return list(range(n))


def parse_folds(text: str) -> list[int]:
    """`1-5` -> [1, 2, 3, 4, 5]; `1,3` -> [1, 3]; `2` -> [2]."""
    folds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            lo, dash, hi = part.partition("-")
            folds += list(range(int(lo), int(hi) + 1)) if dash else [int(lo)]
    except ValueError:
        raise BenchError(f"--folds takes a range (1-5) or a list (1,3), not {text!r}") from None
    if not folds or len(set(folds)) != len(folds):
        raise BenchError(f"--folds takes distinct folds like 1-5 or 1,3, not {text!r}")
    return folds


def build_run_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Finetune a speech transformer for dimensional SER with each strategy and compare CCC and cost.",
    )
    ap.add_argument(
        "--strategies",
        default=None,
        help="comma list (full,partial3+amp,lora:r=16,alpha=32) or 'all', run as typed; "
        "default: 'all', except that on a device without hardware bf16/fp16 the +amp strategies "
        "run in fp32 (said before the sweep and in the report)",
    )
    ap.add_argument(
        "--seeds", default=None, help="count (3) or list (0,1,2); default from the profile"
    )
    ap.add_argument("--dataset", default="synthetic", help=f"one of: {', '.join(ADAPTERS)}")
    ap.add_argument(
        "--data-root",
        default=None,
        help="csv: the manifest file; msp-podcast: the folder holding Labels/ and Audios/; "
        "iemocap: the folder holding Session1..5; hf: a folder written by save_to_disk or a "
        "hub name; synthetic: its cache folder",
    )
    ap.add_argument(
        "--fold",
        type=int,
        default=None,
        help="iemocap: the session held out for test, 1-5 (default 5; validation: the one before)",
    )
    ap.add_argument(
        "--folds",
        default=None,
        help="iemocap: run every fold listed (1-5, or 1,3): folds become a sweep dimension and "
        "the report averages over seeds and folds",
    )
    ap.add_argument(
        "--test-set", default=None, help="msp-podcast: the Split_Set used as test (default Test1)"
    )
    ap.add_argument(
        "--label-range",
        default=None,
        help="csv, hf: the labels' scale, mapped to [-1, 1]: LO,HI (1,7) or per dimension "
        "'arousal=1,7;valence=1,7;dominance=1,5' (default: -1,1; negative LO: --label-range=-1,1)",
    )
    hf = ap.add_argument_group("--dataset hf (a Hugging Face dataset)")
    hf.add_argument("--audio-column", default=None, help="the audio column (default audio)")
    hf.add_argument(
        "--label-columns",
        default=None,
        help="arousal=EmoAct,valence=EmoVal,dominance=EmoDom (any subset; default: columns "
        "named arousal, valence, dominance)",
    )
    hf.add_argument(
        "--speaker-column", default=None, help="speaker ids (default: a column named speaker)"
    )
    hf.add_argument(
        "--hf-splits",
        default=None,
        help="train=train,val=validation,test=test (default: the dataset's split names; a "
        "dataset of one split is split by speaker)",
    )
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="crop longer clips to this many seconds (random window in training, centred in "
        "evaluation); default from the profile",
    )
    ap.add_argument(
        "--model",
        default=None,
        help="preset, local path or hub id of a wav2vec2, hubert, wavlm or data2vec-audio "
        "checkpoint (default from the profile); a comma list (tiny-w2v2,tiny-wavlm) compares "
        "the backbones x strategies in one report",
    )
    ap.add_argument(
        "--weights",
        default=None,
        choices=["auto", "pretrained", "random"],
        help="auto: pretrained, falling back loudly to random init when offline (default: the "
        "profile's: auto; random for gpu-check)",
    )
    ap.add_argument(
        "--profile",
        default=None,
        help=f"{', '.join(PROFILES)}; default: study with CUDA, quick without",
    )
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1")
    ap.add_argument("--out", default=None, help="run folder (default reports/<profile>)")
    ap.add_argument("--epochs", type=int, default=None, help="override the profile's max epochs")
    ap.add_argument(
        "--batch-size", type=int, default=None, help="override the profile's batch size"
    )
    ap.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="data loader worker processes, used when the decoded audio is not held in memory "
        "(profile default)",
    )
    ap.add_argument(
        "--preload",
        default=None,
        choices=["auto", "on", "off"],
        help="decode every clip into memory once before training (auto: when it fits in 25%% "
        "of the available memory; default)",
    )
    ap.add_argument("--strict", action="store_true", help="any bad manifest row is an error")
    measure = ap.add_argument_group("measurement")
    measure.add_argument(
        "--warmup-steps",
        type=int,
        default=None,
        help="steps excluded from throughput (profile default)",
    )
    measure.add_argument(
        "--warmup-seconds", type=float, default=None, help="seconds excluded from throughput, too"
    )
    measure.add_argument(
        "--nvml-interval-ms",
        type=float,
        default=10.0,
        help="NVML memory sampling period (default 10)",
    )
    measure.add_argument(
        "--require-idle-gpu", action="store_true", help="abort when other processes use the GPU"
    )
    measure.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="device peak for MFU (default: known-GPU table)",
    )
    ap.add_argument("--force", action="store_true", help="rerun runs whose results already exist")
    ap.add_argument("--quiet", action="store_true", help="no progress output, only the final table")
    ap.add_argument(
        "--tolerance",
        type=float,
        default=0.01,
        help="the report recommends the fastest strategy whose mean CCC is within this of the best",
    )
    ap.add_argument(
        "--list-strategies",
        action="store_true",
        help="print every strategy and modifier, then exit",
    )
    add_lr_search_arguments(ap)
    add_launch_arguments(ap)
    add_fp32_math_arguments(ap)
    return ap


def add_fp32_math_arguments(ap: argparse.ArgumentParser) -> None:
    """--tf32 and --cudnn-benchmark: explicit, recorded choices (TrainConfig.tf32 and
    .cudnn_benchmark, hashed into each run's id), set before the model runs."""
    g = ap.add_argument_group("fp32 math on CUDA (recorded in each run's config)")
    g.add_argument(
        "--tf32",
        choices=["on", "off"],
        default=None,
        help="TF32 tensor cores for fp32 matmuls and convolutions (default off: fp32 runs "
        "compute in fp32 and MFU is rated against the fp32 peak; on: against the TF32 peak)",
    )
    g.add_argument(
        "--cudnn-benchmark",
        choices=["on", "off"],
        default=None,
        help="let cuDNN autotune each convolution at each new input shape (default off, as in "
        "PyTorch; the tuning falls in first visits, outside steady state)",
    )


def fp32_math_overrides(args: argparse.Namespace) -> dict[str, bool]:
    """The TrainConfig fields --tf32 and --cudnn-benchmark set (none when not given)."""
    given = {
        "tf32": getattr(args, "tf32", None),
        "cudnn_benchmark": getattr(args, "cudnn_benchmark", None),
    }
    return {name: value == "on" for name, value in given.items() if value is not None}


# --------------------------------------------------------------------------------------------
# A learning-rate search (--lrs): every grid point is an ordinary run with its own config hash
# and result file, so resume, --force, seeds and every launcher apply unchanged.


def add_lr_search_arguments(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("learning-rate search")
    g.add_argument(
        "--lrs",
        default=None,
        metavar="GRID",
        help="run every strategy at each learning rate: multiples of its default (x0.3,x1,x3) "
        "or absolute rates (1e-4,3e-4); the report picks each strategy's rate by mean "
        "validation CCC over seeds",
    )


@dataclass(frozen=True)
class LrPoint:
    """One grid point: `factor` times the strategy's default rate, or the absolute rate `lr`."""

    factor: float | None = None
    lr: float | None = None


def parse_lrs(text: str | None) -> list[LrPoint]:
    """--lrs as grid points; [] when not given. All multiples or all absolute rates."""
    if text is None:
        return []
    points = []
    for item in (t.strip() for t in text.split(",")):
        relative = item.lower().startswith("x")
        try:
            value = float(item[1:] if relative else item)
        except ValueError:
            value = float("nan")
        if not value > 0 or value == float("inf"):
            raise BenchError(
                f"--lrs: {item!r} is not a positive multiple (x0.3) or rate (1e-4); "
                "e.g. --lrs x0.3,x1,x3 or --lrs 1e-4,3e-4"
            )
        points.append(LrPoint(factor=value) if relative else LrPoint(lr=value))
    if len({p.factor is None for p in points}) > 1:
        raise BenchError(f"--lrs {text}: use multiples (x0.3,x1) or absolute rates, not both")
    if len(set(points)) != len(points):
        raise BenchError(f"--lrs {text}: a grid point is listed twice")
    return points


def with_lrs(configs: list[RunConfig], points: list[LrPoint]) -> list[RunConfig]:
    """Each config once per grid point (unchanged without --lrs), grid points innermost so a
    strategy's rates run next to each other."""
    if not points:
        return configs
    return [c.with_train(lr=p.lr, lr_factor=p.factor) for c in configs for p in points]


def consoles() -> tuple[Console, Console]:
    """(stdout, stderr) consoles of the command-line tools; stdout wide enough in CI logs that a
    table is not squeezed into "…"."""
    console = Console()
    return (console if console.is_terminal else Console(width=200)), Console(stderr=True)


def strategy_names(text: str | None) -> list[str] | None:
    """--strategies as a list of spellings: `all` is ALL; None (not given) stays None."""
    if text is None:
        return None
    return list(ALL) if text.strip() == "all" else split_strategy_list(text)


def list_strategies_text() -> str:
    lines = ["strategies (family<k>:param=default,...; k = a number suffix, e.g. partial3):"]
    lines += [f"  {describe(info)}" for info in registered().values()]
    lines += ["modifiers (append with +, e.g. partial3+amp+cache):"]
    lines += [f"  {line}" for line in describe_modifiers()]
    lines += [f"all = {', '.join(ALL)}"]
    return "\n".join(lines)


# Below this crop a clip is a few frames of the CNN's output: runs finish "ok" and measure
# nothing (the smoke profile crops at 1 s).
MIN_MAX_SECONDS = 0.5


def unique_runs(
    specs: list[StrategySpec], seeds: list[int]
) -> tuple[list[StrategySpec], list[int], str | None]:
    """`specs` and `seeds` without repeats, compared by canonical spelling (`partial3` and
    `partial:k=3` are one strategy), in first-seen order; and a sentence saying what was merged
    (None when nothing was). A repeat would run twice into one result file and be averaged with
    itself by the sweep's report."""
    kept: dict[str, StrategySpec] = {}
    for s in specs:
        kept.setdefault(s.name, s)
    once = list(dict.fromkeys(seeds))
    merged = []
    if len(kept) < len(specs):
        repeats = [n for n in kept if sum(s.name == n for s in specs) > 1]
        merged.append(f"strategies given more than once ran once: {', '.join(repeats)}")
    if len(once) < len(seeds):
        repeats = [str(x) for x in once if seeds.count(x) > 1]
        merged.append(f"seeds given more than once ran once: {', '.join(repeats)}")
    return list(kept.values()), once, "; ".join(merged) or None


def check_run_options(args: argparse.Namespace, names: list[str], seeds: list[int]) -> None:
    """The options a sweep would otherwise trip over late (after training, or per run): each
    refused here, naming the option."""
    if not names:
        raise BenchError(
            f"--strategies {args.strategies!r} names no strategy; give a comma list "
            "(full,partial3+amp) or all"
        )
    if not seeds:
        raise BenchError(
            f"--seeds {args.seeds!r} names no seed; give a count (3) or a list (0,1,2)"
        )
    negative = [s for s in seeds if s < 0]
    if negative:
        raise BenchError(f"--seeds must be >= 0, not {', '.join(map(str, negative))}")
    tolerance = getattr(args, "tolerance", 0.0)
    if not tolerance >= 0:  # also refuses NaN
        raise BenchError(f"--tolerance must be a number >= 0 (a CCC difference), not {tolerance}")
    if args.max_seconds is not None and args.max_seconds < MIN_MAX_SECONDS:
        raise BenchError(
            f"--max-seconds must be >= {MIN_MAX_SECONDS:g}, not {args.max_seconds:g}: shorter "
            "crops leave the model a few frames, and runs would finish ok measuring nothing"
        )


def check_device(text: str, launcher: str) -> None:
    """Refuse a --device this machine cannot run on. Slurm runs on other nodes: not checked."""
    try:
        device = torch.device(text) if text != "auto" else None
    except RuntimeError:
        raise BenchError(f"--device takes auto, cpu, cuda or cuda:N, not {text!r}") from None
    if device is None or device.type != "cuda" or launcher == "slurm":
        return
    if not torch.cuda.is_available():
        raise BenchError(
            f"--device {text}: no CUDA GPU is available here; use --device cpu or auto"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise BenchError(
            f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s), "
            f"numbered from 0"
        )


@dataclass(frozen=True)
class StrategyChoice:
    names: list[str]  # the spellings to run
    notes: list[str]  # what the default set changed on this device, and how to bring it back


def default_strategies(device: torch.device) -> StrategyChoice:
    """`all`, except where `+amp` would be emulated on `device` (no hardware bf16/fp16): there
    each `+amp` strategy runs as its fp32 twin, or is left out when the twin is in the set, so
    that the default sweep measures strategies, not an emulator, and finishes."""
    amp = resolve_precision("auto", device).name
    facts = precision_facts(device)
    if not is_emulated(amp, facts):
        return StrategyChoice(list(ALL), [])
    names: list[str] = []
    changes: list[str] = []
    for name in ALL:
        spec = parse_strategy(name)
        if spec.modifiers.precision == "fp32":
            names.append(name)
            continue
        twin = fp32_twin(name)
        if twin in ALL:
            changes.append(f"{name} left out (its fp32 twin {twin} runs)")
        else:
            names.append(twin)
            changes.append(f"{twin} instead of {name}")
    note = (
        f"+amp resolves to {amp} on this {device.type}, which does not run {amp} natively "
        f"({describe_facts(facts)}), so the default strategy set changed: {'; '.join(changes)}. "
        "`--strategies all` runs every strategy as listed (its +amp figures then measure "
        "emulation)."
    )
    return StrategyChoice(names, [note])


def strategy_choice(args: argparse.Namespace) -> StrategyChoice:
    """The strategies to run: as typed when --strategies was given, else the device's default."""
    if args.strategies is None:
        return default_strategies(pick_device(args.device))
    names = strategy_names(args.strategies) or []
    if not names:
        raise BenchError(
            f"--strategies {args.strategies!r} names no strategy; give a comma list "
            "(full,partial3) or 'all' (see --list-strategies)"
        )
    return StrategyChoice(names, [])


class Sweep(NamedTuple):
    configs: list[RunConfig]
    out: Path  # the run folder
    notes: list[str]  # what was decided for the user before the sweep: said and recorded


def default_out(profile: str, dataset: str, models: list[str], profile_model: str) -> Path:
    """reports/<profile>, named also by corpus and backbone when they are not the profile's, so
    that a csv or multi-backbone run never lands in `make smoke`'s folder."""
    parts = [profile]
    if dataset != "synthetic":
        parts.append(dataset)
    if models != [profile_model]:
        parts += [re.sub(r"[^A-Za-z0-9._-]+", "-", m.rstrip("/").split("/")[-1]) for m in models]
    return Path("reports") / "-".join(parts)


def configs_from_args(args: argparse.Namespace) -> Sweep:
    """Resolve and validate every run before anything trains."""
    profile = get_profile(args.profile or ("study" if torch.cuda.is_available() else "quick"))
    check_device(args.device, args.launcher)  # the default strategy set depends on it
    choice = strategy_choice(args)
    names = choice.names
    seeds = parse_seeds(args.seeds, profile.seeds)
    check_run_options(args, names, seeds)
    specs, seeds, merged = unique_runs([parse_strategy(n) for n in names], seeds)
    graphs = [s.name for s in specs if s.modifiers.graph]
    if graphs and args.launcher == "local":
        require_cuda(pick_device(args.device), ", ".join(graphs))
    models = list(dict.fromkeys(m.strip() for m in (args.model or profile.model).split(",")))
    if "" in models:
        raise BenchError(f"--model has an empty name in {args.model!r}; use a,b without blanks")
    for model in models:
        try:  # an unsupported family is refused here, before anything trains
            layers = architecture_config(model).num_hidden_layers
        except OSError:
            continue  # checked again once the model loads
        for s in specs:
            s.strategy.validate(layers)
    # Command-line overrides of the profile's training settings: (flag, field, smallest value).
    overrides = {}
    for flag, field_name, least in (
        ("--epochs", "max_epochs", 1),
        ("--batch-size", "batch_size", 1),
        ("--warmup-steps", "warmup_steps", 0),
        ("--warmup-seconds", "warmup_seconds", 0),
        ("--max-seconds", "max_seconds", MIN_MAX_SECONDS),
        ("--num-workers", "num_workers", 0),
    ):
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is None:
            continue
        if value < least:
            raise BenchError(f"{flag} must be >= {least:g}, not {value:g}")
        overrides[field_name] = value
    if args.preload is not None:
        overrides["preload"] = args.preload
    overrides |= fp32_math_overrides(args)
    train = dataclasses.replace(profile.train, **overrides)
    if args.dataset not in ADAPTERS:
        raise BenchError(f"unknown dataset {args.dataset!r}; valid datasets: {', '.join(ADAPTERS)}")
    if args.folds is not None and args.fold is not None:
        raise BenchError("--fold and --folds exclude each other: --folds 3 runs fold 3 alone")
    if args.folds is not None and args.dataset != "iemocap":
        raise BenchError(f"--folds applies to --dataset iemocap only, not {args.dataset}")
    folds: list[int | None] = [args.fold] if args.folds is None else list(parse_folds(args.folds))
    hf_flags = (args.audio_column, args.label_columns, args.speaker_column, args.hf_splits)
    hf = HFOptions.parse(*hf_flags) if any(f is not None for f in hf_flags) else None
    label_range = parse_label_range(args.label_range) if args.label_range is not None else None
    out = (
        Path(args.out)
        if args.out
        else default_out(profile.name, args.dataset, models, profile.model)
    )
    weights = {m: decide_weights(m, args.weights or profile.weights) for m in models}
    check_out_dir(out)
    data = DataConfig(
        args.dataset,
        args.data_root,
        args.strict,
        profile.synthetic,
        test_set=args.test_set,
        label_range=label_range,
        hf=hf,
    )
    meter = MeterConfig(
        nvml_interval_s=args.nvml_interval_ms / 1000,
        require_idle_gpu=args.require_idle_gpu,
        peak_tflops=args.peak_tflops,
    )
    configs = [
        RunConfig(
            profile.name,
            s.name,
            seed,
            model,
            weights[model][0],
            args.device,
            train,
            dataclasses.replace(data, fold=fold),
            meter,
        )
        for seed in seeds
        for model in models
        for fold in folds
        for s in specs
    ]
    configs = with_lrs(configs, parse_lrs(args.lrs))
    notes = [merged] if merged else []
    return Sweep(configs, out, notes + choice.notes + [n for _, n in weights.values() if n])


def add_plan_arguments(ap: argparse.ArgumentParser, msp_like: bool = True) -> None:
    g = ap.add_argument_group("planning")
    if msp_like:
        g.add_argument(
            "--msp-like",
            type=int,
            default=None,
            metavar="N",
            help="plan for N clips with durations drawn like MSP-Podcast's (no audio is "
            "written; --dataset and --data-root are then ignored)",
        )
    g.add_argument(
        "--calibration-points",
        type=int,
        default=5,
        help="padded lengths timed per strategy, from the shortest to the longest bucket (>= 3 "
        "for the quadratic fit and its bound; default 5)",
    )
    g.add_argument(
        "--calibration-seconds",
        type=float,
        default=1.0,
        help="seconds of timed training steps per length, over 3 passes (default 1.0; less "
        "for a small sweep: at most a quarter of the time the sweep trains the strategy)",
    )


def add_plan_first_arguments(ap: argparse.ArgumentParser) -> None:
    """`python -m bench.run`'s flags for planning before running."""
    g = ap.add_argument_group("planning first")
    g.add_argument(
        "--plan-first",
        action="store_true",
        help="calibrate, print the plan (plan.json, plan.md in the run folder), then ask before "
        "running",
    )
    g.add_argument(
        "--yes",
        action="store_true",
        help="with --plan-first: run without asking (never asked without a terminal or in CI)",
    )
    add_plan_arguments(ap, msp_like=False)
