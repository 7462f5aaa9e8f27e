"""``orinbench sensitivity``: which layers hurt INT8 accuracy most, measured, not guessed.

The quantizable nodes of the model (``Conv``, ``ConvTranspose``, ``MatMul``, ``Gemm`` by default)
are split into groups by their name scope (``backbone.stage1.conv`` and ``/backbone/stage1/Conv``
both have the scope ``backbone`` at depth 1). With one calibration shared by every variant:

1. the whole model is quantized and compared with the FP32 reference: the *full* loss;
2. for each group, a model with *only that group* quantized is compared: the loss the group
   causes on its own (``only``);
3. for each group, a model with everything *but that group* quantized is compared: how much
   keeping it in float recovers (``gain = full - kept_float``);
4. groups are ranked by ``gain`` (then ``only``) and added to a float set in that order, each
   step measured, until the loss meets the budget (it must, at the latest when every group is
   float); then each group of the set, the last added first, is tried back in INT8 and left
   there if the budget still holds. The float set is the suggested ``--exclude`` list.

Errors do not add up linearly across layers (one layer's error can cancel another's), which is
why every step of the search is measured instead of being predicted from the single-group
numbers.

The loss is :meth:`AccuracyReport.loss` (``rel_l2``: worst relative L2 error of any output on any
sample, by default), so the budget reads like the deployment plan's "under 3 % against FP32".
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from ..calib.dataset import CalibrationDataset, open_dataset
from ..calib.specs import io_specs
from ..errors import UsageError
from ..model.load import load_model
from ..precision.qdq import (
    DEFAULT_OP_TYPES,
    DEFAULT_PERCENTILE,
    METHODS,
    calibrate_ranges,
    preprocess,
    quantizable_nodes,
    quantize_qdq,
    supports_precomputed_ranges,
)
from .compare import (
    LOSS_METRICS,
    WORST,
    AccuracyReport,
    compare_with_reference,
    reference_outputs,
)
from .metrics import DEFAULT_TOPK

#: with no explicit depth, scopes are made coarse enough to give at most this many groups
DEFAULT_MAX_GROUPS = 24
#: default accuracy budget: 3 % relative L2 error against FP32 (the deployment plan's limit)
DEFAULT_BUDGET = 0.03

Log = Callable[[str], None]


def scope_of(name: str, depth: int) -> str:
    """The first ``depth`` components of a node name split on ``/`` and ``.``."""
    parts = [p for p in re.split(r"[/.]", name) if p]
    if len(parts) <= depth:
        return name
    sep = "/" if "/" in name else "."
    lead = "/" if name.startswith("/") else ""
    return lead + sep.join(parts[:depth])


def group_nodes(names: Sequence[str], depth: int | None) -> dict[str, list[str]]:
    """Group node names by scope (``depth`` None: one group per node), in graph order."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(n if depth is None else scope_of(n, depth), []).append(n)
    return groups


def auto_depth(names: Sequence[str], max_groups: int = DEFAULT_MAX_GROUPS) -> int | None:
    """None (node by node) when that is few enough groups, else the finest scope depth that is."""
    if len(names) <= max_groups:
        return None
    deepest = max((len([p for p in re.split(r"[/.]", n) if p]) for n in names), default=1)
    for depth in range(deepest, 0, -1):
        if len(group_nodes(names, depth)) <= max_groups:
            return depth
    return 1


@dataclass(frozen=True)
class GroupSensitivity:
    """The measured effect of one group of nodes."""

    group: str
    nodes: tuple[str, ...]
    only: float | None
    kept_float: float | None
    full: float

    @property
    def gain(self) -> float | None:
        return None if self.kept_float is None else self.full - self.kept_float

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "nodes": list(self.nodes),
            "loss_only_this_int8": self.only,
            "loss_this_kept_float": self.kept_float,
            "gain_if_kept_float": self.gain,
        }


@dataclass(frozen=True)
class Step:
    """One measured step of the exclusion search: a group put in float ("add") or tried back
    in INT8 ("remove"), the loss measured, and whether the step was kept."""

    action: str
    group: str
    loss: float
    accepted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "group": self.group,
            "loss": self.loss,
            "accepted": self.accepted,
        }


