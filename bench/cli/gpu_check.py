"""`make gpu-check`: the one command a GPU window runs, sized for it.

    python -m bench.cli.gpu_check [--out DIR] [--work DIR] [--rehearse]

Steps, most telling first, each a fresh process under its own time limit (its whole process
tree killed at the limit), each run whatever the others did, all within BUDGET_S (8 minutes on
one H100/H200): the sweep (the study's strategies and full+amp, 3 epochs of the gpu-check
profile), the +graph sweep, each strategy's ceiling by clip length with its top kernels, the
GPU tests (pytest without the project's addopts, so a CUDA image without pytest-benchmark runs
them). DIR (default reports/gpu-check-out) then holds summary.txt (the steps, the sweep table
with harness efficiency, speed ratios, validation CCC per epoch, graph replay checks, top
kernels) and gpu-check.tar.gz (every report, result and log; no `+` in its file names).

Without CUDA (or with --rehearse) it rehearses on the CPU in under 2 minutes: the smoke
profile's tiny model on the CPU, and the steps that need CUDA skipped and named in the summary.
Exit code 0 when every step that ran passed, 1 otherwise (the summary says which).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
import tarfile
import time
from pathlib import Path

import torch

from bench.errors import BenchError, run_cli
from bench.launch.steps import Step, StepOutcome, run_steps
from bench.report.check_summary import ratio_lines, sweep_table, val_ccc_lines
from bench.result import RunResult
from bench.result.store import read_result

BUDGET_S = 480.0  # the whole check on one H100/H200; the window allows ~13 minutes in all
REHEARSAL_BUDGET_S = 110.0  # on a 2-core CPU
SWEEP = "full,full+amp,partial3,partial3+amp,partial3+amp+cache,lora3+amp+cache"
GRAPH_SWEEP = "partial3+graph,partial3+amp+graph"
LENGTHS = "partial3,partial3+amp,partial3+amp+graph,full+amp"
# Runs the project's pytest settings without its addopts (--benchmark-disable needs
# pytest-benchmark, which a bare CUDA image may lack: pytest would stop before any test).
PYTEST = ("-m", "pytest", "tests/gpu", "-q", "-s", "-rA", "-p", "no:cacheprovider")
PYTEST_BARE = (*PYTEST, "-p", "no:benchmark", "-o", "addopts=")


def _sweep(
    py: str, how: tuple[str, ...], strategies: str, out: Path, run_limit_s: int
) -> tuple[str, ...]:
    """A bench.run sweep that measures now (--force) and kills a run past `run_limit_s`."""
    limit = ("--run-timeout", str(run_limit_s))
    return (
        py,
        "-m",
        "bench.run",
        *how,
        "--force",
        "--strategies",
        strategies,
        *limit,
        "--out",
        str(out),
    )


def _lengths(py: str, how: tuple[str, ...], strategies: str) -> tuple[str, ...]:
    return (py, "-m", "bench.cli.ceiling", *how, "--strategies", strategies)


def gpu_steps(py: str, work: Path) -> list[Step]:
    """The check on a CUDA device. Limits: 200 + 95 + 75 + 100 = 470 s of the 480 s budget
    (last H100 figures: `all`'s 9 runs of 5 epochs took 345 s, ~38 s a run; these are 6 + 2
    runs of 3 epochs, each killed at 60 s (3x what one should take) so that one hang leaves
    time for the others; +graph runs also capture ~30-40 graphs)."""
    check = ("--profile", "gpu-check", "--epochs", "3")
    return [
        Step(
            "sweep",
            _sweep(py, check, SWEEP, work / "sweep", 60),
            200,
            what=f"{SWEEP}: gpu-check profile, 3 epochs",
        ),
        Step(
            "graph-sweep",
            _sweep(py, check, GRAPH_SWEEP, work / "graph-sweep", 60),
            95,
            what=f"{GRAPH_SWEEP}: gpu-check profile, 3 epochs",
        ),
        Step(
            "lengths",
            _lengths(
                py, ("--profile", "gpu-check", "--lengths", "3,5", "--top-kernels", "6"), LENGTHS
            ),
            75,
            what=f"ceilings of {LENGTHS} at 3 and 5 s clips, top 6 kernels",
        ),
        Step("gpu-tests", (py, *PYTEST_BARE), 100, what="pytest tests/gpu"),
    ]


# The rehearsal's share of each step: what a loaded 2-core CPU does in under 2 minutes.
REHEARSAL_SWEEP = "partial3,partial3+amp"
REHEARSAL_LENGTHS = "partial3,partial3+amp"


def rehearsal_steps(py: str, work: Path, why: str) -> list[Step]:
    """The same steps on a CPU, sized to it: two strategies of the smoke profile's tiny model;
    +graph skipped. Limits: 60 + 40 + 10 = 110 s (on the loaded 2-core CPU it was sized on:
    the sweep 49 s, the lengths 18-30 s, the tests 4 s)."""
    tiny = ("--model", "tiny-w2v2", "--device", "cpu", "--batch-size", "2", "--lengths", "0.5")
    smoke = ("--profile", "smoke", "--device", "cpu")
    return [
        Step(
            "sweep",
            _sweep(py, smoke, REHEARSAL_SWEEP, work / "sweep", 30),
            60,
            what=f"{REHEARSAL_SWEEP}: smoke profile on the CPU (on a GPU: {SWEEP})",
        ),
        Step("graph-sweep", (), 95, skip=f"{why}: +graph replays CUDA graphs"),
        Step(
            "lengths",
            _lengths(py, tiny, REHEARSAL_LENGTHS),
            40,
            what=f"ceilings of {REHEARSAL_LENGTHS} at 0.5 s on tiny-w2v2 (on a GPU: {LENGTHS}; "
            f"the top kernels skipped: {why})",
        ),
        Step(
            "gpu-tests",
            (py, *PYTEST_BARE),
            10,
            what=f"pytest tests/gpu: each test skips itself ({why}); checks that pytest starts",
        ),
    ]


def step_env(repo: Path) -> dict[str, str]:
    """The steps' environment: this checkout importable, no hub access (a GPU machine may have
    no network; the gpu-check profile is random init), output unbuffered (a killed step's log
    keeps its last lines)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _results(folder: Path) -> list[RunResult]:
    """The readable results in `folder` (one cut short by a step's limit is left out: the
    summary must come out whatever the steps left)."""
    found = [read_result(p) for p in sorted((folder / "results").glob("*.json"))]
    return [r for r in found if r is not None]


