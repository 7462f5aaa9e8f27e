"""The decision table as text (what ``orinbench decide`` prints; the reports read the rows)."""

from __future__ import annotations

from collections.abc import Mapping

from .logic import Decision, VariantRow

_COLUMNS = (
    "variant", "device", "P50 ms", "P99 ms", "FPS", "power W", "energy mJ", "acc. loss %",
    "size MB", "layers by precision", "by device", "reformat", "targets",
)  # fmt: skip


def _num(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _counts(d: Mapping[str, int] | None) -> str:
    return " ".join(f"{k}:{v}" for k, v in d.items()) if d else "-"


def _cells(r: VariantRow, chosen: str | None) -> list[str]:
    return [
        ("* " if r.name == chosen else "  ") + r.label,
        r.device,
        _num(r.p50_ms, ".3f"),
        _num(r.p99_ms, ".3f"),
        _num(r.fps, ".1f"),
        _num(r.power_w, ".2f"),
        _num(r.energy_mj, ".3f"),
        _num(r.accuracy_loss_pct, ".2f"),
        _num(r.size_bytes / 1e6, ".2f"),
        _counts(r.layers_precision),
        _counts(r.layers_device),
        "-" if r.reformat_layers is None else str(r.reformat_layers),
        "met" if r.eligible else "missed",
    ]


def format_table(decision: Decision) -> str:
    """Rows, the chosen one starred; then the summary, why each other loses, observations."""
    rows = [list(_COLUMNS)] + [_cells(r, decision.chosen) for r in decision.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = []
    for k, row in enumerate(rows):
        cells = [
            c.ljust(w) if i in (0, 1, 9, 10, 12) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += ["", decision.summary]
    lines += [f"- {text}." for text in decision.reasons.values()]
    lines += [f"- {text}." for text in decision.observations]
    return "\n".join(lines)
