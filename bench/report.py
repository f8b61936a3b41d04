"""Render stored results into a comparison: pandas frame -> markdown, self-contained HTML, console.

`python -m bench.report RESULTS_DIR` re-renders from the stored JSON files without training.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from bench.ccc import DIMENSIONS
from bench.results import load_results

BASELINE = "full"


def results_frame(results: list[dict]) -> pd.DataFrame:
    """One row per run with the figures the report shows (NaN where not measured)."""
    rows = []
    for r in results:
        eff = r.get("efficiency") or {}
        met = r.get("metrics") or {}
        model = r.get("model") or {}
        row = {
            "strategy": r["strategy"],
            "seed": r["seed"],
            "status": r["status"],
            "error": r.get("error"),
            "ccc_mean": met.get("ccc_mean"),
            "params_trainable": model.get("params_trainable"),
            "params_total": model.get("params_total"),
        }
        for d in DIMENSIONS:
            row[f"ccc_{d}"] = (met.get("ccc") or {}).get(d)
        for k in (
            "train_samples_per_s",
            "train_audio_s_per_s",
            "epoch_time_s",
            "cache_build_s",
            "train_wall_s",
            "peak_vram_nvml_mib",
            "peak_vram_alloc_mib",
            "peak_rss_mib",
        ):
            row[k] = eff.get(k)
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.astype(
        {c: float for c in df.columns if c.startswith(("ccc", "train_", "epoch", "cache", "peak"))}
    )


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One row per strategy (mean over ok seeds), with speed-up over `full` computed per seed."""
    ok = df[df.status == "ok"].copy()
    base = ok[ok.strategy == BASELINE].set_index("seed")["train_samples_per_s"]
    ok["speedup"] = (
        ok.apply(lambda r: r.train_samples_per_s / base.get(r.seed, np.nan), axis=1)
        if len(ok)
        else []
    )
    order = list(dict.fromkeys(df.strategy))
    agg = ok.groupby("strategy", sort=False).mean(numeric_only=True)
    agg["seeds"] = ok.groupby("strategy", sort=False).size()
    agg = agg.reindex([s for s in order if s in agg.index])
    agg["trainable_share"] = agg.params_trainable / agg.params_total
    failed = (
        df[df.status != "ok"]
        .groupby("strategy", sort=False)
        .agg(failed=("status", "size"), error=("error", "first"))
    )
    return agg.join(failed, how="outer").reindex(order)


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def _count(n: float) -> str:
    return (
        "n/a"
        if np.isnan(n)
        else f"{n / 1e6:.2f}M"
        if n >= 1e6
        else f"{n / 1e3:.1f}k"
        if n >= 1e3
        else f"{int(n)}"
    )


COLUMNS = [
    ("Strategy", None),
    ("CCC aro", "ccc_arousal"),
    ("CCC val", "ccc_valence"),
    ("CCC dom", "ccc_dominance"),
    ("CCC mean", "ccc_mean"),
    ("samples/s", "train_samples_per_s"),
    ("speed-up", "speedup"),
    ("epoch s", "epoch_time_s"),
    ("cache s", "cache_build_s"),
    ("peak VRAM MiB (NVML)", "peak_vram_nvml_mib"),
    ("peak alloc MiB", "peak_vram_alloc_mib"),
    ("peak RSS MiB", "peak_rss_mib"),
    ("trainable", "params_trainable"),
    ("share", "trainable_share"),
]


def table_rows(summary: pd.DataFrame) -> list[list[str]]:
    rows = []
    for name, r in summary.iterrows():
        if np.isnan(r.get("ccc_mean", np.nan)):
            rows.append([str(name), f"FAILED: {r.get('error')}"] + [""] * (len(COLUMNS) - 2))
            continue
        cells = [str(name)]
        for _, key in COLUMNS[1:]:
            v = r.get(key, np.nan)
            if key.startswith("ccc"):
                cells.append(_fmt(v, ".3f"))
            elif key == "speedup":
                cells.append(_fmt(v, ".2f") + ("x" if not np.isnan(v) else ""))
            elif key == "params_trainable":
                cells.append(_count(v))
            elif key == "trainable_share":
                cells.append(_fmt(100 * v, ".2f") + "%")
            elif key == "cache_build_s":
                cells.append("—" if np.isnan(v) else _fmt(v, ".2f"))
            else:
                cells.append(_fmt(v, ".1f"))
        rows.append(cells)
    return rows


