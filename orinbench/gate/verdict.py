"""Verdicts of the gate and their renderings (plain text, Markdown, JUnit XML).

Exit codes (docs/exit-codes.md): 0 when every verdict is ``pass``, ``unchanged`` or ``improved``;
2 when any verdict is ``error`` (the gate could not judge a metric: the input must be fixed) or when
there is no verdict at all (an empty targets file, a baseline without comparable metrics); else 1
when any is ``fail``, ``regressed`` or — unless ``inconclusive_ok`` — ``inconclusive``. A gate fails
closed: "we could not tell" is not a pass unless the caller says so. Exit 3 (incomparable
environments) is raised as :class:`~orinbench.errors.IncomparableError` before a report exists.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal

from ..errors import ExitCode

Status = Literal["pass", "fail", "regressed", "improved", "unchanged", "inconclusive", "error"]
Kind = Literal["target", "baseline"]

#: statuses that never change the exit code
OK_STATUSES: frozenset[str] = frozenset({"pass", "unchanged", "improved"})
#: statuses that make the gate exit 1
FAIL_STATUSES: frozenset[str] = frozenset({"fail", "regressed"})
#: the summary of a report without verdicts (exit 2)
NOTHING_CHECKED = (
    "nothing checked: the targets file has no targets and no baseline metric was compared; "
    'add entries such as "latency.p99_ms" = "< 80" under [targets], or give a baseline'
)


@dataclass(frozen=True)
class MetricVerdict:
    """The judgement of one metric against a target or against the baseline.

    ``threshold`` is the target's limit (kind ``target``); ``baseline_value`` the baseline's value
    (kind ``baseline``). ``delta_pct`` is the relative change against the baseline in percent
    (signed, ``+`` = larger value), ``p_value`` the Mann–Whitney p on the raw samples where one was
    computed, ``ci`` the bootstrap interval of result/baseline for percentile metrics.
    """

    metric: str
    kind: Kind
    status: Status
    value: float | None = None
    threshold: float | None = None
    op: str | None = None
    baseline_value: float | None = None
    delta_pct: float | None = None
    tolerance_pct: float | None = None
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    message: str = ""

    @property
    def reference(self) -> str:
        """What the value was held against, as text: ``< 80`` or ``baseline 12.3``."""
        if self.kind == "target":
            return f"{self.op} {_num(self.threshold)}" if self.op else "-"
        return f"baseline {_num(self.baseline_value)}"


@dataclass(frozen=True)
class ReportWarning:
    """A warning shown with the verdicts; ``source`` is ``result`` or ``baseline``."""

    source: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: [{self.code}] {self.message}"


@dataclass(frozen=True)
class GateReport:
    """Every verdict of one gate run, the quality warnings of both results, environment notes."""

    verdicts: tuple[MetricVerdict, ...]
    warnings: tuple[ReportWarning, ...] = ()
    env_warnings: tuple[str, ...] = ()
    inconclusive_ok: bool = False

    def count(self, status: str) -> int:
        return sum(1 for v in self.verdicts if v.status == status)

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail/regressed/inconclusive (unless ``inconclusive_ok``), 2 any error.

        Nothing checked is 2 as well: a gate fails closed, and an empty targets file must not
        pass a build.
        """
        statuses = {v.status for v in self.verdicts}
        if not statuses or "error" in statuses:
            return int(ExitCode.USAGE)
        if statuses & FAIL_STATUSES:
            return int(ExitCode.FAILED)
        if "inconclusive" in statuses and not self.inconclusive_ok:
            return int(ExitCode.FAILED)
        return int(ExitCode.OK)

    @property
    def outcome(self) -> str:
        """``PASS``, ``FAIL`` or ``ERROR``, matching :attr:`exit_code`."""
        return {0: "PASS", 1: "FAIL"}.get(self.exit_code, "ERROR")

    def summary(self) -> str:
        """One line: the outcome and the count of each status present."""
        order = ("pass", "unchanged", "improved", "fail", "regressed", "inconclusive", "error")
        parts = [f"{self.count(s)} {s}" for s in order if self.count(s)]
        if not parts:
            return f"gate {self.outcome}: {NOTHING_CHECKED}"
        return f"gate {self.outcome}: " + ", ".join(parts)

    # -- renderings ---------------------------------------------------------------------------

    def _rows(self) -> list[list[str]]:
        rows = []
        for v in self.verdicts:
            rows.append(
                [
                    v.metric,
                    v.kind,
                    v.status.upper() if v.status not in OK_STATUSES else v.status,
                    _num(v.value),
                    v.reference,
                    _pct(v.delta_pct),
                    _p(v.p_value),
                    v.message,
                ]
            )
        return rows

    _HEADER = ("metric", "check", "status", "value", "against", "delta", "p", "note")

    def to_text(self) -> str:
        """A plain-text table for terminals and CI logs, then warnings and the summary line."""
        rows = self._rows()
        table = [list(self._HEADER), *rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(self._HEADER) - 1)]
        lines = []
        for r in table:
            cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)]
            lines.append("  ".join([*cells, r[-1]]).rstrip())
        lines.insert(1, "  ".join("-" * w for w in widths) + "  ----")
        lines.extend(self._warning_lines(prefix="warning: "))
        lines.append(self.summary())
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A Markdown section fit for ``$GITHUB_STEP_SUMMARY``: heading, table, warnings."""
        out = [f"### orinbench gate: {self.outcome}", "", self.summary(), ""]
        out.append("| " + " | ".join(h.capitalize() for h in self._HEADER) + " |")
        out.append("|" + "|".join(["---"] * 3 + ["---:"] * 4 + ["---"]) + "|")
        for r in self._rows():
            cells = [_md_escape(c) for c in r]
            cells[0] = f"`{r[0]}`"
            cells[2] = f"**{cells[2]}**" if r[2].isupper() else cells[2]
            out.append("| " + " | ".join(cells) + " |")
        warn = self._warning_lines(prefix="")
        if warn:
            out += ["", "**Warnings**", ""] + [f"- {_md_escape(w)}" for w in warn]
        return "\n".join(out) + "\n"

    def to_junit_xml(self) -> str:
        """JUnit XML: one ``testcase`` per verdict in one ``testsuite`` named ``orinbench.gate``.

        ``fail`` and ``regressed`` become ``<failure>``, ``error`` becomes ``<error>``;
        ``inconclusive`` becomes ``<failure type="inconclusive">``, or ``<skipped>`` when
        ``inconclusive_ok`` (mirroring the exit code). Warnings go to the suite's ``system-out``.
        """
        failures = sum(
            1
            for v in self.verdicts
            if v.status in FAIL_STATUSES
            or (v.status == "inconclusive" and not self.inconclusive_ok)
        )
        suite = ET.Element(
            "testsuite",
            {
                "name": "orinbench.gate",
                "tests": str(len(self.verdicts)),
                "failures": str(failures),
                "errors": str(self.count("error")),
                "skipped": str(self.count("inconclusive") if self.inconclusive_ok else 0),
            },
        )
        for v in self.verdicts:
            case = ET.SubElement(
                suite, "testcase", {"classname": f"orinbench.gate.{v.kind}", "name": v.metric}
            )
            detail = _detail(v)
            if v.status in FAIL_STATUSES:
                el = ET.SubElement(case, "failure", {"type": v.status, "message": detail})
                el.text = detail
            elif v.status == "error":
                el = ET.SubElement(case, "error", {"type": "error", "message": detail})
                el.text = detail
            elif v.status == "inconclusive":
                if self.inconclusive_ok:
                    ET.SubElement(case, "skipped", {"message": detail})
                else:
                    el = ET.SubElement(case, "failure", {"type": "inconclusive", "message": detail})
                    el.text = detail
            else:
                out = ET.SubElement(case, "system-out")
                out.text = detail
        warn = self._warning_lines(prefix="")
        if warn:
            ET.SubElement(suite, "system-out").text = "\n".join(warn)
        suites = ET.Element(
            "testsuites",
            {k: suite.attrib[k] for k in ("tests", "failures", "errors", "skipped")},
        )
        suites.attrib["name"] = "orinbench"
        suites.append(suite)
        ET.indent(suites)
        body = ET.tostring(suites, encoding="unicode")
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"

    def _warning_lines(self, *, prefix: str) -> list[str]:
        lines = [f"{prefix}environment: {w}" for w in self.env_warnings]
        lines += [f"{prefix}{w}" for w in self.warnings]
        return lines


def _detail(v: MetricVerdict) -> str:
    parts = [f"{v.status}: {v.metric} = {_num(v.value)} ({v.reference})"]
    if v.delta_pct is not None:
        parts.append(f"delta {_pct(v.delta_pct)}")
    if v.tolerance_pct is not None:
        parts.append(f"tolerance {v.tolerance_pct:g}%")
    if v.p_value is not None:
        parts.append(f"p={_p(v.p_value)}")
    if v.ci is not None:
        parts.append(f"ratio CI [{v.ci[0]:.4f}, {v.ci[1]:.4f}]")
    text = ", ".join(parts)
    return f"{text}. {v.message}" if v.message else text


def _num(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.4g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1f}%"


def _p(x: float | None) -> str:
    if x is None:
        return "-"
    return "<0.001" if x < 0.001 else f"{x:.2g}"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