def missing_runs(steps: list[Step], results: list[RunResult]) -> list[str]:
    """The runs a sweep step was to make that left no result (the step hit its limit first)."""
    have = {r.strategy for r in results}
    lines = []
    for step in steps:
        if step.skip is not None or "bench.run" not in step.argv:
            continue
        wanted = step.argv[step.argv.index("--strategies") + 1].split(",")
        gone = [w for w in wanted if w not in have]
        if gone:
            lines.append(
                f"no result from the {step.name} step for {', '.join(gone)}: the step ended "
                "(its limit, or a failure) before these ran; see its log"
            )
    return lines


def _log_text(outcome: StepOutcome) -> list[str]:
    if outcome.log is None or not outcome.log.is_file():
        return []
    return outcome.log.read_text(errors="replace").splitlines()[1:]  # without the "$ command"


def graph_lines(outcomes: dict[str, StepOutcome], results: list[RunResult]) -> list[str]:
    """The replay checks: the GPU tests' graph results and prints, the +graph runs' notes."""
    tests = [
        ln.strip()
        for ln in _log_text(outcomes["gpu-tests"])
        if "graph" in ln.lower() and ln.strip()
    ]
    notes = [
        f"{r.strategy}: {n}"
        for r in results
        if "graph" in r.strategy
        for n in r.notes
        if "graph" in n
    ]
    failed = [
        f"{r.strategy}: {r.status}: {r.error}"
        for r in results
        if "graph" in r.strategy and not r.ok
    ]
    return tests + notes + failed or ["none ran (see the steps above)"]


def pytest_lines(outcome: StepOutcome) -> list[str]:
    """pytest's one line per test (-rA) and its final count."""
    keep = ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS")
    lines = [ln for ln in _log_text(outcome) if ln.startswith(keep)]
    counts = [ln for ln in _log_text(outcome) if re.search(r"\d+ (passed|failed|skipped)", ln)]
    return lines + counts[-1:] or ["no pytest output (see the step above)"]


