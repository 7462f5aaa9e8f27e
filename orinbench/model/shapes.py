"""Input shapes: ``--shape NAME:1x3x224x224`` parsing and resolving a model's dynamic dimensions.

A model input's shape holds ints for static dims and names (or ``"?"``) for dynamic ones (see
:class:`~orinbench.results.schema.TensorSpec`). Benchmarking needs every dim concrete, so each
dynamic dim must be given by the user; a dim *name* given a value through one input's override is
taken for the other inputs that share that name (``batch`` in ``images`` and ``lidar``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from ..errors import ShapeError, UsageError
from ..results.schema import TensorSpec

#: stands for a dimension that has neither a value nor a name in the model
UNKNOWN_DIM = "?"
#: stands for a tensor whose rank itself is unknown
UNKNOWN_RANK = "..."


#: the ``--shape`` word for a rank-0 (scalar) input: ``--shape k:scalar``
SCALAR = "scalar"
#: the largest dimension numpy (and ONNX, whose dims are int64) can describe
MAX_DIM = 2**63 - 1


def format_shape(shape: Iterable[int | str]) -> str:
    """``(1, 'batch', 3)`` -> ``"1x<batch>x3"``: the ``--shape`` syntax, names in angle brackets.

    A rank-0 shape ``()`` is ``"scalar"``, which is also how ``--shape`` spells it.
    """
    dims = tuple(shape)
    if not dims:
        return SCALAR
    return "x".join(str(d) if isinstance(d, int) else f"<{d}>" for d in dims)


def parse_shape_arg(text: str) -> tuple[str, tuple[int, ...]]:
    """Parse ``"NAME:1x3x320x320"`` into ``("NAME", (1, 3, 320, 320))``.

    The name may itself contain ``:`` (TensorFlow-style ``input:0``); the last ``:`` separates it.
    ``"NAME:scalar"`` (or ``"NAME:"``, nothing after the colon) is a rank-0 input. Every dim must
    be a positive integer that int64 can hold: a zero dimension makes an empty tensor, which
    measures nothing.
    """
    name, sep, dims = text.rpartition(":")
    if not sep or not name:
        raise UsageError(
            f"bad --shape {text!r}",
            why="expected NAME:DIMS",
            fix="write it as NAME:1x3x224x224 (input name, colon, dims separated by x)",
        )
    if dims.strip().lower() in ("", SCALAR):
        return name, ()
    parts = dims.lower().split("x")
    values: list[int] = []
    for part in parts:
        part = part.strip()
        if not (part.isascii() and part.isdigit()):
            raise UsageError(
                f"bad --shape {text!r}",
                why=f"dimension {part!r} is not a positive integer",
                fix=f"write it as {name}:1x3x224x224 (dims separated by x), or {name}:{SCALAR} "
                "for a rank-0 input",
            )
        value = int(part)
        if value == 0:
            raise UsageError(
                f"bad --shape {text!r}",
                why="a zero dimension makes an empty tensor, which runs no work",
                fix="give every dimension a size of at least 1",
            )
        if value > MAX_DIM:
            raise UsageError(
                f"bad --shape {text!r}",
                why=f"dimension {part} does not fit in int64 (at most {MAX_DIM})",
                fix="give the size the model runs at, e.g. 1x3x224x224",
            )
        values.append(value)
    return name, tuple(values)


def parse_shape_args(texts: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Parse several ``--shape`` values; naming the same input twice is an error."""
    shapes: dict[str, tuple[int, ...]] = {}
    for text in texts:
        name, dims = parse_shape_arg(text)
        if name in shapes:
            raise UsageError(
                f"--shape names input {name!r} twice", fix="give one --shape per input"
            )
        shapes[name] = dims
    return shapes


def _shape_fix(spec: TensorSpec) -> str:
    if spec.is_static:
        return f"pass --shape {spec.name}:{format_shape(spec.shape)}, or leave that input out"
    return f"pass --shape {spec.name}:{format_shape(spec.shape)} with each <name> set to a number"


def _check_override(spec: TensorSpec, override: Sequence[int]) -> tuple[int, ...]:
    dims = tuple(override)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or d < 1 or d > MAX_DIM:
            raise ShapeError(
                f"shape {list(dims)} for input {spec.name!r} is invalid",
                why=f"{d!r} is not a positive integer that int64 can hold (a zero dimension "
                "makes an empty tensor)",
                fix=_shape_fix(spec),
            )
    if spec.shape == (UNKNOWN_RANK,):
        return dims
    if len(dims) != len(spec.shape):
        raise ShapeError(
            f"shape {format_shape(dims)} for input {spec.name!r} has rank {len(dims)}",
            why=f"the model's input has rank {len(spec.shape)} ({format_shape(spec.shape)})",
            fix=_shape_fix(spec),
        )
    for axis, (want, got) in enumerate(zip(spec.shape, dims, strict=True)):
        if isinstance(want, int) and want != got:
            raise ShapeError(
                f"shape {format_shape(dims)} for input {spec.name!r} disagrees with the model",
                why=f"axis {axis} is fixed to {want} in the model, not {got}",
                fix=_shape_fix(spec),
            )
    return dims


