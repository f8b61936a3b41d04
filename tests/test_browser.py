"""index.html in a real browser: headless Chromium (Debian's `chromium` package; .ci/run installs
it) renders the fixture report, logs no console message, runs the sorting script, and shows the
table and the plots. The screenshots land in reports/screenshots/ for a person to look at."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.report import build_report, render
from tests.conftest import fixture_results, typed, write_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)",
)

SCREENSHOTS = Path(__file__).resolve().parent.parent / "reports" / "screenshots"
# Headless, offline and quiet: no first-run UI, no background fetches, no GPU process needs.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]
LAPTOP = (1440, 900)


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    """Lines Chromium logs for the page's console (with --enable-logging=stderr): errors, CSP
    violations and uncaught exceptions all appear here; our page logs nothing at all."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def load_page(html: Path, profile: Path):
    """Open `html` headless, dump its live DOM, and check the browser logged nothing."""
    proc = chromium(html.as_uri(), profile, "--enable-logging=stderr", "--v=0", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_messages(proc.stderr) == []
    return proc


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    os.environ.pop("GITHUB_STEP_SUMMARY", None)
    results = fixture_results()
    out = write_run(tmp_path_factory.mktemp("browser_run"), results)
    return render(out), results


def test_page_loads_without_console_errors_and_its_script_runs(page, tmp_path):
    rendered, results = page
    proc = load_page(rendered.html, tmp_path / "profile")
    dom = proc.stdout
    # The sorting script makes every header focusable: proof it ran (its CSP hash matched).
    assert dom.count('tabindex="0"') >= len(rendered.report.table.columns)
    for name in {r["strategy"] for r in results}:
        assert f'data-strategy="{name}"' in dom
    assert dom.count("<svg") == len(rendered.plots)


def test_screenshots_show_the_table_and_the_plots(page, tmp_path):
    from PIL import Image

    rendered, _ = page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    top = SCREENSHOTS / "report.png"
    full = SCREENSHOTS / "report_full.png"
    for path, (w, h) in ((top, LAPTOP), (full, (LAPTOP[0], 4200))):
        path.unlink(missing_ok=True)
        proc = chromium(
            rendered.html.as_uri(),
            tmp_path / "profile",
            f"--window-size={w},{h}",
            f"--screenshot={path}",
        )
        assert proc.returncode == 0 and path.exists(), proc.stderr[-2000:]

    def colours(path: Path) -> set[tuple[int, int, int]]:
        img = Image.open(path).convert("RGB")
        return {rgb for _, rgb in img.getcolors(maxcolors=1 << 20)}

    # Solid fills only the rendered page can produce: the recommendation box and the
    # best-in-column cells on the laptop view; the first plot colour in the full page.
    seen_top, seen_full = colours(top), colours(full)
    assert (0xEE, 0xF6, 0xFF) in seen_top, "recommendation box not visible"
    assert (0xE3, 0xF4, 0xE6) in seen_top, "comparison table (best cells) not visible"
    assert (0x33, 0x66, 0xCC) in seen_full, "plots not visible"
    assert len(seen_full) > 200  # text, plots and shading, not a blank or error page


def test_hostile_names_cannot_inject_into_the_live_page(tmp_path):
    results = fixture_results()
    for r in results:
        r["data"]["name"] = '<img src=x onerror="console.log(1)">'
        if r["strategy"] == "lora":
            r["strategy"] = "<script>console.log('pwned')</script>"
    rendered = render(tmp_path / "run", typed(results))
    proc = load_page(rendered.html, tmp_path / "profile")
    assert proc.stdout.count("<script") == 1 and "<img" not in proc.stdout


def test_clicking_a_header_sorts_the_table(tmp_path, monkeypatch):
    """Click "CCC mean" twice (ascending, then descending) by appending a line to our script;
    the CSP hash is computed from the script as rendered, so the page still allows it."""
    import bench.report.html as html_mod

    results = fixture_results()
    keys = [c.key for c in build_report(typed(results)).table.columns]
    col = keys.index("ccc_mean") + 1
    click = f"document.querySelector('#comparison th:nth-child({col})').click();\n" * 2
    monkeypatch.setattr(html_mod, "SORT_JS", html_mod.SORT_JS + click)
    rendered = render(tmp_path / "run", typed(results))
    proc = chromium(
        rendered.html.as_uri(),
        tmp_path / "profile",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
    )
    assert console_messages(proc.stderr) == []
    order = re.findall(r'<tr class="ok" data-strategy="([^"]+)"', proc.stdout)
    means = {s.name: s.mean("ccc_mean") for s in rendered.report.analysis.ok_strategies}
    assert order == sorted(means, key=means.get, reverse=True)
    assert order != list(means)  # else this test could not tell sorted from untouched
    assert 'aria-sort="descending"' in proc.stdout