def header_facts(results: list[dict]) -> tuple[dict[str, str], list[str]]:
    """What ran, and the warnings a reader must see."""
    r0 = next((r for r in results if r["status"] == "ok"), results[0])
    model = r0.get("model") or {}
    dev = r0.get("device") or {}
    data = r0.get("data") or {}
    env = r0.get("environment") or {}
    facts = {
        "profile": str(r0.get("profile")),
        "model": f"{model.get('name')} ({model.get('weights')} weights)",
        "corpus": f"{data.get('name')} — {data.get('n_utterances')} utterances, {data.get('hours')} h, labels {data.get('scale')}",
        "device": f"{dev.get('type')} {dev.get('name')}",
        "seeds": ", ".join(str(s) for s in sorted({r["seed"] for r in results})),
        "software": f"torch {env.get('torch')}, transformers {env.get('transformers')}, peft {env.get('peft')}, commit {env.get('git_commit')}",
        "date": str(r0.get("finished_at", r0.get("started_at"))),
    }
    warnings = []
    if any((r.get("model") or {}).get("weights") == "random-init" for r in results):
        warnings.append(
            "Backbone weights are RANDOM-INIT, not pretrained: CCC values show the pipeline works, not what a pretrained model reaches."
        )
    if dev.get("type") != "cuda":
        warnings.append(
            f"Ran on {dev.get('type')}, not a GPU: GPU memory is not measured and speed-ups are CPU speed-ups."
        )
    if data.get("skipped_rows"):
        warnings.append(
            f"{data['skipped_rows']} manifest rows were skipped as bad input (see results for reasons)."
        )
    n_failed = sum(r["status"] != "ok" for r in results)
    if n_failed:
        warnings.append(f"{n_failed} run(s) failed; their errors are in the table.")
    return facts, warnings


def plot_ccc_vs_time(summary: pd.DataFrame, fmt: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = summary.dropna(subset=["ccc_mean", "epoch_time_s"])
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    ax.scatter(ok.epoch_time_s, ok.ccc_mean, s=40, color="#3366cc")
    for name, r in ok.iterrows():
        ax.annotate(
            str(name),
            (r.epoch_time_s, r.ccc_mean),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
    ax.set_xlabel("epoch time (s)")
    ax.set_ylabel("test CCC (mean of dimensions)")
    ax.set_title("CCC vs training cost")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    plt.close(fig)
    return buf.getvalue()


def render_markdown(
    facts: dict[str, str], warnings: list[str], summary: pd.DataFrame, plot_name: str
) -> str:
    lines = ["# serbench report", ""]
    lines += [f"- **{k}**: {v}" for k, v in facts.items()]
    lines += [""] + [f"> **Warning:** {w}" for w in warnings] + ([""] if warnings else [])
    head = [c for c, _ in COLUMNS]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += [
        "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table_rows(summary)
    ]
    lines += [
        "",
        "Speed-up is training samples/s over `full` at the same seed (steady state, warm-up excluded).",
        "Peak VRAM (NVML) is the driver's view of this process; peak alloc is torch's max_memory_allocated.",
        "",
        f"![CCC vs epoch time]({plot_name})",
        "",
    ]
    return "\n".join(lines)


def render_html(facts: dict[str, str], warnings: list[str], summary: pd.DataFrame, svg: str) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("bench", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    return env.get_template("report.html.j2").render(
        facts=facts,
        warnings=warnings,
        head=[c for c, _ in COLUMNS],
        rows=table_rows(summary),
        svg=svg,
    )


def console_table(summary: pd.DataFrame) -> Table:
    table = Table(title="serbench: strategies compared")
    for c, _ in COLUMNS:
        table.add_column(c, justify="left" if c == "Strategy" else "right")
    for row in table_rows(summary):
        table.add_row(*row)
    return table


def render(
    out_dir: str | Path, results: list[dict] | None = None
) -> tuple[Path, Path, pd.DataFrame]:
    """Write report.md, index.html and the plots into `out_dir`; return their paths and the summary."""
    out_dir = Path(out_dir)
    results = load_results(out_dir) if results is None else results
    if not results:
        from bench.errors import BenchError

        raise BenchError(
            f"no result files under {out_dir / 'results'}; run `python -m bench.run --out {out_dir}` first"
        )
    summary = summarize(results_frame(results))
    facts, warnings = header_facts(results)
    (out_dir / "ccc_vs_epoch_time.png").write_bytes(plot_ccc_vs_time(summary, "png"))
    svg = plot_ccc_vs_time(summary, "svg").decode()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog so it can be inlined
    md = out_dir / "report.md"
    md.write_text(render_markdown(facts, warnings, summary, "ccc_vs_epoch_time.png"))
    html = out_dir / "index.html"
    html.write_text(render_html(facts, warnings, summary, svg))
    return md, html, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.report", description="Re-render a report from stored results."
    )
    ap.add_argument("results_dir", help="a run folder holding results/*.json (e.g. reports/quick)")
    args = ap.parse_args(argv)
    from bench.errors import BenchError

    try:
        md, html, summary = render(args.results_dir)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    Console().print(console_table(summary))
    print(f"wrote {md} and {html}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