def summary_text(
    mode: str,
    steps: list[Step],
    outcomes: list[StepOutcome],
    work: Path,
    started: str,
    wall_s: float,
    budget_s: float,
) -> str:
    """summary.txt: what ran and how it ended, then every figure the window is for."""
    by_name = {o.name: o for o in outcomes}
    sweep, graphs = _results(work / "sweep"), _results(work / "graph-sweep")
    results = sweep + graphs
    cuda = torch.version.cuda or "none"
    out = [
        f"serbench gpu-check: {mode}",
        f"started {started} UTC; {wall_s:.0f} s of a {budget_s:.0f} s budget; torch "
        f"{torch.__version__}, CUDA {cuda}; device {_device_name(results)}",
        "",
        "== steps (status, time / limit) ==",
    ]
    for step, o in zip(steps, outcomes, strict=True):
        out.append(o.line())
        if step.what:
            out.append(f"{'':<15}{step.what}")
    skipped = [o.name for o in outcomes if o.status == "skipped"]
    out.append(f"skipped: {', '.join(skipped) if skipped else 'none'}")
    out += ["", "== sweep: steady-state figures ('first': steps set aside as first visits) =="]
    out += sweep_table(results) if results else ["no results (see the sweep steps above)"]
    out += missing_runs(steps, results)
    out += ["", "== speed ratios (steady samples/s) ==", *ratio_lines(results)]
    out += ["", "== validation CCC (mean) per epoch =="]
    out += val_ccc_lines(results) or ["no results"]
    out += ["", "== graph replay checks ==", *graph_lines(by_name, graphs)]
    out += ["", "== ceiling by clip length and top kernels (the lengths step) =="]
    out += _log_text(by_name["lengths"]) or ["not run"]
    out += ["", "== GPU tests ==", *pytest_lines(by_name["gpu-tests"])]
    return "\n".join(out) + "\n"


def _device_name(results: list[RunResult]) -> str:
    names = sorted({str((r.device or {}).get("name")) for r in results if r.device})
    return ", ".join(names) or "unknown (no run finished)"


def archive_name(name: str) -> str:
    """A file name safe everywhere it may travel: no `+` (or any other odd character)."""
    return re.sub(r"[^A-Za-z0-9._/-]", "_", name)


def write_archive(archive: Path, work: Path, summary: Path) -> int:
    """Everything under `work` (superseded results left out) plus the summary, as gpu-check/...;
    returns the number of files."""
    files = [p for p in sorted(work.rglob("*")) if p.is_file() and "superseded" not in p.parts]
    used: set[str] = set()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(summary, arcname="gpu-check/summary.txt")
        for path in files:
            name = archive_name(f"gpu-check/{path.relative_to(work).as_posix()}")
            while name in used:
                name = name + "_"
            used.add(name)
            tar.add(path, arcname=name)
    return len(files) + 1


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.cli.gpu_check", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--out", default="reports/gpu-check-out", help="summary.txt and the archive")
    ap.add_argument("--work", default="reports/gpu-check", help="the steps' run folders and logs")
    ap.add_argument(
        "--rehearse", action="store_true", help="the CPU rehearsal even where CUDA is available"
    )
    args = ap.parse_args(argv)
    out, work = Path(args.out), Path(args.work)
    if out.resolve() == work.resolve() or work.resolve() in out.resolve().parents:
        raise BenchError(f"--out {out} must lie outside --work {work} (the archive holds --work)")
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    repo = Path(__file__).resolve().parents[2]
    py = sys.executable
    if args.rehearse or not torch.cuda.is_available():
        why = "--rehearse" if args.rehearse else "no CUDA device"
        steps, budget, mode = (
            rehearsal_steps(py, work, why),
            REHEARSAL_BUDGET_S,
            f"CPU rehearsal ({why})",
        )
    else:
        steps, budget, mode = gpu_steps(py, work), BUDGET_S, "GPU"
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    print(f"gpu-check: {mode}, {len(steps)} steps in at most {budget:.0f} s", flush=True)
    outcomes = run_steps(
        steps,
        work / "steps",
        step_env(repo),
        budget,
        lambda o: print(f"gpu-check: {o.line()}", flush=True),
    )
    summary = out / "summary.txt"
    summary.write_text(
        summary_text(mode, steps, outcomes, work, started, time.perf_counter() - t0, budget)
    )
    archive = out / "gpu-check.tar.gz"
    n = write_archive(archive, work, summary)
    print(summary.read_text(), end="")
    print(f"gpu-check: {summary} and {archive} ({n} files)")
    bad = [o.name for o in outcomes if o.status in ("failed", "timeout")]
    if bad:
        print(f"gpu-check: failed: {' '.join(bad)}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
