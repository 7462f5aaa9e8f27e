"""The self-test's data: one :class:`Row` per capability, and the report that holds them.

``selftest.json`` is ``SelftestReport.to_dict()``. Its ``schema_version`` is bumped on any change a
reader must know about; :func:`report_from_dict` refuses a newer version instead of guessing.

History of ``schema_version``:

* 1 — first version: ``rows`` with ``id``, ``title``, ``status``, ``reason``, ``fix``,
  ``duration_s``, ``evidence``; ``summary`` counts; ``environment``; ``options``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ResultFormatError

SCHEMA = "orinbench-selftest"
SCHEMA_VERSION = 1

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
STATUSES: tuple[str, ...] = (PASS, FAIL, SKIPPED)


class Skip(Exception):
    """Raised inside a check: the capability cannot be tried here (a missing dependency, no
    Jetson, no DLA). ``reason`` says why, ``fix`` how to make it run (a package name)."""

    def __init__(self, reason: str, *, fix: str = "", evidence: Mapping[str, Any] | None = None):
        self.reason = reason
        self.fix = fix
        self.evidence = dict(evidence or {})
        super().__init__(reason)


class CheckFailed(Exception):
    """Raised inside a check: the capability ran and gave a wrong answer; ``evidence`` says
    what was seen (numbers, log lines) so that the row carries it."""

    def __init__(self, reason: str, *, fix: str = "", evidence: Mapping[str, Any] | None = None):
        self.reason = reason
        self.fix = fix
        self.evidence = dict(evidence or {})
        super().__init__(reason)


@dataclass(frozen=True)
class Row:
    """One capability: what was tried, how it went, why, and what was seen."""

    id: str
    title: str
    status: str
    reason: str = ""
    fix: str = ""
    duration_s: float = 0.0
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"row status must be one of {STATUSES}, not {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "reason": self.reason,
            "fix": self.fix,
            "duration_s": round(self.duration_s, 3),
            "evidence": dict(self.evidence),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Row:
        return cls(
            id=str(d["id"]),
            title=str(d.get("title", "")),
            status=str(d["status"]),
            reason=str(d.get("reason", "")),
            fix=str(d.get("fix", "")),
            duration_s=float(d.get("duration_s", 0.0)),
            evidence=dict(d.get("evidence") or {}),
        )


@dataclass(frozen=True)
class SelftestReport:
    """Every row of one self-test run, with where and how it ran."""

    rows: tuple[Row, ...]
    orinbench_version: str
    started_utc: str
    duration_s: float
    environment: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for r in self.rows if r.status == s) for s in STATUSES}

    @property
    def failed(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.status == FAIL)

    @property
    def ok(self) -> bool:
        """True when nothing that ran failed (skipped rows do not count against it)."""
        return not self.failed

    def row(self, row_id: str) -> Row:
        for r in self.rows:
            if r.id == row_id:
                return r
        raise KeyError(row_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "orinbench_version": self.orinbench_version,
            "started_utc": self.started_utc,
            "duration_s": round(self.duration_s, 3),
            "ok": self.ok,
            "summary": self.counts(),
            "environment": dict(self.environment),
            "options": dict(self.options),
            "rows": [r.to_dict() for r in self.rows],
        }


def report_from_dict(d: Any, *, source: str = "selftest.json") -> SelftestReport:
    """Read back a ``selftest.json``; a wrong schema, a newer version or a bad row is a
    one-line :class:`ResultFormatError`."""
    if not isinstance(d, Mapping) or d.get("schema") != SCHEMA:
        raise ResultFormatError(
            f"{source} is not a self-test result", why=f"its 'schema' is not {SCHEMA!r}"
        )
    version = d.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
        raise ResultFormatError(
            f"{source} has self-test schema version {version!r}",
            why=f"this orinbench reads versions 1 to {SCHEMA_VERSION}",
            fix="read it with the orinbench that wrote it, or a newer one",
        )
    rows_in = d.get("rows")
    if not isinstance(rows_in, Sequence):
        raise ResultFormatError(f"{source} has no 'rows' list")
    try:
        rows = tuple(Row.from_dict(r) for r in rows_in)
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultFormatError(f"{source} has a malformed row", why=str(exc)) from exc
    return SelftestReport(
        rows=rows,
        orinbench_version=str(d.get("orinbench_version", "")),
        started_utc=str(d.get("started_utc", "")),
        duration_s=float(d.get("duration_s", 0.0)),
        environment=dict(d.get("environment") or {}),
        options=dict(d.get("options") or {}),
    )