def _search(
    ranked: Sequence[GroupSensitivity],
    groups: dict[str, list[str]],
    full: float,
    budget: float,
    measure: Callable[..., float],
    max_steps: int | None,
    say: Log,
    metric: str,
) -> tuple[list[str], float, list[Step]]:
    """Forward: add groups in rank order until the budget holds. Backward: drop the ones the
    budget does not need. At most ``max_steps`` measurements in all."""
    budget_left = len(ranked) * 2 if max_steps is None else max(0, max_steps)
    steps: list[Step] = []
    excluded: list[str] = []
    loss = full

    def nodes(names: Sequence[str]) -> list[str]:
        return [n for name in names for n in groups[name]]

    for g in ranked:
        if loss <= budget or budget_left == 0:
            break
        excluded.append(g.group)
        loss = measure(exclude=nodes(excluded))
        budget_left -= 1
        steps.append(Step("add", g.group, loss, True))
        say(f"keep {g.group} in float: {metric} loss {loss:.5f}")
    if loss <= budget:
        for name in reversed(excluded[:-1]):
            if budget_left == 0:
                break
            trial = [e for e in excluded if e != name]
            value = measure(exclude=nodes(trial))
            budget_left -= 1
            ok = value <= budget
            steps.append(Step("remove", name, value, ok))
            say(f"try {name} in INT8 again: {metric} loss {value:.5f} ({'ok' if ok else 'no'})")
            if ok:
                excluded, loss = trial, value
    return excluded, loss, steps


@dataclass(frozen=True)
class SensitivityReport:
    """Groups ranked most harmful first, and an ``--exclude`` suggestion that meets the budget."""

    model: str
    metric: str
    budget: float
    method: str
    sample_count: int
    full_loss: float
    groups: tuple[GroupSensitivity, ...]
    suggested_exclude: tuple[str, ...]
    suggested_loss: float
    met: bool
    steps: tuple[Step, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metric": self.metric,
            "budget": self.budget,
            "method": self.method,
            "sample_count": self.sample_count,
            "full_int8_loss": self.full_loss,
            "ranking": [g.to_dict() for g in self.groups],
            "suggested_exclude": list(self.suggested_exclude),
            "suggested_loss": self.suggested_loss,
            "budget_met": self.met,
            "search_steps": [step.to_dict() for step in self.steps],
        }


def _rank_key(g: GroupSensitivity) -> tuple[float, float, str]:
    """Most harmful first: by the loss keeping the group in float recovers (what an exclusion
    buys), then by the loss the group causes alone."""
    gain = -(g.gain if g.gain is not None else 0.0)
    only = -(g.only if g.only is not None else 0.0)
    return (gain, only, g.group)


