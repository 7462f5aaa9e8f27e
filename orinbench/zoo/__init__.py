"""Synthetic BEV models built with onnx + numpy: the bundled sample model and the zoo.

``orinbench.zoo.registry`` lists and exports the zoo models (one ONNX file per stage);
``orinbench.zoo.sample_bev`` builds the single-file sample model used by ``orinbench demo``.
"""

from __future__ import annotations

from .registry import (
    SIZES,
    ZooEntry,
    build_model,
    chain_problems,
    export_model,
    get_entry,
    list_models,
)
from .sample_bev import build_sample_bev, export_sample_bev

__all__ = [
    "SIZES",
    "ZooEntry",
    "build_model",
    "build_sample_bev",
    "chain_problems",
    "export_model",
    "export_sample_bev",
    "get_entry",
    "list_models",
]
