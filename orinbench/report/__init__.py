"""Reports people look at: a self-contained HTML page (plots need the ``report`` extra) and a
Markdown summary, built from results, their gate verdicts, a baseline and the run history."""

from __future__ import annotations

from .build import Report, ReportEntry, ReportOutput, build_report, report_files

__all__ = ["Report", "ReportEntry", "ReportOutput", "build_report", "report_files"]
