"""index.html: one self-contained file (inline CSS, SVG and a few lines of JS; nothing fetched).

The jinja2 environment autoescapes everything; only our own SVG plots and script are marked
safe. A Content-Security-Policy allows no network and only the one script whose hash it names,
so even a string that slipped through escaping could neither run nor phone home.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from bench.report.lr_search import SEARCH_HEAD, search_rows, search_summary
from bench.report.model import Report
from bench.report.plots import Plot

# Click a header to sort by it (numeric where cells carry data-sort); n/a always sorts last.
SORT_JS = """
(function () {
  function key(td) {
    if (!td) return null;
    var v = td.getAttribute('data-sort');
    if (v === null || v === '') return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.tabIndex = 0;
      function sort() {
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if (x === null) return y === null ? 0 : 1;
          if (y === null) return -1;
          var c = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener('click', sort);
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter') sort(); });
    });
  });
})();
"""


def _csp(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def render_html(report: Report, plots: Sequence[Plot]) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("bench", "templates"),
        autoescape=True,  # every {{ }} is escaped unless explicitly marked safe
        undefined=StrictUndefined,  # a typo in the template is an error, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(
        r=report,
        h=report.header,
        t=report.table,
        a=report.analysis,
        plots=plots,
        script=SORT_JS,
        csp=_csp(SORT_JS),
        lr_summary=search_summary(report.lr_search) if report.lr_search else "",
        lr_head=SEARCH_HEAD,
        lr_rows=search_rows(report.lr_search) if report.lr_search else [],
        plan_lines=report.plan_check.sentences() if report.plan_check else [],
    )
