"""The self-test as text (the terminal) and as one self-contained HTML page (the bug report).

The page has one table, a row per capability, its evidence in a ``<details>`` block (numbers as a
small table, logs and tracebacks as ``<pre>``). Every value is escaped; no scripts, no external
files. The style is the HTML report's (``orinbench.report.html``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..report.html import _CSS, _e
from .rows import FAIL, PASS, SKIPPED, Row, SelftestReport

_MARK = {PASS: "pass", FAIL: "FAIL", SKIPPED: "skipped"}
#: evidence keys shown as preformatted text
_TEXT_KEYS = ("traceback", "log_tail")
_EXTRA_CSS = """
.status-skipped { color: var(--muted); }
pre { background: #f6f8fa; padding: 6px 8px; overflow-x: auto; font-size: 12px;
      max-height: 420px; }
td.ev { min-width: 320px; }
"""


def format_text(report: SelftestReport) -> str:
    """The terminal table: one line per row, then the counts."""
    width = max((len(r.id) for r in report.rows), default=10)
    lines = []
    for r in report.rows:
        line = f"{_MARK[r.status]:<8} {r.id:<{width}}  {r.reason}"
        if r.status != PASS and r.fix:
            line += f"  [fix: {r.fix}]"
        lines.append(line)
    c = report.counts()
    lines.append(
        f"\n{c[PASS]} passed, {c[FAIL]} failed, {c[SKIPPED]} skipped in {report.duration_s:.1f} s"
    )
    return "\n".join(lines)


def _value(v: Any) -> str:
    if isinstance(v, (dict, list)):
        text = json.dumps(v, sort_keys=True)
        if len(text) <= 100:
            return f"<code>{_e(text)}</code>"
        return f"<pre>{_e(json.dumps(v, indent=1, sort_keys=True))}</pre>"
    if isinstance(v, float):
        return _e(f"{v:.6g}")  # the page is for reading; selftest.json keeps every digit
    return _e(v)


def _evidence(ev: Mapping[str, Any]) -> str:
    if not ev:
        return ""
    plain = [(k, v) for k, v in ev.items() if k not in _TEXT_KEYS]
    parts = []
    if plain:
        parts.append(
            "<table>"
            + "".join(f"<tr><th>{_e(k)}</th><td>{_value(v)}</td></tr>" for k, v in plain)
            + "</table>"
        )
    for k in _TEXT_KEYS:
        if ev.get(k):
            parts.append(f"<p><b>{_e(k)}</b></p><pre>{_e(ev[k])}</pre>")
    return f"<details><summary>evidence</summary>{''.join(parts)}</details>"


def _row(r: Row) -> str:
    fix = f'<div class="note">fix: {_e(r.fix)}</div>' if r.fix and r.status != PASS else ""
    return (
        f'<tr id="row-{_e(r.id)}" data-status="{_e(r.status)}">'
        f"<td><code>{_e(r.id)}</code></td><td>{_e(r.title)}</td>"
        f'<td class="status-{_e(r.status)}">{_e(_MARK[r.status])}</td>'
        f'<td class="num">{r.duration_s:.2f} s</td>'
        f'<td class="ev">{_e(r.reason)}{fix}{_evidence(r.evidence)}</td></tr>'
    )


def render_html(report: SelftestReport) -> str:
    """The whole page."""
    c = report.counts()
    badge = "PASS" if report.ok else "FAIL"
    env = report.environment
    deps = env.get("dependencies") or {}
    dep_text = ", ".join(f"{k} {v or 'absent'}" for k, v in sorted(deps.items()))
    body = [
        f'<h1>orinbench self-test <span class="badge badge-{badge}">{badge}</span></h1>',
        f'<p class="meta">orinbench {_e(report.orinbench_version)} on {_e(env.get("host"))} '
        f"({_e(env.get('platform'))}, Python {_e(env.get('python'))}), started "
        f"{_e(report.started_utc)}, {report.duration_s:.1f} s. {c[PASS]} passed, "
        f"{c[FAIL]} failed, {c[SKIPPED]} skipped.</p>",
        f'<p class="meta">{_e(dep_text)}</p>',
        "<table><thead><tr><th>id</th><th>capability</th><th>status</th><th>time</th>"
        "<th>reason and evidence</th></tr></thead><tbody>",
        *(_row(r) for r in report.rows),
        "</tbody></table>",
        '<p class="note">Send selftest.json (and this page) with a bug report; '
        "docs/first-run.md says what each row checks.</p>",
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="orinbench {_e(report.orinbench_version)}">'
        f"<title>orinbench self-test: {badge}</title><style>{_CSS}{_EXTRA_CSS}</style></head>\n"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
