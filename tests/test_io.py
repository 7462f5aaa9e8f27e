from __future__ import annotations

from pathlib import Path

import pytest

from orinbench._io import (
    atomic_open,
    atomic_write_json,
    atomic_write_text,
    require_file,
    sha256_file,
)
from orinbench.errors import InputFileError


def test_atomic_write_replaces_whole(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_failure_mid_write_keeps_the_old_file(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(p, "w") as fh:
        fh.write("half")
        raise RuntimeError("crash")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_unencodable_json_never_touches_disk(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"a": float("inf")})
    assert list(tmp_path.iterdir()) == []


def test_writing_onto_a_folder_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="folder"):
        atomic_write_text(tmp_path, "x")


def test_require_file_and_hash(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        require_file(tmp_path / "nope")
    with pytest.raises(InputFileError, match="not a regular file"):
        require_file(tmp_path)
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
