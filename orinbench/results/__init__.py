"""Results: the versioned schema, upgrades between versions, and atomic load/save."""

from .io import load_result, result_from_dict, save_result
from .schema import (
    SCHEMA_VERSION,
    Environment,
    ModelRef,
    QualityWarning,
    Result,
    RunConfig,
    TensorSpec,
    runtime_settings,
)

__all__ = [
    "SCHEMA_VERSION",
    "Environment",
    "ModelRef",
    "QualityWarning",
    "Result",
    "RunConfig",
    "TensorSpec",
    "load_result",
    "result_from_dict",
    "runtime_settings",
    "save_result",
]