def _bind_dim_names(
    inputs: Sequence[TensorSpec], checked: Mapping[str, tuple[int, ...]]
) -> dict[str, int]:
    """Dim name -> value, learned from the overrides; names bound to two values are dropped."""
    bound: dict[str, int] = {}
    conflicting: set[str] = set()
    for spec in inputs:
        dims = checked.get(spec.name)
        if dims is None or spec.shape == (UNKNOWN_RANK,):
            continue
        for want, got in zip(spec.shape, dims, strict=True):
            if isinstance(want, str) and want != UNKNOWN_DIM and bound.setdefault(want, got) != got:
                conflicting.add(want)
    return {k: v for k, v in bound.items() if k not in conflicting}


def resolve_partial(
    inputs: Sequence[TensorSpec], overrides: Mapping[str, Sequence[int]]
) -> dict[str, tuple[int | str, ...]]:
    """Apply ``overrides`` (checked) and shared dim names; dims left unknown stay as names.

    Used by inspection, which can still count what is known; :func:`resolve_input_shapes` is the
    strict form that needs every dim.
    """
    by_name = {spec.name: spec for spec in inputs}
    for name in overrides:
        if name not in by_name:
            known = ", ".join(repr(s.name) for s in inputs) or "none"
            raise ShapeError(
                f"--shape names input {name!r}, which the model does not have",
                why=f"its inputs are {known}",
                fix="use one of those names",
            )
    checked = {name: _check_override(by_name[name], dims) for name, dims in overrides.items()}
    bound = _bind_dim_names(inputs, checked)
    resolved: dict[str, tuple[int | str, ...]] = {}
    for spec in inputs:
        if spec.name in checked:
            resolved[spec.name] = checked[spec.name]
        else:
            resolved[spec.name] = tuple(
                bound.get(d, d) if isinstance(d, str) else d for d in spec.shape
            )
    return resolved


def resolve_input_shapes(
    inputs: Sequence[TensorSpec], overrides: Mapping[str, Sequence[int]]
) -> dict[str, tuple[int, ...]]:
    """Concrete shape of every input: static dims from the model, dynamic dims from ``overrides``.

    Raises :class:`ShapeError` naming the input and the dimension when a dynamic dim has no value,
    when an override's rank or a static dim disagrees with the model, and when an override names
    an input the model does not have.
    """
    partial = resolve_partial(inputs, overrides)
    out: dict[str, tuple[int, ...]] = {}
    for spec in inputs:
        dims = partial[spec.name]
        if dims == (UNKNOWN_RANK,):
            raise ShapeError(
                f"input {spec.name!r} has an unknown rank",
                why="the model does not declare its shape",
                fix=f"pass --shape {spec.name}:1x3x224x224 (its full shape)",
            )
        dynamic = [(axis, d) for axis, d in enumerate(dims) if isinstance(d, str)]
        if dynamic:
            labels = [
                f"unnamed dimension (axis {axis})"
                if d == UNKNOWN_DIM
                else f"dimension {d!r} (axis {axis})"
                for axis, d in dynamic
            ]
            names = list(dict.fromkeys(f"<{d}>" for _, d in dynamic))
            raise ShapeError(
                f"input {spec.name!r} has dynamic {', '.join(labels)} and no shape was given",
                why="the model must be run with every dimension fixed",
                fix=f"pass --shape {spec.name}:{format_shape(dims)} with "
                f"{', '.join(names)} replaced by numbers"
                if len(names) > 1
                else f"pass --shape {spec.name}:{format_shape(dims)} with {names[0]} replaced "
                "by a number",
            )
        out[spec.name] = tuple(int(d) for d in dims)
    return out


def with_shapes(
    inputs: Sequence[TensorSpec], overrides: Mapping[str, Sequence[int]]
) -> tuple[TensorSpec, ...]:
    """``inputs`` with the ``--shape`` overrides (checked) applied: data validated against the
    result must have exactly those sizes. Dims left dynamic keep their names."""
    partial = resolve_partial(inputs, overrides)
    return tuple(replace(spec, shape=partial[spec.name]) for spec in inputs)
