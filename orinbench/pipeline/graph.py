"""Wiring a recipe's stages together: which tensor feeds each input, the run order, the checks.

Each stage input comes from, in this order of precedence:

1. the stage's ``inputs`` table (``"input.NAME"`` or ``"STAGE.OUTPUT"``);
2. the output of the same name of another stage, when exactly one stage has it;
3. a frame input of the same name (declared in ``[inputs]`` or not).

The run order is the written order, except that a stage runs after every stage it reads from
(a stable topological sort); a cycle is an error that lists it. Shapes and dtypes are compared
wherever both sides declare them: a static dim that differs, a rank that differs, or a dtype that
differs is an error naming both stages. Checks that need concrete shapes of dynamic models or of
custom stages run again when the pipeline is set up (:mod:`orinbench.pipeline.executor`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import RecipeError
from ..model.shapes import UNKNOWN_RANK, format_shape
from ..results.schema import TensorSpec
from .models import StageIO
from .recipe import FRAME, Recipe, Ref


@dataclass(frozen=True)
class PipelineGraph:
    """The resolved wiring. ``sources[stage][input]`` is where that input comes from."""

    order: tuple[str, ...]
    sources: Mapping[str, Mapping[str, Ref]]
    frame_inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, Ref]

    def consumers(self, ref: Ref) -> list[tuple[str, str]]:
        """``(stage, input)`` pairs that read ``ref``, in run order."""
        return [
            (stage, name)
            for stage in self.order
            for name, src in self.sources[stage].items()
            if src == ref
        ]


def resolve_graph(
    recipe: Recipe,
    io: Mapping[str, StageIO],
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
    data_shapes: Mapping[str, Sequence[int]] | None = None,
) -> PipelineGraph:
    """Resolve and check the wiring of ``recipe`` given each stage's IO.

    ``shapes`` overrides frame input shapes (``--shape``). ``data_shapes`` (the arrays of an
    ``--inputs`` file) fills a frame input's shape where neither ``--shape`` nor the recipe
    fixes it, as ``bench --inputs`` takes its shapes from the data; names that are no frame
    input are left to the data loader to report. Raises RecipeError naming the stage
    and the input for every problem: an input with no source, a reference to an output that the
    stage does not produce, an ambiguous match, a cycle, a shape or dtype mismatch.
    """
    src = recipe.source
    producers: dict[str, list[str]] = {}
    for stage in recipe.stages:
        for t in io[stage.name].outputs:
            producers.setdefault(t.name, []).append(stage.name)

    sources: dict[str, dict[str, Ref]] = {}
    for stage in recipe.stages:
        sio = io[stage.name]
        names = [t.name for t in sio.inputs]
        for key in stage.inputs:
            if key not in names:
                raise RecipeError(
                    f"{src}: stage '{stage.name}': inputs.{key}: the model has no input '{key}'",
                    fix=f"its inputs are {', '.join(names) or 'none'}",
                )
        wired: dict[str, Ref] = {}
        for name in names:
            ref = stage.inputs.get(name)
            if ref is None:
                found = [p for p in producers.get(name, []) if p != stage.name]
                if len(found) > 1:
                    raise RecipeError(
                        f"{src}: stage '{stage.name}': input '{name}' matches outputs of several "
                        f"stages ({', '.join(found)})",
                        fix=f'wire it explicitly: inputs = {{ {name} = "{found[0]}.{name}" }}',
                    )
                ref = Ref(found[0], name) if found else Ref(None, name)
            elif ref.stage is not None:
                produced = io[ref.stage].outputs
                if not any(t.name == ref.tensor for t in produced):
                    raise RecipeError(
                        f"{src}: stage '{stage.name}': inputs.{name} comes from '{ref}', but stage "
                        f"'{ref.stage}' produces no output '{ref.tensor}'",
                        fix=f"its outputs are {', '.join(t.name for t in produced) or 'none'}",
                    )
            wired[name] = ref
        sources[stage.name] = wired

    order = _order(recipe, sources)
    frame = _frame_inputs(recipe, io, sources, shapes or {}, data_shapes or {})
    outputs = _outputs(recipe, io, sources, order)
    graph = PipelineGraph(order=order, sources=sources, frame_inputs=frame, outputs=outputs)
    _check_connections(recipe, io, graph)
    return graph


def _order(recipe: Recipe, sources: Mapping[str, Mapping[str, Ref]]) -> tuple[str, ...]:
    written = [s.name for s in recipe.stages]
    deps = {
        name: {r.stage for r in sources[name].values() if r.stage is not None} for name in written
    }
    for name, d in deps.items():
        if name in d:
            raise RecipeError(
                f"{recipe.source}: stage '{name}' reads its own output",
                why=f"the stages form a cycle: {name} -> {name}",
                fix="a stage's inputs must come from frame inputs or from other stages",
            )
    done: list[str] = []
    remaining = list(written)
    while remaining:
        # the first stage, in written order, whose dependencies have all run: a stable sort
        ready = next((n for n in remaining if deps[n] <= set(done)), None)
        if ready is None:
            cycle = _find_cycle(remaining, deps)
            raise RecipeError(
                f"{recipe.source}: stage '{cycle[0]}' depends on itself through other stages",
                why="the stages form a cycle: " + " -> ".join(cycle),
                fix="break the cycle: every stage must read only frame inputs and earlier stages",
            )
        done.append(ready)
        remaining.remove(ready)
    return tuple(done)


def _find_cycle(nodes: Sequence[str], deps: Mapping[str, set[str]]) -> list[str]:
    # Every remaining node depends on some remaining node, so walking dependencies must revisit
    # a node: the walk from that node back to itself is a cycle (reported in data-flow order).
    pending = set(nodes)
    path: list[str] = [nodes[0]]
    while True:
        nxt = next(d for d in sorted(deps[path[-1]]) if d in pending)
        if nxt in path:
            loop = [*path[path.index(nxt) :], nxt]
            return list(reversed(loop))
        path.append(nxt)


def _frame_inputs(
    recipe: Recipe,
    io: Mapping[str, StageIO],
    sources: Mapping[str, Mapping[str, Ref]],
    overrides: Mapping[str, Sequence[int]],
    data_shapes: Mapping[str, Sequence[int]],
) -> dict[str, TensorSpec]:
    src = recipe.source
    used: dict[str, list[tuple[str, TensorSpec]]] = {}
    for stage in recipe.stages:
        for name, ref in sources[stage.name].items():
            if ref.stage is None:
                spec = io[stage.name].input(name)
                assert spec is not None
                used.setdefault(ref.tensor, []).append((stage.name, spec))
    for name in overrides:
        if name not in used:
            raise RecipeError(
                f"--shape names '{name}', which is not a frame input of {recipe.name}",
                fix=f"frame inputs are {', '.join(used) or 'none'}",
            )
    for name in recipe.inputs:
        if name not in used:
            raise RecipeError(
                f"{src}: [inputs]: '{name}' is not read by any stage",
                fix=f'remove it, or wire it with inputs = {{ MODEL_INPUT = "{FRAME}.{name}" }}',
            )
    out: dict[str, TensorSpec] = {}
    for name, readers in used.items():
        declared = recipe.inputs.get(name)
        shape: tuple[int | str, ...] | None = None
        dtype: str | None = None
        if name in overrides:
            shape = tuple(int(d) for d in overrides[name])
        elif declared is not None and declared.shape is not None:
            shape = declared.shape
        if name in data_shapes and (shape is None or any(not isinstance(d, int) for d in shape)):
            shape = tuple(int(d) for d in data_shapes[name])
        if declared is not None and declared.dtype is not None:
            dtype = declared.dtype
        for reader, spec in readers:
            if dtype is None and spec.dtype != "?":
                dtype = spec.dtype
            elif spec.dtype not in ("?", dtype):
                origin = (
                    "as [inputs] declares it"
                    if declared is not None and declared.dtype is not None
                    else f"as stage '{readers[0][0]}' reads it"
                )
                raise RecipeError(
                    f"{src}: stage '{reader}': input '{spec.name}' is {spec.dtype} but frame input "
                    f"'{name}' is {dtype} ({origin})",
                    fix="feed it from a frame input of its own dtype",
                )
            merged = _merge_shape(shape, spec.shape)
            if merged is None:
                raise RecipeError(
                    f"{src}: stage '{reader}': input '{spec.name}' has shape "
                    f"{format_shape(spec.shape)}, which does not match frame input '{name}' "
                    f"({format_shape(shape or ())})",
                    fix="give each stage a frame input of its own shape",
                )
            shape = merged
        assert shape is not None
        if any(not isinstance(d, int) for d in shape):
            reader = readers[0][0]
            what = (
                "has no declared shape"
                if shape == (UNKNOWN_RANK,)
                else f"has dynamic dimensions {format_shape(shape)}"
            )
            raise RecipeError(
                f"{src}: frame input '{name}' (read by stage '{reader}') {what}",
                fix=f"pin it in the recipe: [inputs] {name} = {{ shape = [...] }}, pass "
                f"--shape {name}:DxDxD, or give --inputs a .npz holding '{name}'",
            )
        out[name] = TensorSpec(name=name, dtype=dtype or "float32", shape=shape)
    return out


def _merge_shape(
    a: tuple[int | str, ...] | None, b: tuple[int | str, ...]
) -> tuple[int | str, ...] | None:
    """Combine two declarations of one tensor's shape; None when they contradict."""
    if a is None or a == (UNKNOWN_RANK,):
        return b
    if b == (UNKNOWN_RANK,):
        return a
    if len(a) != len(b):
        return None
    out: list[int | str] = []
    for x, y in zip(a, b, strict=True):
        if isinstance(x, int) and isinstance(y, int):
            if x != y:
                return None
            out.append(x)
        else:
            out.append(x if isinstance(x, int) else y)
    return tuple(out)


