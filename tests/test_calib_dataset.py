"""Calibration datasets: the .npz folder format, the manifest, the loader hook, and validation."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from orinbench.calib.dataset import dataset_from_arrays, open_dataset, write_sample
from orinbench.calib.manifest import Manifest, parse_manifest, read_manifest, write_manifest
from orinbench.calib.specs import model_io_specs
from orinbench.calib.synthetic import write_synthetic_dataset
from orinbench.errors import CalibrationError, ExitCode
from orinbench.results.schema import TensorSpec

REPO = Path(__file__).resolve().parents[1]

IMAGES = TensorSpec("images", "float32", (1, 2, 3, 8, 8))
MASK = TensorSpec("mask", "int64", ("batch", 4))
INPUTS = (IMAGES, MASK)


def _sample(rng: np.random.Generator, **override: np.ndarray) -> dict[str, np.ndarray]:
    feed = {
        "images": rng.standard_normal((1, 2, 3, 8, 8)).astype(np.float32),
        "mask": np.arange(4, dtype=np.int64).reshape(1, 4),
    }
    feed.update(override)
    return feed


def _folder(tmp_path: Path, n: int = 4, *, name: str = "data") -> Path:
    folder = tmp_path / name
    rng = np.random.default_rng(0)
    for i in range(n):
        write_sample(folder / f"{i:04d}.npz", _sample(rng))
    return folder


def _message(exc: pytest.ExceptionInfo[CalibrationError]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    assert exc.value.exit_code == ExitCode.USAGE
    return text


def test_folder_is_read_in_name_order_and_validated(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 3)
    ds = open_dataset(folder, inputs=INPUTS)
    assert ds.count == 3 and len(ds) == 3 and ds.kind == "folder"
    origins = [s.origin for s in ds.samples()]
    assert [Path(o).name for o in origins] == ["0000.npz", "0001.npz", "0002.npz"]
    feeds = list(ds.feeds())
    assert feeds[0]["images"].shape == (1, 2, 3, 8, 8) and feeds[0]["mask"].dtype == np.int64
    assert ds.nbytes == 3 * (1 * 2 * 3 * 8 * 8 * 4 + 4 * 8)


def test_max_samples_takes_the_first_files(tmp_path: Path) -> None:
    ds = open_dataset(_folder(tmp_path, 5), inputs=INPUTS, max_samples=2)
    assert ds.count == 2
    assert [Path(s.origin).name for s in ds.samples()] == ["0000.npz", "0001.npz"]
    assert len(list(ds.samples(max_samples=1))) == 1


def test_samples_larger_than_the_memory_budget_are_read_again(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 3)
    ds = open_dataset(folder, inputs=INPUTS, memory_budget=0)
    assert not ds.in_memory
    first = [f["images"].copy() for f in ds.feeds()]
    second = [f["images"] for f in ds.feeds()]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    # a file that goes bad after validation is caught when it is read again
    bad = _sample(np.random.default_rng(1), images=np.full((1, 2, 3, 8, 8), np.nan, np.float32))
    write_sample(folder / "0001.npz", bad)
    with pytest.raises(CalibrationError, match=r"0001\.npz key 'images' holds 384 NaN"):
        list(ds.feeds())


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        (
            {"images": np.zeros((1, 2, 3, 8, 9), np.float32)},
            r"key 'images' has shape 1x2x3x8x9, the model expects 1x2x3x8x8",
        ),
        ({"images": np.zeros((2, 3, 8, 8), np.float32)}, r"key 'images' has shape 2x3x8x8"),
        (
            {"images": np.zeros((1, 2, 3, 8, 8), np.float64)},
            r"key 'images' has dtype float64, the model expects float32",
        ),
        (
            {"mask": np.zeros((1, 4), np.int32)},
            r"key 'mask' has dtype int32, the model expects int64",
        ),
        (
            {"images": np.full((1, 2, 3, 8, 8), np.inf, np.float32)},
            r"holds 0 NaN and 384 Inf values",
        ),
    ],
)
def test_bad_sample_names_the_first_bad_file_and_key(
    tmp_path: Path, override: dict[str, np.ndarray], pattern: str
) -> None:
    folder = _folder(tmp_path, 4)
    write_sample(folder / "0002.npz", _sample(np.random.default_rng(5), **override))
    write_sample(folder / "0003.npz", _sample(np.random.default_rng(6), **override))
    with pytest.raises(CalibrationError) as exc:
        open_dataset(folder, inputs=INPUTS)
    text = _message(exc)
    assert "0002.npz" in text and "0003.npz" not in text
    assert re.search(pattern, text), text


def test_dynamic_dimension_accepts_any_size(tmp_path: Path) -> None:
    folder = tmp_path / "dyn"
    rng = np.random.default_rng(0)
    write_sample(folder / "a.npz", _sample(rng, mask=np.zeros((3, 4), np.int64)))
    assert open_dataset(folder, inputs=INPUTS).count == 1


def test_nan_position_is_reported(tmp_path: Path) -> None:
    images = np.zeros((1, 2, 3, 8, 8), np.float32)
    images[0, 1, 2, 3, 4] = np.nan
    folder = tmp_path / "d"
    write_sample(folder / "0000.npz", _sample(np.random.default_rng(0), images=images))
    with pytest.raises(
        CalibrationError, match=r"holds 1 NaN and 0 Inf values \(first at index \(0, 1, 2, 3, 4\)\)"
    ):
        open_dataset(folder, inputs=INPUTS)


def test_missing_and_unknown_keys(tmp_path: Path) -> None:
    folder = tmp_path / "k"
    rng = np.random.default_rng(0)
    s = _sample(rng)
    write_sample(folder / "0000.npz", {"images": s["images"]})
    with pytest.raises(CalibrationError, match=r"0000\.npz lacks input 'mask'"):
        open_dataset(folder, inputs=INPUTS)
    write_sample(folder / "0000.npz", {**s, "extra": s["mask"]})
    with pytest.raises(
        CalibrationError, match=r"has key 'extra', which is not an input of the model"
    ):
        open_dataset(folder, inputs=INPUTS)


def test_empty_missing_and_non_folder_sources(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no samples here")
    with pytest.raises(CalibrationError, match=r"holds no \.npz samples"):
        open_dataset(tmp_path / "empty", inputs=INPUTS)
    with pytest.raises(CalibrationError, match="folder not found"):
        open_dataset(tmp_path / "nope", inputs=INPUTS)
    f = tmp_path / "file.npz"
    f.write_bytes(b"x")
    with pytest.raises(CalibrationError, match="is not a folder"):
        open_dataset(f, inputs=INPUTS)


def test_corrupt_npz_is_one_line(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 2)
    (folder / "0001.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CalibrationError) as exc:
        open_dataset(folder, inputs=INPUTS)
    assert "0001.npz is not a readable .npz file" in _message(exc)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"hello\n", "it is not a zip archive, as an .npz is (it starts with b'hello\\n')"),
        (b"", "the file is empty"),
    ],
)
def test_a_file_that_is_no_npz_at_all_is_not_called_pickled(
    tmp_path: Path, content: bytes, why: str
) -> None:
    # numpy reads a text file as a pickle: "Cannot load file containing pickled data"
    folder = _folder(tmp_path, 2)
    (folder / "0001.npz").write_bytes(content)
    with pytest.raises(CalibrationError) as exc:
        open_dataset(folder, inputs=INPUTS)
    msg = _message(exc)
    assert "0001.npz is not a readable .npz file" in msg and why in msg
    assert "pickled" not in msg


def test_bench_inputs_that_are_no_npz_say_so(run_cli, conv_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "in.npz"
    bad.write_text("x,y\n1,2\n")
    code, _, err = run_cli("bench", str(conv_model), "--inputs", str(bad), "--iterations", "5")
    assert code == 2 and "Traceback" not in err
    assert "it is not a zip archive" in err and "pickled" not in err


def test_manifest_round_trip_and_sample_count_check(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 3)
    m = Manifest(
        source="nuScenes mini",
        preprocessing="resize, normalise",
        sample_count=3,
        seed=7,
        extra={"camera": "CAM_FRONT", "note": 'quote " and \\ backslash'},
    )
    write_manifest(folder / "manifest.toml", m)
    assert read_manifest(folder / "manifest.toml") == m
    ds = open_dataset(folder, inputs=INPUTS)
    assert ds.manifest == m
    write_manifest(folder / "manifest.toml", Manifest(sample_count=5))
    with pytest.raises(CalibrationError, match=r"sample_count = 5 but .* holds 3 \.npz files"):
        open_dataset(folder, inputs=INPUTS)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("source = [1, 2]\n", "'source' must be a string"),
        ("sample_count = '16'\n", "'sample_count' must be an integer"),
        ("seed = true\n", "'seed' must be an integer"),
        ("sample_count = = 3\n", "is not valid TOML"),
    ],
)
def test_bad_manifest(text: str, pattern: str) -> None:
    with pytest.raises(CalibrationError, match=pattern):
        parse_manifest(text)


def _script(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "loader.py"
    p.write_text("import numpy as np\n" + body, encoding="utf-8")
    return p


GOOD_LOADER = """
def samples():
    rng = np.random.default_rng(3)
    for i in range(5):
        yield {"images": rng.standard_normal((1, 2, 3, 8, 8)).astype(np.float32),
               "mask": np.full((1, 4), i, dtype=np.int64)}
