"""Human-readable renderings of results for the terminal."""

from __future__ import annotations

from ..results.schema import Result

_PCTS = (
    ("p50_ms", "P50"),
    ("p90_ms", "P90"),
    ("p95_ms", "P95"),
    ("p99_ms", "P99"),
    ("p99_9_ms", "P99.9"),
)
_SERIES_LABEL = {
    "latency": "host latency (end to end)",
    "gpu_compute": "GPU compute (CUDA events)",
    "enqueue": "enqueue",
}


def _ms(x: object) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) else "-"


def _ci(ci: object) -> str:
    if (
        isinstance(ci, (list, tuple))
        and len(ci) == 2
        and all(isinstance(v, (int, float)) for v in ci)
    ):
        return f"[{ci[0]:.3f}, {ci[1]:.3f}]"
    return "n/a (too few samples)"


def format_result(r: Result) -> str:
    lines = [
        f"model     {r.model.name}  ({r.model.path}, sha256 {r.model.sha256[:12]})",
        f"backend   {r.environment.backend} {r.environment.backend_version}, "
        f"precision {r.config.precision}",
    ]
    dev = r.environment.device or {}
    if dev.get("module"):
        lines.append(
            f"device    {dev.get('module')}  JetPack {dev.get('jetpack') or '?'}  "
            f"power mode {dev.get('power_mode') or '?'}"
        )
    tp = r.throughput
    lines.append(
        f"run       {tp.get('iterations', 0)} iterations in {tp.get('wall_s', 0):.2f} s "
        f"({r.stop_reason}); warm-up {tp.get('warmup_iterations', 0)} it"
    )
    for series, st in r.stats.items():
        if series == "enqueue" and "gpu_compute" not in r.stats:
            continue  # on a synchronous backend enqueue is the latency; no need to show it twice
        conf = st.get("confidence", 0.95)
        lines.append("")
        lines.append(f"{_SERIES_LABEL.get(series, series)} [ms]  n={st.get('count')}")
        lines.append(
            f"  min {_ms(st.get('min_ms'))}  mean {_ms(st.get('mean_ms'))}  "
            f"max {_ms(st.get('max_ms'))}  std {_ms(st.get('std_ms'))}  "
            f"CV {st.get('cv', 0):.1%}"
        )
        ci = st.get("ci") or {}
        for key, label in _PCTS:
            lines.append(f"  {label:<6}{_ms(st.get(key)):>12}   {conf:.0%} CI {_ci(ci.get(key))}")
    lines.append("")
    lines.append(f"throughput  {tp.get('fps', 0):.2f} FPS")
    if r.power:
        p = r.power
        energy = p.get("energy") or {}
        lines.append(
            f"power       mean {p.get('mean_w', 0):.2f} W  P95 {p.get('p95_w', 0):.2f} W  "
            f"peak {p.get('peak_w', 0):.2f} W  ({p.get('source')})"
        )
        if energy:
            lines.append(f"energy      {energy.get('mj_per_inference', 0):.2f} mJ/inference")
    if r.warnings:
        lines.append("")
        lines.append("quality warnings:")
        lines.extend(f"  [{w.code}] {w.message}" for w in r.warnings)
    return "\n".join(lines)
