"""Pipeline recipes: a model as deployed, as ordered stages in a TOML file (docs/pipelines.md).

::

    [pipeline]
    name = "bevfusion-camera"
    precision = "fp16"                      # default of every stage

    [inputs]                                # optional: pin a frame input's shape or dtype
    images = { shape = [1, 6, 3, 256, 704], dtype = "float32" }

    [[stages]]
    name = "camera_backbone"
    model = "zoo:bevfusion-camera/camera_backbone"   # or onnx = "models/backbone.onnx"
    precision = "int8"
    calib_cache = "calib/backbone.cache"
    calib_data = "calib/frames"
    inputs = { images = "input.images" }    # model input -> "input.NAME" or "STAGE.OUTPUT"

    [[stages]]
    name = "bev_pool"
    callable = "orinbench.pipeline.custom_steps:bev_pool"   # or "steps.py:bev_pool"
    inputs = { feats = "vtransform.feats" }
    outputs = ["bev"]
    args = { grid = [128, 128] }

    [outputs]                               # optional; default: every output no stage consumes
    boxes = "head_bbox.boxes"

    [targets]                               # the gate's targets syntax
    "latency.p99_ms" = "< 80"
    "stages.camera_backbone.latency.p99_ms" = "< 30"

Parsing checks everything that needs no model file: keys, types, stage names, references to
stages, and target names. Errors are :class:`~orinbench.errors.RecipeError` (exit code 2), one line
naming the recipe, the stage and the key. Wiring against the models' tensors is checked in
:mod:`orinbench.pipeline.graph`.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import require_file
from ..errors import InputFileError, RecipeError, TargetsError
from ..gate.targets import Target, Targets, parse_target, parse_tolerance

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: precisions a stage may ask for ("best": TensorRT picks per layer among FP32, FP16 and INT8)
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8", "best")
#: the prefix of a model reference resolved by the zoo
ZOO_PREFIX = "zoo:"
#: the pseudo-stage that frame inputs come from: ``"input.images"``
FRAME = "input"
#: top-level tables of a recipe
TOP_KEYS: tuple[str, ...] = ("pipeline", "inputs", "stages", "outputs", "targets", "tolerance")
PIPELINE_KEYS: tuple[str, ...] = ("name", "description", "precision")
#: keys every stage may have, and those of ONNX / custom stages only
COMMON_STAGE_KEYS: tuple[str, ...] = ("name", "inputs", "onnx", "model", "callable")
ONNX_STAGE_KEYS: tuple[str, ...] = (
    "precision", "calib_cache", "calib_data", "plugins", "build", "shapes",
)  # fmt: skip
CUSTOM_STAGE_KEYS: tuple[str, ...] = ("outputs", "args", "on_device")
INPUT_KEYS: tuple[str, ...] = ("shape", "dtype")
#: keys of a stage's ``build`` table: the TensorRT builder's options
#: (:class:`~orinbench.backends.tensorrt.BuildOptions`) that have no stage key of their own
BUILD_KEYS: tuple[str, ...] = (
    "workspace_mib", "timing_cache", "dla_core", "gpu_fallback", "opt_level", "sparsity",
    "strongly_typed", "calib_batch", "verbose_log",
)  # fmt: skip

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_DTYPES = ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")


@dataclass(frozen=True)
class Ref:
    """Where a tensor comes from: ``stage`` None for a frame input, else a stage's output."""

    stage: str | None
    tensor: str

    def __str__(self) -> str:
        return f"{self.stage or FRAME}.{self.tensor}"

    @classmethod
    def parse(cls, text: str) -> Ref:
        """``"input.images"`` -> Ref(None, "images"); ``"fuser.bev"`` -> Ref("fuser", "bev").

        Stage names hold no dot, so the first dot splits: tensor names may contain dots.
        """
        stage, dot, tensor = text.partition(".")
        if not dot or not stage or not tensor:
            raise ValueError(text)
        return cls(None if stage == FRAME else stage, tensor)