"""


def test_loader_script_yields_validated_samples(tmp_path: Path) -> None:
    script = _script(tmp_path, GOOD_LOADER)
    ds = open_dataset(f"{script}:samples", inputs=INPUTS, max_samples=3)
    assert ds.kind == "loader" and ds.count == 3
    masks = [int(f["mask"][0, 0]) for f in ds.feeds()]
    assert masks == [0, 1, 2]
    # re-read path: the loader is called again and gives the same samples
    ds2 = open_dataset(f"{script}:samples", inputs=INPUTS, memory_budget=0)
    assert [int(f["mask"][0, 0]) for f in ds2.feeds()] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("body", "spec_func", "pattern"),
    [
        (
            "raise RuntimeError('no nuScenes here')\ndef samples():\n    yield {}\n",
            "samples",
            r"failed while importing: RuntimeError: no nuScenes here",
        ),
        ("def other():\n    pass\n", "samples", r"has no function 'samples'"),
        ("samples = 3\n", "samples", r"'samples' in .* is not a function"),
        (
            "def samples():\n    raise KeyError('token')\n",
            "samples",
            r"raised when called: KeyError",
        ),
        ("def samples():\n    return 5\n", "samples", r"returned a int, not an iterable"),
        (
            "def samples():\n    yield {'images': np.zeros((1, 2, 3, 8, 8), np.float32), "
            "'mask': np.zeros((1, 4), np.int64)}\n    raise ValueError('bad frame')\n",
            "samples",
            r"raised while producing sample #1: ValueError: bad frame",
        ),
        (
            "def samples():\n    yield [1, 2]\n",
            "samples",
            r"sample #0 is a list, not a dict of arrays",
        ),
        ("def samples():\n    return iter([])\n", "samples", r"yielded no samples"),
    ],
)
def test_loader_failures_are_one_line(
    tmp_path: Path, body: str, spec_func: str, pattern: str
) -> None:
    script = _script(tmp_path, body)
    with pytest.raises(CalibrationError) as exc:
        open_dataset(f"{script}:{spec_func}", inputs=INPUTS)
    assert re.search(pattern, _message(exc)), str(exc.value)


def test_missing_loader_script(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="data-loader script not found"):
        open_dataset(f"{tmp_path / 'none.py'}:samples", inputs=INPUTS)


def test_dataset_from_arrays_and_recheck_against_other_inputs() -> None:
    rng = np.random.default_rng(0)
    ds = dataset_from_arrays([_sample(rng), _sample(rng)], inputs=INPUTS)
    assert ds.count == 2
    assert open_dataset(ds, inputs=INPUTS) is ds
    other = (TensorSpec("x", "float32", (1, 3)),)
    with pytest.raises(CalibrationError, match="was validated for inputs images, mask"):
        open_dataset(ds, inputs=other)


def test_synthetic_dataset_matches_model_and_is_image_like(
    tmp_path: Path, conv_model: Path
) -> None:
    inputs, _ = model_io_specs(conv_model)
    out = write_synthetic_dataset(tmp_path / "syn", inputs=inputs, count=3, seed=1)
    ds = open_dataset(out, inputs=inputs)
    assert ds.count == 3 and ds.manifest is not None and ds.manifest.sample_count == 3
    x = next(ds.feeds())["x"]
    # 8-bit pixels normalised per channel: at most 256 levels per channel, ImageNet-like range
    assert len(np.unique(x[0, 0])) <= 256
    assert float(x.min()) > -2.2
    assert float(x.max()) < 2.7


def test_bundled_calibration_set_fits_the_bundled_sample_model(tmp_path: Path) -> None:
    from orinbench.zoo.sample_bev import export_sample_bev

    model = export_sample_bev(tmp_path / "sample.onnx", size="tiny", seed=0)
    inputs, _ = model_io_specs(model)
    folder = REPO / "calib" / "sample_bev_tiny"
    ds = open_dataset(folder, inputs=inputs)
    assert ds.manifest is not None
    assert ds.count == ds.manifest.sample_count == 16
    assert sum(p.stat().st_size for p in folder.iterdir()) < 4_000_000  # keep the repo small
