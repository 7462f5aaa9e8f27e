"""Writing ``selftest.json`` and ``selftest.html``: atomically, then read back and checked."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_write_json, atomic_write_text
from ..errors import InternalError, UsageError
from .render import render_html
from .rows import SelftestReport, report_from_dict

JSON_NAME = "selftest.json"
HTML_NAME = "selftest.html"


@dataclass(frozen=True)
class Written:
    json_path: Path
    html_path: Path


def check_out_dir(out_dir: str | os.PathLike[str]) -> Path:
    """``out_dir`` as a Path; a :class:`UsageError` when it exists and is not a folder."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file", fix="pass a folder for the self-test's output")
    return out


def read_selftest(path: str | os.PathLike[str]) -> SelftestReport:
    """Load a ``selftest.json`` (a newer schema or another kind of file is refused)."""
    from ..errors import ResultFormatError

    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultFormatError(f"cannot read {p}", why=str(exc)) from exc
    return report_from_dict(data, source=str(p))


def write_selftest(report: SelftestReport, out_dir: str | os.PathLike[str]) -> Written:
    """Write both files atomically, then read them back: the rows in the JSON must be the rows
    run, and the page must hold every row. A mismatch is a bug (:class:`InternalError`)."""
    out = check_out_dir(out_dir)
    json_path = atomic_write_json(out / JSON_NAME, report.to_dict())
    html_path = atomic_write_text(out / HTML_NAME, render_html(report))
    back = read_selftest(json_path)
    if [(r.id, r.status) for r in back.rows] != [(r.id, r.status) for r in report.rows]:
        raise InternalError(f"{json_path} does not read back as the rows that ran")
    page = html_path.read_text(encoding="utf-8")
    missing = [r.id for r in report.rows if f'id="row-{r.id}"' not in page]
    if missing:
        raise InternalError(f"{html_path} lacks rows {missing}")
    return Written(json_path=json_path, html_path=html_path)
