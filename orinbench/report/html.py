"""The HTML report: one self-contained file (inline CSS, plots as embedded PNGs, no scripts).

Sections, each present only when there is something to show: verdicts (targets and baseline
checks), a summary table, latency histogram and CDF with P50/P95/P99 marked (the baseline
overlaid), a comparison of several results, per-stage breakdown, power trace with its mean, soak
windows, the precision-decision table, quality warnings, the history trend, and the environment.
Every plot is an ``<img class="plot-img" data-plot="KEY">`` inside ``<figure class="plot">``.
"""

from __future__ import annotations

import html
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..results.schema import HOST_LATENCY, Result
from . import plots
from .plots import Plot, Series
from .trend import trend_plot

if TYPE_CHECKING:
    from .build import Report, ReportEntry

_CSS = """
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       margin: 0 auto; max-width: 1100px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line);
     padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta, .note { color: var(--muted); font-size: 13px; }
nav a { margin-right: 12px; font-size: 13px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.status-pass, .status-unchanged, .status-improved { color: var(--ok); font-weight: 600; }
.status-fail, .status-regressed, .status-error { color: var(--bad); font-weight: 700; }
.status-inconclusive { color: var(--warn); font-weight: 700; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; color: #fff;
         font-weight: 700; font-size: 13px; }
.badge-PASS { background: var(--ok); } .badge-FAIL, .badge-ERROR, .badge-INCOMPARABLE {
  background: var(--bad); }
.banner { border-left: 4px solid var(--bad); background: #fff5f5; padding: 6px 10px;
          margin: 8px 0; }
.banner.warn { border-color: var(--warn); background: #fffbea; }
figure.plot { margin: 8px 0 16px; }
figure.plot img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12px; }
details { margin: 6px 0; }
code { font-size: 12px; }
"""

_MARKED = tuple(p for p, _ in plots.MARKED_PERCENTILES)


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _num(x: object, digits: int = 4) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(float(x)):
        return "–"
    return f"{float(x):.{digits}g}"