def analyze_sensitivity(
    model_path: str | os.PathLike[str],
    *,
    data: CalibrationDataset | str | os.PathLike[str],
    method: str = "entropy",
    budget: float = DEFAULT_BUDGET,
    metric: str = "rel_l2",
    group_depth: int | None = None,
    max_groups: int = DEFAULT_MAX_GROUPS,
    op_types: Sequence[str] = DEFAULT_OP_TYPES,
    modes: Sequence[str] = ("only", "float"),
    per_channel: bool = True,
    max_samples: int | None = None,
    max_steps: int | None = None,
    percentile: float = DEFAULT_PERCENTILE,
    heatmaps: Sequence[str] | None = None,
    topk: int = DEFAULT_TOPK,
    threads: int | None = None,
    log: Log | None = None,
    providers: Sequence[str] | None = None,
) -> SensitivityReport:
    """Measure each node group's INT8 sensitivity and suggest float exclusions for ``budget``.

    ``modes`` picks the measurements per group: ``"only"`` (quantize that group alone) and/or
    ``"float"`` (quantize all but that group). ``group_depth`` None chooses the depth that gives at
    most ``max_groups`` groups. ``max_steps`` bounds the measurements of the exclusion search
    (default: twice the number of groups).
    Every number in the report comes from quantizing with ONNX Runtime and running the result on
    the samples.
    """
    if method not in METHODS:
        raise UsageError(f"unknown method '{method}'", fix=f"use one of {', '.join(METHODS)}")
    if metric not in LOSS_METRICS:
        raise UsageError(f"unknown metric '{metric}'", fix=f"use one of {', '.join(LOSS_METRICS)}")
    if not budget >= 0 or budget == float("inf"):  # NaN fails the comparison
        raise UsageError(f"budget {budget} is not a loss >= 0", fix="pass e.g. 0.03")
    bad_modes = [m for m in modes if m not in ("only", "float")]
    if bad_modes or not modes:
        raise UsageError(
            f"unknown mode '{bad_modes[0] if bad_modes else ''}'", fix="use only, float"
        )
    say = log or (lambda _msg: None)
    src = Path(model_path)
    inputs, _ = io_specs(load_model(src, load_external_data=False))
    dataset = open_dataset(data, inputs=inputs, max_samples=max_samples)
    say(f"{dataset.count} samples from {dataset.source}")
    refs, ref_specs = reference_outputs(src, dataset, threads=threads, providers=providers)

    with tempfile.TemporaryDirectory(prefix="orinbench-sens-") as tmp:
        work = Path(tmp)
        prepared = preprocess(src, work / "prepared.onnx")
        names = quantizable_nodes(onnx.load(str(prepared)), op_types)
        if not names:
            raise UsageError(
                f"{src} has no nodes of the quantized op types ({', '.join(op_types)})",
                fix="pass --op-types with the op types the model uses",
            )
        depth = group_depth if group_depth is not None else auto_depth(names, max_groups)
        groups = group_nodes(names, depth)
        ranges = None
        if supports_precomputed_ranges():  # one calibration for every variant
            ranges = calibrate_ranges(
                prepared,
                dataset=dataset,
                method=method,
                op_types=op_types,
                percentile=percentile,
            )
        counter = iter(range(1_000_000))

        def measure(*, exclude: Sequence[str] = (), only: Sequence[str] | None = None) -> float:
            out = work / f"q{next(counter)}.onnx"
            quantize_qdq(
                prepared,
                data=dataset,
                out_path=out,
                method=method,
                per_channel=per_channel,
                exclude_nodes=exclude,
                op_types=op_types,
                only_nodes=only,
                percentile=percentile,
                preprocess_model=False,
                tensor_ranges=ranges,
                allow_empty=True,  # excluding every node is a point the search measures
            )
            report: AccuracyReport = compare_with_reference(
                out,
                dataset=dataset,
                reference=refs,
                reference_specs=ref_specs,
                heatmaps=heatmaps,
                topk=topk,
                threads=threads,
                providers=providers,
                reference_name=str(src),
            )
            out.unlink()
            loss = report.loss(metric)
            return loss if loss == loss else WORST  # NaN -> worst

        full = measure()
        say(f"all {len(names)} nodes INT8: {metric} loss {full:.5f} (budget {budget:g})")
        results: list[GroupSensitivity] = []
        for i, (gname, gnodes) in enumerate(groups.items(), start=1):
            only = measure(only=gnodes) if "only" in modes else None
            kept = measure(exclude=gnodes) if "float" in modes else None
            results.append(GroupSensitivity(gname, tuple(gnodes), only, kept, full))
            shown = " ".join(
                f"{label} {v:.5f}"
                for label, v in (("only", only), ("float", kept))
                if v is not None
            )
            say(f"[{i}/{len(groups)}] {gname} ({len(gnodes)} nodes): {shown}")
        ranked = tuple(sorted(results, key=_rank_key))

        excluded, loss, steps = _search(
            ranked, groups, full, budget, measure, max_steps, say, metric
        )
        suggested = tuple(n for name in excluded for n in groups[name])

    return SensitivityReport(
        model=str(src),
        metric=metric,
        budget=budget,
        method=method,
        sample_count=dataset.count,
        full_loss=full,
        groups=ranked,
        suggested_exclude=suggested,
        suggested_loss=loss,
        met=loss <= budget,
        steps=tuple(steps),
    )
