"""The Markdown report: verdicts, summary, stages, power, soak, decision table, warnings, trend.

No plots and no dependency beyond orinbench itself, so that it renders where matplotlib is absent
(a CI job summary, a pull-request comment).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..history.store import device_label
from ..results.schema import HOST_LATENCY, Result

if TYPE_CHECKING:
    from .build import Report


def _num(x: object, digits: int = 4) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(float(x)):
        return "–"
    return f"{float(x):.{digits}g}"


def _cell(x: object) -> str:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return _num(x)
    text = "–" if x is None else str(x)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    out = [
        "| " + " | ".join(_cell(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _summary_row(name: str, r: Result) -> list[object]:
    st = r.stats.get(HOST_LATENCY) or {}
    power = r.power or {}
    energy = power.get("energy") or {}
    return [
        name,
        device_label(r),
        f"{r.environment.backend} {r.config.precision}",
        st.get("p50_ms"),
        st.get("p95_ms"),
        st.get("p99_ms"),
        r.throughput.get("fps"),
        power.get("mean_w"),
        energy.get("mj_per_inference"),
    ]


def render_markdown(report: Report) -> str:
    """The report as GitHub-flavoured Markdown."""
    out: list[str] = [f"## {report.title}", ""]
    meta = [f"generated {report.generated_utc} by orinbench {report.tool_version}"]
    if report.baseline is not None:
        meta.append(f"baseline `{report.baseline_name or 'baseline'}`")
    if report.targets_source:
        meta.append(f"targets `{report.targets_source}`")
    out += [" · ".join(meta), ""]
    for entry in report.entries:
        if entry.gate_error:
            out += [f"### {entry.name}: INCOMPARABLE", "", f"> {entry.gate_error}", ""]
        elif entry.gate is not None:
            gate_md = entry.gate.to_markdown().rstrip("\n").splitlines()
            if gate_md and gate_md[0].startswith("#"):
                gate_md[0] = f"### {entry.name}: {entry.gate.outcome}"
            out += [*gate_md, ""]
    out += ["### Summary", ""]
    rows = [_summary_row(e.name, e.result) for e in report.entries]
    if report.baseline is not None:
        rows.append(
            _summary_row(f"baseline ({report.baseline_name or 'baseline'})", report.baseline)
        )
    out += _table(
        ("result", "device", "backend", "P50 ms", "P95 ms", "P99 ms", "FPS", "power W", "mJ/inf"),
        rows,
    )
    out.append("")
    base_stages = report.baseline.stages if report.baseline is not None else None
    for entry in report.entries:
        st = entry.result.stages
        if not st:
            continue
        out += [f"### Stages: {entry.name}", ""]
        srows = []
        for name, s in st.items():
            lat = (s or {}).get("latency") or {}
            share = (s or {}).get("share")
            row: list[object] = [
                name,
                lat.get("p50_ms"),
                lat.get("p99_ms"),
                f"{share:.1%}" if isinstance(share, (int, float)) else None,
            ]
            if base_stages:
                then = (((base_stages.get(name) or {}).get("latency")) or {}).get("p99_ms")
                now = lat.get("p99_ms")
                delta = (
                    f"{(now - then) / then * 100.0:+.1f}%"
                    if isinstance(now, (int, float)) and isinstance(then, (int, float)) and then
                    else None
                )
                row += [then, delta]
            srows.append(row)
        header = ["stage", "P50 ms", "P99 ms", "share"]
        if base_stages:
            header += ["baseline P99 ms", "Δ P99"]
        out += [*_table(header, srows), ""]
    for entry in report.entries:
        soak = entry.result.extra.get("soak")
        if isinstance(soak, Mapping):
            scal = [[k, v] for k, v in soak.items() if isinstance(v, (int, float, str))]
            if scal:
                out += [f"### Soak: {entry.name}", "", *_table(("soak", "value"), scal), ""]
        decide = entry.result.extra.get("decide")
        sentences: list[str] = []
        if isinstance(decide, Mapping):
            from .html import decide_sentences

            sentences = decide_sentences(entry.result)
            decide = decide.get("rows")
        if isinstance(decide, list) and decide and all(isinstance(r, Mapping) for r in decide):
            keys: list[str] = []
            for r in decide:
                keys += [str(k) for k in r if str(k) not in keys]
            out += [
                f"### Precision decision: {entry.name}",
                "",
                *_table(keys, ([_md_value(r.get(k)) for k in keys] for r in decide)),
                "",
            ]
            if sentences:
                out += [*(f"- {x}" for x in sentences), ""]
    warnings = [
        f"- {e.name}: [{w.code}] {w.message}" for e in report.entries for w in e.result.warnings
    ]
    if warnings:
        out += ["### Quality warnings", "", *warnings, ""]
    if report.trend_requested and not report.trend_rows:
        none_yet = "No earlier run of this device, model, precision and backend."
        out += ["### History", "", none_yet, ""]
    if report.trend_rows:
        out += [f"### History ({len(report.trend_rows)} runs)", ""]
        if report.steps:
            out += [f"- {s.describe()}" for s in report.steps]
        else:
            out.append(f"No step change in `{report.trend_metric}`.")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _md_value(v: Any) -> object:
    if isinstance(v, (list, tuple, dict)):
        return str(v)
    return v