@dataclass(frozen=True)
class FrameInput:
    """A frame input pinned in ``[inputs]``; None where the consuming models decide."""

    name: str
    shape: tuple[int, ...] | None = None
    dtype: str | None = None


@dataclass(frozen=True)
class StageSpec:
    """One stage as written. Paths are absolute (relative ones are taken from the recipe's folder).

    ``kind`` is ``"onnx"`` (``onnx`` or ``model`` given) or ``"custom"`` (``callable`` given).
    ``inputs`` is the explicit wiring (model input -> :class:`Ref`); inputs not listed there are
    matched by name (docs/pipelines.md).
    """

    name: str
    kind: str
    onnx: Path | None = None
    model: str | None = None
    callable: str | None = None
    inputs: Mapping[str, Ref] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    precision: str = "fp32"
    calib_cache: Path | None = None
    calib_data: Path | None = None
    plugins: tuple[Path, ...] = ()
    build: Mapping[str, Any] = field(default_factory=dict)
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    args: Mapping[str, Any] = field(default_factory=dict)
    on_device: bool = False

    @property
    def source(self) -> str:
        """What the stage runs, as written: a path, a zoo reference or a callable."""
        if self.kind == "custom":
            return str(self.callable)
        return self.model if self.model is not None else str(self.onnx)

    @property
    def zoo(self) -> tuple[str, str] | None:
        """``(model, stage)`` of a ``zoo:MODEL/STAGE`` reference, else None."""
        if self.model is None:
            return None
        name, _, stage = self.model[len(ZOO_PREFIX) :].partition("/")
        return name, stage


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe. ``stages`` keep the written order; the run order is the graph's."""

    name: str
    source: str
    base_dir: Path
    sha256: str
    stages: tuple[StageSpec, ...]
    inputs: Mapping[str, FrameInput] = field(default_factory=dict)
    outputs: Mapping[str, Ref] = field(default_factory=dict)
    targets: Targets | None = None
    description: str = ""
    precision: str = "fp32"

    def stage(self, name: str) -> StageSpec:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    @property
    def uses_zoo(self) -> bool:
        return any(s.zoo is not None for s in self.stages)


# ------------------------------------------------------------------------------------------------


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read and validate a recipe file. Raises RecipeError (exit 2) naming the stage and key."""
    p = require_file(path, what="recipe")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{p} is not a UTF-8 text file", fix="save it as UTF-8 TOML") from exc
    return parse_recipe(text, source=str(p), base_dir=p.resolve().parent)


def parse_recipe(
    text: str, *, source: str = "<recipe>", base_dir: str | os.PathLike[str] = "."
) -> Recipe:
    """Parse the TOML text of a recipe (see the module docstring for the format)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(
            f"{source} is not valid TOML", why=str(exc), fix="check the line it names"
        ) from exc
    return _Parser(source, Path(base_dir), hashlib.sha256(text.encode()).hexdigest()).recipe(doc)


