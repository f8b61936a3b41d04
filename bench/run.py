"""`python -m bench.run`: plan the sweep, validate everything up front, run it, render the report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console

from bench.config import PROFILES, RunConfig, get_profile
from bench.datasets import ADAPTERS, load_dataset
from bench.errors import BenchError

# The study's five strategies; `all` runs these (and grows as families are added).
ALL = ["full", "partial3", "partial3+amp", "partial3+amp+cache", "lora"]


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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Finetune a speech transformer for dimensional SER with each strategy and compare CCC and cost.",
    )
    ap.add_argument(
        "--strategies",
        default="all",
        help="comma list (full,partial3+amp,lora:r=16) or 'all' (default)",
    )
    ap.add_argument(
        "--seeds", default=None, help="count (3) or list (0,1,2); default from the profile"
    )
    ap.add_argument("--dataset", default="synthetic", help=f"one of: {', '.join(ADAPTERS)}")
    ap.add_argument(
        "--data-root", default=None, help="manifest/corpus path (csv: the manifest file)"
    )
    ap.add_argument(
        "--model", default=None, help="preset, local path or hub id (default from the profile)"
    )
    ap.add_argument(
        "--weights",
        default="auto",
        choices=["auto", "pretrained", "random"],
        help="auto: pretrained, falling back loudly to random init when offline",
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
    ap.add_argument("--strict", action="store_true", help="any bad manifest row is an error")
    ap.add_argument("--force", action="store_true", help="rerun runs whose results already exist")
    ap.add_argument("--quiet", action="store_true", help="no progress output, only the final table")
    ap.add_argument(
        "--list-strategies",
        action="store_true",
        help="print every strategy and modifier, then exit",
    )
    return ap


def list_strategies_text() -> str:
    from strategies.registry import MODIFIER_HELP, describe, registered

    lines = ["strategies:"] + [f"  {describe(info)}" for info in registered().values()]
    lines += ["modifiers (append with +):"] + [f"  +{k:<6} {v}" for k, v in MODIFIER_HELP.items()]
    lines += [f"all = {', '.join(ALL)}"]
    return "\n".join(lines)


def plan(args: argparse.Namespace) -> tuple[list[RunConfig], Path]:
    """Resolve and validate every run before anything trains."""
    import torch

    from bench.model import architecture_config
    from strategies import parse_strategy

    profile = get_profile(args.profile or ("study" if torch.cuda.is_available() else "quick"))
    names = (
        ALL
        if args.strategies.strip() == "all"
        else [s for s in args.strategies.split(",") if s.strip()]
    )
    specs = [parse_strategy(n) for n in names]
    model = args.model or profile.model
    try:
        layers = architecture_config(model).num_hidden_layers
    except OSError:
        layers = None  # checked again once the model loads
    if layers is not None:
        for s in specs:
            s.strategy.validate(layers)
    train = profile.train
    if args.epochs is not None:
        train = type(train)(**{**train.__dict__, "max_epochs": args.epochs})
    if args.batch_size is not None:
        train = type(train)(**{**train.__dict__, "batch_size": args.batch_size})
    seeds = parse_seeds(args.seeds, profile.seeds)
    if args.dataset not in ADAPTERS:
        raise BenchError(f"unknown dataset {args.dataset!r}; valid datasets: {', '.join(ADAPTERS)}")
    out = Path(args.out or f"reports/{profile.name}")
    configs = [
        RunConfig(
            profile.name,
            s.name,
            seed,
            model,
            args.weights,
            args.dataset,
            args.data_root,
            args.strict,
            args.device,
            train,
            profile.synthetic,
        )
        for seed in seeds
        for s in specs
    ]
    return configs, out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    if not console.is_terminal:  # CI logs: wide enough that the table is not squeezed into "…"
        console = Console(width=200)
    err = Console(stderr=True)
    try:
        if args.list_strategies:
            print(list_strategies_text())
            return 0
        configs, out = plan(args)
        c0 = configs[0]
        t0 = time.perf_counter()
        # Validate the data once, up front: a bad manifest fails here, not halfway through a sweep.
        corpus = load_dataset(
            c0.dataset, c0.data_root, seed=c0.seed, strict=c0.strict, synthetic=c0.synthetic
        )
        if not args.quiet:
            from bench.environment import pick_device

            console.print(
                f"[bold]serbench[/bold] profile={c0.profile} model={c0.model} device={pick_device(c0.device)} "
                f"corpus={corpus.name} ({sum(corpus.summary()['n_utterances'].values())} clips) "
                f"runs={len(configs)} -> {out}"
            )
            if corpus.skipped:
                console.print(
                    f"[yellow]skipped {len(corpus.skipped)} bad rows[/yellow], e.g. {corpus.skipped[0]}"
                )
        from bench.report import console_table, render
        from bench.sweep import run_sweep

        results = run_sweep(
            configs, out, Console(quiet=args.quiet, width=console.width), force=args.force
        )
        for note in sorted({n for r in results for n in r.get("notes", []) if "RANDOM-INIT" in n}):
            err.print(f"[bold red]WARNING:[/bold red] {note}")
        md, html, summary = render(out, results)
        console.print(console_table(summary))
        console.print(f"report: {md} and {html}  (wall {time.perf_counter() - t0:.0f} s)")
        return 0 if all(r["status"] == "ok" for r in results) else 1
    except BenchError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted: finished results are kept; rerun the same command to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
