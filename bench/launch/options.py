"""Where a sweep's runs execute: the command-line options and their validated, typed form."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field

from bench.errors import BenchError

LAUNCHERS = ("local", "gpus", "slurm")

# sbatch options that have their own flag here (or that serbench sets itself): --slurm-extra must
# not set them behind the flag's back.
_OWN_FLAGS = {
    "partition": "--slurm-partition",
    "gpus-per-task": "--slurm-gpus-per-task",
    "cpus-per-task": "--slurm-cpus-per-task",
    "mem": "--slurm-mem",
    "time": "--slurm-time",
    "account": "--slurm-account",
    "array": "--slurm-array-parallelism (serbench submits the array itself)",
    "output": "nothing: serbench writes each task's log under RUN_DIR/jobs/",
    "error": "nothing: serbench writes each task's log under RUN_DIR/jobs/",
    "signal": "nothing: serbench asks for USR2 before the time limit to record timeouts",
}


@dataclass(frozen=True)
class SlurmOptions:
    """sbatch settings for every task of the array; None leaves the cluster's default."""

    partition: str | None = None
    gpus_per_task: int = 1
    cpus_per_task: int | None = None
    mem: str | None = None  # sbatch spelling: 32G, 16000M
    time_min: int | None = None  # the task's time limit in minutes
    account: str | None = None
    array_parallelism: int | None = None  # tasks running at once; None: as many as Slurm allows
    extra: tuple[tuple[str, str | bool], ...] = ()  # more sbatch options: (name, value or True)


@dataclass(frozen=True)
class LaunchOptions:
    launcher: str = "local"
    gpus: tuple[int, ...] | None = None  # --launcher gpus: device indices; None: every visible GPU
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    wait: bool = True  # False (--no-wait): submit and return; only with slurm
    run_timeout_s: float | None = None  # --run-timeout: a run still going is killed (timeout)