class _Parser:
    def __init__(self, source: str, base_dir: Path, sha256: str) -> None:
        self.source = source
        self.base_dir = base_dir
        self.sha256 = sha256

    # -- errors ------------------------------------------------------------------------------
    def fail(self, what: str, *, why: str | None = None, fix: str | None = None) -> RecipeError:
        return RecipeError(f"{self.source}: {what}", why=why, fix=fix)

    def unknown_keys(self, table: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1)
                hint = (
                    f"did you mean '{close[0]}'?"
                    if close
                    else ("allowed keys: " + ", ".join(allowed))
                )
                raise self.fail(f"{where}: unknown key '{key}'", fix=hint)

    # -- top level ---------------------------------------------------------------------------
    def recipe(self, doc: Mapping[str, Any]) -> Recipe:
        self.unknown_keys(doc, TOP_KEYS, "top level")
        head = self.table(doc, "pipeline", "[pipeline]")
        self.unknown_keys(head, PIPELINE_KEYS, "[pipeline]")
        name = self.string(head, "name", "[pipeline]", default=Path(self.source).stem)
        description = self.string(head, "description", "[pipeline]", default="")
        precision = self.precision(head.get("precision", "fp32"), "[pipeline]: key 'precision'")

        raw_stages = doc.get("stages")
        if raw_stages is None:
            raise self.fail(
                "no stages", fix="add at least one [[stages]] table with a name and an onnx file"
            )
        if not isinstance(raw_stages, list) or not all(isinstance(s, dict) for s in raw_stages):
            raise self.fail("'stages' must be an array of tables", fix="write each as [[stages]]")
        if not raw_stages:
            raise self.fail("no stages", fix="add at least one [[stages]] table")
        stages: list[StageSpec] = []
        seen: set[str] = set()
        for i, raw in enumerate(raw_stages):
            stage = self.stage(raw, i, precision)
            if stage.name in seen:
                raise self.fail(
                    f"stage '{stage.name}' is defined twice", fix="give every stage its own name"
                )
            seen.add(stage.name)
            stages.append(stage)
        names = [s.name for s in stages]
        for stage in stages:
            for key, ref in stage.inputs.items():
                self.check_ref(ref, names, f"stage '{stage.name}': inputs.{key}")

        frame = self.frame_inputs(self.table(doc, "inputs", "[inputs]"))
        outputs: dict[str, Ref] = {}
        for key, value in self.table(doc, "outputs", "[outputs]").items():
            ref = self.ref(value, f"[outputs]: key '{key}'")
            if ref.stage is None:
                raise self.fail(
                    f"[outputs]: key '{key}' names a frame input ({value})",
                    fix="a pipeline output must be a stage's output, STAGE.OUTPUT",
                )
            self.check_ref(ref, names, f"[outputs]: key '{key}'")
            outputs[key] = ref
        targets = self.targets(doc, names)
        return Recipe(
            name=name,
            source=self.source,
            base_dir=self.base_dir,
            sha256=self.sha256,
            stages=tuple(stages),
            inputs=frame,
            outputs=outputs,
            targets=targets,
            description=description,
            precision=precision,
        )

    # -- stages ------------------------------------------------------------------------------
    def stage(self, raw: Mapping[str, Any], index: int, default_precision: str) -> StageSpec:
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise self.fail(
                f"stage #{index + 1} has no name",
                fix='give it name = "backbone" (letters, digits, _ -)',
            )
        where = f"stage '{name}'"
        if not _NAME_RE.match(name) or name == FRAME:
            raise self.fail(
                f"{where}: key 'name' is not a valid stage name",
                why="stage names appear in metric names and in STAGE.OUTPUT references"
                + (f"; '{FRAME}' is reserved for frame inputs" if name == FRAME else ""),
                fix="use letters, digits, '_' and '-' only, starting with a letter",
            )
        sources = [k for k in ("onnx", "model", "callable") if k in raw]
        if len(sources) != 1:
            found = " and ".join(f"'{k}'" for k in sources) if sources else "none"
            raise self.fail(
                f"{where}: give exactly one of 'onnx', 'model' or 'callable' (found {found})",
                fix='onnx = "path/to/model.onnx", model = "zoo:NAME/STAGE", or '
                'callable = "package.module:function"',
            )
        kind = "custom" if sources[0] == "callable" else "onnx"
        allowed = COMMON_STAGE_KEYS + (CUSTOM_STAGE_KEYS if kind == "custom" else ONNX_STAGE_KEYS)
        for key in raw:
            if key not in allowed and key in (CUSTOM_STAGE_KEYS + ONNX_STAGE_KEYS):
                other = "ONNX" if kind == "custom" else "custom (callable)"
                raise self.fail(
                    f"{where}: key '{key}' applies to {other} stages only",
                    fix=f"remove '{key}' from this stage",
                )
        self.unknown_keys(raw, allowed, where)

        inputs: dict[str, Ref] = {}
        for key, value in self.table(raw, "inputs", f"{where}: key 'inputs'").items():
            inputs[key] = self.ref(value, f"{where}: inputs.{key}")

        if kind == "custom":
            spec = str(self.string(raw, "callable", where))
            self.callable_ref(spec, where)
            outs = raw.get("outputs")
            if (
                not isinstance(outs, list)
                or not outs
                or not all(isinstance(o, str) and o for o in outs)
            ):
                raise self.fail(
                    f"{where}: key 'outputs' must list the names the callable returns",
                    fix='e.g. outputs = ["bev"]',
                )
            if len(set(outs)) != len(outs):
                raise self.fail(f"{where}: key 'outputs' names an output twice")
            if not inputs:
                raise self.fail(
                    f"{where}: key 'inputs' is missing",
                    why="a callable's inputs must be wired explicitly",
                    fix='e.g. inputs = { feats = "backbone.feats" }',
                )
            args = self.table(raw, "args", f"{where}: key 'args'")
            on_device = raw.get("on_device", False)
            if not isinstance(on_device, bool):
                raise self.fail(f"{where}: key 'on_device' must be true or false")
            return StageSpec(
                name=name,
                kind=kind,
                callable=spec,
                inputs=inputs,
                outputs=tuple(outs),
                args=dict(args),
                on_device=on_device,
                precision="fp32",
            )

        onnx_path: Path | None = None
        model: str | None = None
        if "onnx" in raw:
            onnx_path = self.path(raw, "onnx", where)
        else:
            model = str(self.string(raw, "model", where))
            zoo_name, _, zoo_stage = model[len(ZOO_PREFIX) :].partition("/")
            if not model.startswith(ZOO_PREFIX) or not zoo_name or not zoo_stage:
                raise self.fail(
                    f"{where}: key 'model' is {model!r}, not a zoo reference",
                    fix='write model = "zoo:NAME/STAGE" (see orinbench zoo list), or use '
                    'onnx = "path/to/file.onnx"',
                )
        precision = self.precision(
            raw.get("precision", default_precision), f"{where}: key 'precision'"
        )
        plugins = raw.get("plugins", [])
        if not isinstance(plugins, list) or not all(isinstance(x, str) for x in plugins):
            raise self.fail(f"{where}: key 'plugins' must be a list of library paths")
        shapes: dict[str, tuple[int, ...]] = {}
        for key, dims in self.table(raw, "shapes", f"{where}: key 'shapes'").items():
            shapes[key] = self.dims(dims, f"{where}: shapes.{key}")
        calib_cache = self.path(raw, "calib_cache", where) if "calib_cache" in raw else None
        calib_data = self.path(raw, "calib_data", where) if "calib_data" in raw else None
        if calib_data is not None and precision not in ("int8", "best"):
            raise self.fail(
                f"{where}: key 'calib_data' is given but the precision is {precision}",
                fix='calibration applies to precision = "int8" (or "best"); remove calib_data',
            )
        return StageSpec(
            name=name,
            kind=kind,
            onnx=onnx_path,
            model=model,
            inputs=inputs,
            precision=precision,
            calib_cache=calib_cache,
            calib_data=calib_data,
            plugins=tuple(self.resolve(p) for p in plugins),
            build=self.build(raw, where),
            shapes=shapes,
        )

    # -- pieces ------------------------------------------------------------------------------
    def build(self, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
        table = self.table(raw, "build", f"{where}: key 'build'")
        self.unknown_keys(table, BUILD_KEYS, f"{where}: build")
        return dict(table)

    def table(self, doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(f"{where} must be a table", fix=f"write it as {key} = {{ ... }}")
        return value

    def string(
        self, doc: Mapping[str, Any], key: str, where: str, *, default: str | None = None
    ) -> str:
        value = doc.get(key, default)
        if not isinstance(value, str) or (default is None and not value):
            raise self.fail(f"{where}: key '{key}' must be a non-empty string")
        return value

    def precision(self, value: Any, where: str) -> str:
        if value not in PRECISIONS:
            raise self.fail(f"{where} is {value!r}", fix=f"use one of {', '.join(PRECISIONS)}")
        return str(value)

    def resolve(self, text: str) -> Path:
        p = Path(os.path.expanduser(text))
        return p if p.is_absolute() else (self.base_dir / p)

    def path(self, doc: Mapping[str, Any], key: str, where: str) -> Path:
        return self.resolve(self.string(doc, key, where))

    def ref(self, value: Any, where: str) -> Ref:
        if not isinstance(value, str):
            raise self.fail(f'{where} must be a string such as "input.images" or "backbone.feats"')
        try:
            return Ref.parse(value)
        except ValueError:
            raise self.fail(
                f"{where} is {value!r}, not a tensor reference",
                fix=f'write "{FRAME}.NAME" for a frame input or "STAGE.OUTPUT" for a stage output',
            ) from None

    def check_ref(self, ref: Ref, names: Sequence[str], where: str) -> None:
        if ref.stage is not None and ref.stage not in names:
            close = difflib.get_close_matches(ref.stage, list(names), n=1)
            raise self.fail(
                f"{where} comes from '{ref}', but there is no stage '{ref.stage}'",
                fix=f"did you mean '{close[0]}'?" if close else f"stages are {', '.join(names)}",
            )

    def dims(self, value: Any, where: str) -> tuple[int, ...]:
        if not isinstance(value, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
        ):
            raise self.fail(
                f"{where} must be a list of non-negative integers, e.g. [1, 3, 224, 224]"
            )
        return tuple(value)

    def callable_ref(self, spec: str, where: str) -> None:
        target, colon, func = spec.rpartition(":")
        if not colon or not target or not func.isidentifier():
            raise self.fail(
                f"{where}: key 'callable' is {spec!r}",
                fix='write "package.module:function" or "path/to/file.py:function"',
            )

    def frame_inputs(self, table: Mapping[str, Any]) -> dict[str, FrameInput]:
        out: dict[str, FrameInput] = {}
        for name, raw in table.items():
            where = f"[inputs]: '{name}'"
            if not isinstance(raw, dict):
                raise self.fail(
                    f"{where} must be a table", fix=f"write {name} = {{ shape = [1, 3, 224, 224] }}"
                )
            self.unknown_keys(raw, INPUT_KEYS, where)
            shape = self.dims(raw["shape"], f"{where}: key 'shape'") if "shape" in raw else None
            dtype = raw.get("dtype")
            if dtype is not None and dtype not in _DTYPES:
                raise self.fail(
                    f"{where}: key 'dtype' is {dtype!r}", fix=f"use one of {', '.join(_DTYPES)}"
                )
            out[name] = FrameInput(name=name, shape=shape, dtype=dtype)
        return out

    def targets(self, doc: Mapping[str, Any], names: Sequence[str]) -> Targets | None:
        raw_targets: dict[str, Any] = {}
        raw_tols: dict[str, Any] = {}
        _flatten(self.table(doc, "targets", "[targets]"), "", raw_targets)
        _flatten(self.table(doc, "tolerance", "[tolerance]"), "", raw_tols)
        if not raw_targets and not raw_tols:
            return None
        targets: list[Target] = []
        try:
            for metric, value in raw_targets.items():
                targets.append(parse_target(metric, value, source=self.source))
            tols = {m: parse_tolerance(v, key=m, source=self.source) for m, v in raw_tols.items()}
        except TargetsError as exc:
            raise RecipeError(exc.what, why=exc.why, fix=exc.fix) from exc
        for metric in [*raw_targets, *raw_tols]:
            if metric.startswith("stages."):
                stage = metric.split(".")[1] if metric.count(".") >= 2 else ""
                if stage not in names:
                    close = difflib.get_close_matches(stage, list(names), n=1)
                    raise self.fail(
                        f"[targets]: '{metric}' names stage '{stage}', which the recipe lacks",
                        fix=f"did you mean 'stages.{close[0]}.…'?"
                        if close
                        else f"stages are {', '.join(names)}",
                    )
        return Targets(targets=tuple(targets), tolerances=tols, source=self.source)


def _flatten(table: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    # An unquoted dotted key ("stages.backbone.latency.p99_ms" without quotes) is a nested table in
    # TOML: flatten it back to the dotted metric name, as the targets file parser does.
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", out)
        else:
            out[name] = value
