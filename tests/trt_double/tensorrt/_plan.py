"""The double's engine plan format: a magic tag, a size, a JSON header, the ONNX model.

The header records what real plans record in their own way: the TensorRT version and its
serialization tag, the GPU's compute capability, the plugins the engine needs, its IO tensors,
optimization profiles and layers. Keeping the ONNX model lets the double execute the engine with
ONNX Runtime, so that outputs are real numbers a test can compare.
"""

from __future__ import annotations

import json
import struct
from typing import Any

MAGIC = b"ftrtDBL1"


class PlanError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


def dump(header: dict[str, Any], onnx_bytes: bytes) -> bytes:
    h = json.dumps(header, sort_keys=True).encode()
    body = struct.pack("<I", len(h)) + h + struct.pack("<Q", len(onnx_bytes)) + onnx_bytes
    return MAGIC + struct.pack("<Q", len(body)) + body


def load(data: bytes) -> tuple[dict[str, Any], bytes]:
    if len(data) < 16 or data[:8] != MAGIC:
        raise PlanError(
            "magic",
            "1: [stdArchiveReader.cpp::StdArchiveReader::32] Error Code 1: Serialization "
            "(Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic tag does not match)",
        )
    (size,) = struct.unpack("<Q", data[8:16])
    body = data[16:]
    if len(body) != size:
        raise PlanError(
            "size",
            "1: [stdArchiveReader.cpp::StdArchiveReader::54] Error Code 1: Serialization "
            "(Serialization assertion sizeRead == static_cast<uint64_t>(mEnd - mCurrent) failed."
            "Size specified in header does not match archive size)",
        )
    (hlen,) = struct.unpack("<I", body[:4])
    header = json.loads(body[4 : 4 + hlen])
    (olen,) = struct.unpack("<Q", body[4 + hlen : 12 + hlen])
    onnx_bytes = body[12 + hlen : 12 + hlen + olen]
    return header, onnx_bytes