def add_launch_arguments(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("where runs execute")
    g.add_argument(
        "--launcher",
        default="local",
        choices=LAUNCHERS,
        help="local: one run at a time on this machine (default); gpus: one run per GPU of this "
        "machine at a time; slurm: one Slurm array task per run (submitit)",
    )
    g.add_argument(
        "--gpus",
        default=None,
        help="--launcher gpus: device indices, e.g. 0,1,3 (default: every visible GPU)",
    )
    g.add_argument(
        "--no-wait",
        action="store_true",
        help="--launcher slurm: submit and return; `python -m bench.report RUN_DIR` renders later",
    )
    g.add_argument(
        "--run-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="kill a run still going after this many seconds; its result says status timeout "
        "and the sweep goes on (default: no limit)",
    )
    s = ap.add_argument_group("slurm (with --launcher slurm)")
    s.add_argument("--slurm-partition", default=None, help="partition (default: the cluster's)")
    s.add_argument(
        "--slurm-gpus-per-task", type=int, default=None, help="GPUs per run (default 1; 0: none)"
    )
    s.add_argument("--slurm-cpus-per-task", type=int, default=None, help="CPUs per run")
    s.add_argument("--slurm-mem", default=None, help="memory per run, sbatch spelling (32G)")
    s.add_argument(
        "--slurm-time",
        default=None,
        help="time limit per run: minutes (90), H:MM:SS or D-HH:MM:SS (default: the partition's)",
    )
    s.add_argument("--slurm-account", default=None, help="account to charge")
    s.add_argument(
        "--slurm-array-parallelism", type=int, default=None, help="at most this many runs at once"
    )
    s.add_argument(
        "--slurm-extra",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other sbatch option, repeatable: --slurm-extra qos=high --slurm-extra exclusive",
    )


def parse_gpus(text: str) -> tuple[int, ...]:
    """`0,1,3` -> (0, 1, 3)."""
    try:
        ids = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise BenchError(f"--gpus takes device indices like 0,1,3, not {text!r}") from None
    if not ids or min(ids) < 0 or len(set(ids)) != len(ids):
        raise BenchError(f"--gpus takes distinct device indices >= 0 like 0,1,3, not {text!r}")
    return ids


def slurm_duration_s(text: str) -> int | None:
    """Seconds in one of Slurm's time spellings (sbatch --time, squeue %L): M, M:S, H:M:S,
    D-H, D-H:M, D-H:M:S. None when `text` is none of them (UNLIMITED, INVALID, NOT_SET)."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if m is None:
        return None
    days, a, b, c = (int(g) if g is not None else None for g in m.groups())
    if days is not None:
        return days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    if c is not None:
        return a * 3600 + b * 60 + c
    return a * 60 + (b or 0)


def parse_slurm_time(text: str) -> int:
    """--slurm-time -> minutes, rounded up (what sbatch and submitit take)."""
    seconds = slurm_duration_s(text)
    if seconds is None:
        raise BenchError(
            f"--slurm-time {text!r}: use minutes (90), H:MM:SS (1:30:00) or D-HH:MM:SS"
        )
    if seconds <= 0:
        raise BenchError(f"--slurm-time {text!r} must be longer than 0")
    return -(-seconds // 60)


def parse_slurm_extra(items: list[str]) -> tuple[tuple[str, str | bool], ...]:
    out: list[tuple[str, str | bool]] = []
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip().removeprefix("--").replace("_", "-")
        if not re.fullmatch(r"[a-z][a-z0-9-]*", key) or (eq and not value):
            raise BenchError(
                f"--slurm-extra {item!r}: give an sbatch option as KEY=VALUE (qos=high) or a "
                "bare KEY for a switch (exclusive)"
            )
        if key in _OWN_FLAGS:
            raise BenchError(f"--slurm-extra {item!r}: set this with {_OWN_FLAGS[key]}")
        out.append((key, value if eq else True))
    return tuple(out)


def _positive(flag: str, value: int | None, least: int = 1) -> int | None:
    if value is not None and value < least:
        raise BenchError(f"{flag} must be >= {least}, not {value}")
    return value


def launch_options(args: argparse.Namespace) -> LaunchOptions:
    """The validated launch settings; a flag that would be ignored is an error naming it."""
    slurm_flags = {
        "--slurm-partition": args.slurm_partition,
        "--slurm-gpus-per-task": args.slurm_gpus_per_task,
        "--slurm-cpus-per-task": args.slurm_cpus_per_task,
        "--slurm-mem": args.slurm_mem,
        "--slurm-time": args.slurm_time,
        "--slurm-account": args.slurm_account,
        "--slurm-array-parallelism": args.slurm_array_parallelism,
        "--slurm-extra": args.slurm_extra or None,
    }
    if args.launcher != "slurm":
        given = [flag for flag, value in slurm_flags.items() if value is not None]
        if given:
            raise BenchError(f"{', '.join(given)} only apply with --launcher slurm")
        if args.no_wait:
            raise BenchError(
                "--no-wait only applies with --launcher slurm (the local and gpus launchers "
                "run the sweep from this process)"
            )
    if args.gpus is not None and args.launcher != "gpus":
        raise BenchError("--gpus only applies with --launcher gpus")
    if args.launcher == "gpus" and args.device not in ("auto", "cuda"):
        raise BenchError(
            f"--device {args.device} with --launcher gpus: the launcher pins each run to one GPU; "
            "choose them with --gpus 0,1 and leave --device at auto"
        )
    if args.slurm_mem is not None and not re.fullmatch(r"\d+[KMGT]?", args.slurm_mem):
        raise BenchError(
            f"--slurm-mem {args.slurm_mem!r}: use sbatch's spelling, e.g. 32G or 16000M"
        )
    slurm = SlurmOptions(
        partition=args.slurm_partition,
        gpus_per_task=1
        if args.slurm_gpus_per_task is None
        else _positive("--slurm-gpus-per-task", args.slurm_gpus_per_task, 0),
        cpus_per_task=_positive("--slurm-cpus-per-task", args.slurm_cpus_per_task),
        mem=args.slurm_mem,
        time_min=None if args.slurm_time is None else parse_slurm_time(args.slurm_time),
        account=args.slurm_account,
        array_parallelism=_positive("--slurm-array-parallelism", args.slurm_array_parallelism),
        extra=parse_slurm_extra(args.slurm_extra),
    )
    timeout = getattr(args, "run_timeout", None)
    if timeout is not None and not timeout > 0:
        raise BenchError(f"--run-timeout takes seconds > 0, not {timeout:g}")
    return LaunchOptions(
        run_timeout_s=timeout,
        launcher=args.launcher,
        gpus=None if args.gpus is None else parse_gpus(args.gpus),
        slurm=slurm,
        wait=not args.no_wait,
    )