def _pct(x: object) -> str:
    return f"{float(x):+.1f}%" if isinstance(x, (int, float)) and math.isfinite(float(x)) else "–"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, cls: str = "") -> str:
    """A table; cells given as ``(html, css_class)`` tuples are inserted as-is, others escaped."""
    out = [f'<table class="{_e(cls)}"><thead><tr>']
    out += [f"<th>{_e(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for cell in row:
            if isinstance(cell, tuple):
                content, css = cell
                out.append(f'<td class="{_e(css)}">{content}</td>')
            elif isinstance(cell, (int, float)) and not isinstance(cell, bool):
                out.append(f'<td class="num">{_e(_num(cell))}</td>')
            elif cell is None:
                out.append('<td class="num">–</td>')  # not measured (e.g. no power source)
            else:
                out.append(f"<td>{_e(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _png_size(png: bytes) -> tuple[int, int]:
    # IHDR is the first chunk: width and height are big-endian u32 at bytes 16..24
    if len(png) >= 24 and png[:8] == b"\x89PNG\r\n\x1a\n":
        w, h = struct.unpack(">II", png[16:24])
        return int(w), int(h)
    return 0, 0


def figure(plot: Plot) -> str:
    """The ``<figure>`` of one plot, its PNG inline."""
    w, h = _png_size(plot.png)
    size = f' width="{w}" height="{h}"' if w and h else ""
    return (
        f'<figure class="plot" id="plot-{_e(plot.key)}">'
        f'<img class="plot-img" data-plot="{_e(plot.key)}" alt="{_e(plot.alt)}"{size} '
        f'src="{plot.data_uri()}">'
        f"<figcaption>{_e(plot.title)}</figcaption></figure>"
    )


def _page(title: str, body: Sequence[str], *, generator: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="{_e(generator)}">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def standalone_plot_page(plot: Plot, *, notes: Sequence[str] = (), title: str | None = None) -> str:
    """A page holding one plot and a list of notes (``orinbench history --plot x --out t.html``)."""
    from .. import __version__

    body = [f"<h1>{_e(title or plot.title)}</h1>", figure(plot)]
    if notes:
        body.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    else:
        body.append('<p class="note">No step change found.</p>')
    return _page(title or plot.title, body, generator=f"orinbench {__version__}")


# ------------------------------------------------------------------------------------------ page


def render_html(report: Report) -> str:
    """The whole page for ``report``."""
    body: list[str] = [f"<header><h1>{_e(report.title)}</h1>", _meta_line(report), "</header>"]
    sections: list[tuple[str, str, str]] = []  # (id, heading, html)
    if report.gated:
        sections.append(("verdict", "Verdict", _verdict_section(report)))
    sections.append(("summary", "Summary", _summary_section(report)))
    sections.append(("latency", "Latency", _latency_section(report)))
    if len(report.entries) > 1:
        sections.append(("comparison", "Comparison", _comparison_section(report)))
    if any(e.result.stages for e in report.entries):
        sections.append(("stages", "Stages", _stages_section(report)))
    if any(e.result.power for e in report.entries):
        sections.append(("power", "Power", _power_section(report)))
    if any(isinstance(e.result.extra.get("soak"), Mapping) for e in report.entries):
        sections.append(("soak", "Soak", _soak_section(report)))
    if any(_decide_rows(e.result) for e in report.entries):
        sections.append(("decide", "Precision decision", _decide_section(report)))
    warn = _warnings_section(report)
    if warn:
        sections.append(("warnings", "Quality warnings", warn))
    if report.trend_rows or report.trend_requested:
        sections.append(("trend", "History trend", _trend_section(report)))
    sections.append(("environment", "Environment", _environment_section(report)))
    body.append("<nav>" + "".join(f'<a href="#{i}">{_e(h)}</a>' for i, h, _ in sections) + "</nav>")
    for sid, heading, content in sections:
        body.append(f'<section id="{sid}"><h2>{_e(heading)}</h2>\n{content}\n</section>')
    return _page(report.title, body, generator=f"orinbench {report.tool_version}")


def _meta_line(report: Report) -> str:
    parts = [f"generated {report.generated_utc} by orinbench {report.tool_version}"]
    parts.append(f"{len(report.entries)} result(s)")
    if report.baseline is not None:
        parts.append(f"baseline: {report.baseline_name or report.baseline.model.name}")
    if report.targets_source:
        parts.append(f"targets: {report.targets_source}")
    return f'<p class="meta">{_e(" · ".join(parts))}</p>'


def _headed(report: Report, entry: ReportEntry) -> str:
    return f"<h3>{_e(entry.name)}</h3>" if len(report.entries) > 1 else ""


# ------------------------------------------------------------------------------------------ verdict


def _verdict_section(report: Report) -> str:
    out = []
    for entry in report.entries:
        out.append(_headed(report, entry))
        if entry.gate_error:
            out.append('<p><span class="badge badge-INCOMPARABLE">INCOMPARABLE</span></p>')
            out.append(f'<div class="banner">{_e(entry.gate_error)}</div>')
            continue
        g = entry.gate
        if g is None:
            continue
        out.append(
            f'<p><span class="badge badge-{_e(g.outcome)}">{_e(g.outcome)}</span> '
            f"{_e(g.summary())} (gate exit code {g.exit_code})</p>"
        )
        rows = []
        for v in g.verdicts:
            rows.append(
                [
                    (f"<code>{_e(v.metric)}</code>", ""),
                    v.kind,
                    (
                        _e(
                            v.status.upper()
                            if v.status not in ("pass", "unchanged", "improved")
                            else v.status
                        ),
                        f"status-{v.status}",
                    ),
                    (_e(_num(v.value)), "num"),
                    v.reference,
                    (_e(_pct(v.delta_pct)), "num"),
                    (_e(_num(v.p_value, 2)), "num"),
                    v.message,
                ]
            )
        out.append(
            _table(
                ("metric", "check", "status", "value", "against", "delta", "p", "note"),
                rows,
                cls="verdicts",
            )
        )
        notes = [f"environment: {w}" for w in g.env_warnings] + [str(w) for w in g.warnings]
        if notes:
            out.append('<div class="banner warn">' + "<br>".join(_e(n) for n in notes) + "</div>")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ summary

_SUMMARY_HEADER = (
    "result",
    "model",
    "device",
    "backend · precision",
    "n",
    "P50 ms",
    "P95 ms",
    "P99 ms",
    "mean ms",
    "CV",
    "FPS",
    "power W",
    "mJ/inf",
    "warnings",
)


def _summary_row(name: str, r: Result) -> list[Any]:
    from ..history.store import device_label

    st = r.stats.get(HOST_LATENCY) or {}
    power = r.power or {}
    energy = power.get("energy") or {}
    cv = st.get("cv")
    return [
        name,
        r.model.name or r.model.path,
        device_label(r),
        f"{r.environment.backend} · {r.config.precision}",
        st.get("count", len(r.samples.get(HOST_LATENCY, ()))),
        st.get("p50_ms"),
        st.get("p95_ms"),
        st.get("p99_ms"),
        st.get("mean_ms"),
        (_e(f"{cv:.1%}") if isinstance(cv, (int, float)) else "–", "num"),
        r.throughput.get("fps"),
        power.get("mean_w"),
        energy.get("mj_per_inference"),
        ", ".join(w.code for w in r.warnings) or "none",
    ]


def _summary_section(report: Report) -> str:
    rows = [_summary_row(e.name, e.result) for e in report.entries]
    if report.baseline is not None:
        rows.append(
            _summary_row(f"baseline ({report.baseline_name or 'baseline'})", report.baseline)
        )
    return _table(_SUMMARY_HEADER, rows, cls="summary") + (
        '<p class="note">Latency is host end-to-end per iteration; percentiles from every '
        "iteration's sample.</p>"
    )


# ------------------------------------------------------------------------------------------ latency


def _series(r: Result, label: str, *, baseline: bool = False) -> Series | None:
    raw = r.samples.get(HOST_LATENCY)
    if not raw:
        return None
    arr = np.asarray(raw, dtype=float)
    arr = arr[np.isfinite(arr)]
    return Series(label=label, samples=arr, baseline=baseline) if arr.size else None


def _latency_section(report: Report) -> str:
    out = []
    base = _series(report.baseline, "baseline", baseline=True) if report.baseline else None
    for i, entry in enumerate(report.entries):
        out.append(_headed(report, entry))
        s = _series(entry.result, entry.name if len(report.entries) > 1 else "result")
        if s is None:
            out.append('<p class="note">This result holds no raw latency samples.</p>')
            continue
        series = [s] + ([base] if base is not None else [])
        suffix = " vs baseline" if base is not None else ""
        out.append(
            figure(
                plots.latency_histogram(
                    series,
                    key=f"latency-hist-{i}",
                    title=f"Latency histogram{suffix} ({entry.name})",
                )
            )
        )
        out.append(
            figure(
                plots.latency_cdf(
                    series, key=f"latency-cdf-{i}", title=f"Latency CDF{suffix} ({entry.name})"
                )
            )
        )
        rows = []
        for ser in series:
            rows.append(
                [
                    ser.label,
                    *(float(np.percentile(ser.samples, p)) for p in _MARKED),
                    ser.samples.size,
                ]
            )
        out.append(_table(("series", *(f"P{p:g} ms" for p in _MARKED), "n"), rows))
    return "\n".join(out)


def _comparison_section(report: Report) -> str:
    series = [s for e in report.entries if (s := _series(e.result, e.name)) is not None]
    if report.baseline is not None:
        b = _series(report.baseline, "baseline", baseline=True)
        if b is not None:
            series.append(b)
    if len(series) < 2:
        return '<p class="note">Fewer than two results hold raw samples.</p>'
    return "\n".join(
        [
            figure(
                plots.latency_cdf(series, key="comparison-cdf", title="All results: latency CDF")
            ),
            figure(
                plots.latency_histogram(
                    series, key="comparison-hist", title="All results: latency histogram"
                )
            ),
        ]
    )


# ------------------------------------------------------------------------------------------ stages


def _stage_stat(stages: Mapping[str, Any] | None, name: str, stat: str) -> float | None:
    v = (((stages or {}).get(name) or {}).get("latency") or {}).get(stat)
    return float(v) if isinstance(v, (int, float)) else None


def slowest_stage(
    stages: Mapping[str, Any], baseline: Mapping[str, Any], *, stat: str = "p99_ms"
) -> tuple[str, float] | None:
    """The stage whose ``stat`` grew most against the baseline, with its change in percent."""
    best: tuple[str, float] | None = None
    for name in stages:
        now, then = _stage_stat(stages, name, stat), _stage_stat(baseline, name, stat)
        if now is None or not then:
            continue
        delta = (now - then) / then * 100.0
        if best is None or delta > best[1]:
            best = (name, delta)
    return best


def _stages_section(report: Report) -> str:
    out = []
    base = report.baseline.stages if report.baseline is not None else None
    for i, entry in enumerate(report.entries):
        st = entry.result.stages
        if not st:
            continue
        out.append(_headed(report, entry))
        if base:
            worst = slowest_stage(st, base)
            if worst is not None:
                cls = "banner" if worst[1] > 0 else "banner warn"
                out.append(
                    f'<div class="{cls}">Stage that changed most against the baseline: '
                    f"<b>{_e(worst[0])}</b> (P99 {_e(_pct(worst[1]))})</div>"
                )
        out.append(
            figure(
                plots.stage_breakdown(
                    st, baseline=base, key=f"stages-{i}", title=f"Per-stage latency ({entry.name})"
                )
            )
        )
        rows = []
        for name in st:
            share = (st.get(name) or {}).get("share")
            row: list[Any] = [
                name,
                _stage_stat(st, name, "p50_ms"),
                _stage_stat(st, name, "p95_ms"),
                _stage_stat(st, name, "p99_ms"),
                (_e(f"{share:.1%}") if isinstance(share, (int, float)) else "–", "num"),
            ]
            if base:
                now, then = _stage_stat(st, name, "p99_ms"), _stage_stat(base, name, "p99_ms")
                delta = (now - then) / then * 100.0 if now is not None and then else None
                row += [then, (_e(_pct(delta)), "num")]
            rows.append(row)
        header = ["stage", "P50 ms", "P95 ms", "P99 ms", "share"]
        if base:
            header += ["baseline P99 ms", "Δ P99"]
        out.append(_table(header, rows, cls="stages"))
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ power


def _rail_mean(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, Mapping):
        for k in ("mean_w", "w", "power_w"):
            if isinstance(v.get(k), (int, float)):
                return float(v[k])
    return None


def _power_section(report: Report) -> str:
    out = []
    for i, entry in enumerate(report.entries):
        p = entry.result.power
        if not p:
            continue
        out.append(_headed(report, entry))
        trace = p.get("trace") or {}
        t, w = trace.get("t_s"), trace.get("total_w")
        if isinstance(t, list) and isinstance(w, list) and len(t) == len(w) and len(t) >= 2:
            out.append(
                figure(
                    plots.power_trace(
                        t,
                        w,
                        mean_w=p.get("mean_w"),
                        key=f"power-{i}",
                        title=f"Power over the run ({entry.name}, source {p.get('source', '?')})",
                    )
                )
            )
        else:
            out.append('<p class="note">No power trace stored; summary only.</p>')
        energy = p.get("energy") or {}
        out.append(
            _table(
                ("source", "mean W", "P95 W", "peak W", "energy J", "mJ/inference"),
                [
                    [
                        p.get("source", "?"),
                        p.get("mean_w"),
                        p.get("p95_w"),
                        p.get("peak_w"),
                        energy.get("j"),
                        energy.get("mj_per_inference"),
                    ]
                ],
            )
        )
        rails = p.get("rails") or {}
        if isinstance(rails, Mapping) and rails:
            out.append(_table(("rail", "mean W"), [[k, _rail_mean(v)] for k, v in rails.items()]))
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ soak


def _soak_section(report: Report) -> str:
    out = []
    for i, entry in enumerate(report.entries):
        soak = entry.result.extra.get("soak")
        if not isinstance(soak, Mapping):
            continue
        out.append(_headed(report, entry))
        windows = [w for w in soak.get("windows") or () if isinstance(w, Mapping)]
        plot = plots.soak_windows(windows, key=f"soak-{i}", title=f"Soak ({entry.name})")
        if plot is not None:
            out.append(figure(plot))
        scalars = [
            [k, v]
            for k, v in soak.items()
            if isinstance(v, (int, float, str)) and not isinstance(v, bool)
        ]
        if scalars:
            out.append(_table(("soak", "value"), scalars))
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ decide


def _decide_rows(r: Result) -> list[Mapping[str, Any]]:
    rows = r.extra.get("decide")
    if isinstance(rows, Mapping):  # tolerate {"rows": [...]} as well as a bare list
        rows = rows.get("rows")
    if not isinstance(rows, list):
        return []
    return [row for row in rows if isinstance(row, Mapping)]


def _decide_section(report: Report) -> str:
    out = []
    for entry in report.entries:
        rows = _decide_rows(entry.result)
        if not rows:
            continue
        out.append(_headed(report, entry))
        keys: list[str] = []
        for row in rows:
            keys += [str(k) for k in row if str(k) not in keys]
        out.append(_table(keys, ([_cell(row.get(k)) for k in keys] for row in rows), cls="decide"))
        reasons = decide_sentences(entry.result)
        if reasons:
            out.append(
                "<ul class='decide'>" + "".join(f"<li>{_e(x)}</li>" for x in reasons) + "</ul>"
            )
    return "\n".join(out)


def decide_sentences(r: Result) -> list[str]:
    """The decision's summary, why each other variant lost, and the observations (decide)."""
    d = r.extra.get("decide")
    if not isinstance(d, Mapping):
        return []
    reasons = d.get("reasons")
    items = [
        d.get("summary"),
        *(reasons.values() if isinstance(reasons, Mapping) else ()),
        *(d.get("observations") or ()),
    ]
    return [x for x in items if isinstance(x, str) and x]


def _cell(v: Any) -> Any:
    if v is None:
        return "–"
    if isinstance(v, (list, tuple, dict)):
        return str(v)
    return v


# ------------------------------------------------------------------------------------------ misc


def _warnings_section(report: Report) -> str:
    items = []
    for entry in report.entries:
        items += [f"{entry.name}: [{w.code}] {w.message}" for w in entry.result.warnings]
    if report.baseline is not None:
        items += [f"baseline: [{w.code}] {w.message}" for w in report.baseline.warnings]
    if not items:
        return ""
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _trend_section(report: Report) -> str:
    rows = report.trend_rows
    if not rows:
        return (
            '<p class="note">The history holds no run of this device, model, precision and '
            "backend yet.</p>"
        )
    out = [
        f'<p class="note">{len(rows)} run(s) of this device, model, precision and backend in the '
        f"history, {_e(rows[0].created_utc)} to {_e(rows[-1].created_utc)}.</p>"
    ]
    if any(r.metric(report.trend_metric) is not None for r in rows):
        out.append(figure(trend_plot(rows, report.trend_metric, steps=report.steps)))
    if report.steps:
        out.append("<ul>" + "".join(f"<li>{_e(s.describe())}</li>" for s in report.steps) + "</ul>")
    else:
        out.append(f'<p class="note">No step change in {_e(report.trend_metric)}.</p>')
    return "\n".join(out)


def _flat(prefix: str, obj: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, (list, tuple)):
        out.append((prefix, ", ".join(str(x) for x in obj)))
    else:
        out.append((prefix, "–" if obj is None else str(obj)))


def _environment_section(report: Report) -> str:
    items: list[tuple[str, Result]] = [(e.name, e.result) for e in report.entries]
    if report.baseline is not None:
        items.append((f"baseline ({report.baseline_name or 'baseline'})", report.baseline))
    out = []
    for name, r in items:
        kv: list[tuple[str, str]] = []
        env = r.environment.to_dict()
        _flat("", env, kv)
        _flat("config", r.config.to_dict(), kv)
        kv += [
            ("model.path", r.model.path),
            ("model.sha256", r.model.sha256),
            ("stop_reason", r.stop_reason),
            ("created_utc", r.created_utc),
            ("tool_version", r.tool_version),
        ]
        out.append(
            f"<details><summary>{_e(name)}</summary>" + _table(("key", "value"), kv) + "</details>"
        )
    return "\n".join(out)