def _outputs(
    recipe: Recipe,
    io: Mapping[str, StageIO],
    sources: Mapping[str, Mapping[str, Ref]],
    order: Sequence[str],
) -> dict[str, Ref]:
    if recipe.outputs:
        for key, ref in recipe.outputs.items():
            assert ref.stage is not None
            if io[ref.stage].output(ref.tensor) is None:
                raise RecipeError(
                    f"{recipe.source}: [outputs]: '{key}' comes from '{ref}', but stage "
                    f"'{ref.stage}' produces no output '{ref.tensor}'",
                    fix="its outputs are " + ", ".join(t.name for t in io[ref.stage].outputs),
                )
        return dict(recipe.outputs)
    consumed = {r for wired in sources.values() for r in wired.values()}
    out: dict[str, Ref] = {}
    for stage in order:
        for t in io[stage].outputs:
            ref = Ref(stage, t.name)
            if ref not in consumed:
                key = t.name if t.name not in out else f"{stage}.{t.name}"
                out[key] = ref
    return out


def _check_connections(recipe: Recipe, io: Mapping[str, StageIO], graph: PipelineGraph) -> None:
    for stage in graph.order:
        for name, ref in graph.sources[stage].items():
            if ref.stage is None:
                continue
            produced = io[ref.stage].output(ref.tensor)
            consumed = io[stage].input(name)
            assert produced is not None and consumed is not None
            check_pair(recipe.source, stage, consumed, ref, produced)


def check_pair(
    source: str, stage: str, consumed: TensorSpec, ref: Ref, produced: TensorSpec
) -> None:
    """Raise RecipeError when ``produced`` (ref's tensor) cannot feed ``stage``'s input."""
    if "?" not in (produced.dtype, consumed.dtype) and produced.dtype != consumed.dtype:
        raise RecipeError(
            f"{source}: stage '{stage}': input '{consumed.name}' is {consumed.dtype} but "
            f"'{ref}' is {produced.dtype}",
            fix="make the two models agree on the dtype (or add a custom stage that casts)",
        )
    if _merge_shape(produced.shape, consumed.shape) is None:
        raise RecipeError(
            f"{source}: stage '{stage}': input '{consumed.name}' has shape "
            f"{format_shape(consumed.shape)} but '{ref}' has shape {format_shape(produced.shape)}",
            fix="export the two stages with matching shapes",
        )
