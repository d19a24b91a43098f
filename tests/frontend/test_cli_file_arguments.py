"""File arguments the CLI cannot use end in one `error:` line before any work (before: tracebacks
from mkdir, np.load, NpzFile, np.stack of nothing ... or after a whole device run for report paths)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tinyconv.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"


@pytest.fixture
def example(tmp_path):
    shutil.copy(EXAMPLE / "digits_cnn.onnx", tmp_path / "m.onnx")
    np.save(tmp_path / "calib.npy", np.load(EXAMPLE / "calib.npy")[:4])
    return tmp_path


def one_line_error(capsys, rc: int, *needles) -> str:
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert err.startswith("error:") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"
    return err


def bad_npy(tmp_path, kind: str) -> str:
    p = tmp_path / f"{kind}.npy"
    if kind == "empty":
        np.save(p, np.zeros((0, 1, 8, 8), np.float32))
    elif kind == "npz":
        np.savez(tmp_path / "data.npz", a=np.zeros((2, 1, 8, 8), np.float32))
        (tmp_path / "data.npz").rename(p)
    elif kind == "huge_header":
        p.write_bytes(b"\x93NUMPY\x02\x00" + (200_000).to_bytes(4, "little") + b"{" + b" " * 199_998 + b"\n")
    elif kind == "zero_bytes":
        p.write_bytes(b"")
    elif kind == "scalar":
        np.save(p, np.float32(1.0))
    elif kind == "dev_null":
        return "/dev/null"
    elif kind == "directory":
        return str(tmp_path)
    return str(p)


NPY_CASES = ["empty", "npz", "huge_header", "zero_bytes", "scalar", "dev_null", "directory"]


@pytest.mark.parametrize("kind", NPY_CASES)
def test_unusable_calibration_file(example, capsys, kind):
    rc = main(["compile", str(example / "m.onnx"), "--calib", bad_npy(example, kind), "-o", str(example / "out")])
    one_line_error(capsys, rc, "calibration data")


@pytest.mark.parametrize("kind", NPY_CASES)
def test_unusable_inputs_file(example, capsys, kind):
    rc = main(["check", str(example / "m.onnx"), "--calib", str(example / "calib.npy"), "--inputs", bad_npy(example, kind), "--device", "host"])
    one_line_error(capsys, rc, "inputs")


def test_output_names_an_existing_file(example, capsys):
    (example / "taken").write_text("x")
    rc = main(["compile", str(example / "m.onnx"), "--calib", str(example / "calib.npy"), "-o", str(example / "taken")])
    one_line_error(capsys, rc, "taken'", "existing file")
    rc = main(["check", str(example / "m.onnx"), "--calib", str(example / "calib.npy"), "--device", "host", "--build-dir", str(example / "taken")])
    one_line_error(capsys, rc, "--build-dir", "existing file")


def test_output_in_an_unwritable_place(example, capsys):
    rc = main(["compile", str(example / "m.onnx"), "--calib", str(example / "calib.npy"), "-o", "/proc/tinyconv-out"])
    one_line_error(capsys, rc, "/proc/tinyconv-out")


@pytest.mark.parametrize("flag", ["--json", "--junit", "--save-outputs"])
def test_report_path_checked_before_the_run(example, capsys, flag):
    rc = main(["check", str(example / "m.onnx"), "--calib", str(example / "calib.npy"), "--device", "host", flag, str(example / "no" / "such" / "r.out")])
    one_line_error(capsys, rc, flag, "does not exist")


def test_float_inputs_with_nan(example, capsys):
    """Before: NaN inputs were quantized (undefined) and `check` went on to report SQNR nan."""
    x = np.load(example / "calib.npy")
    x[1, 0, 2, 2] = np.nan
    np.save(example / "nan.npy", x)
    rc = main(["check", str(example / "m.onnx"), "--calib", str(example / "calib.npy"), "--inputs", str(example / "nan.npy"), "--device", "host"])
    one_line_error(capsys, rc, "NaN")


@pytest.mark.parametrize("n", ["0", "-3"])
def test_sqnr_inputs_must_be_positive(example, capsys, n):
    """Before: 0 printed nothing and -3 silently used all but the last 3 inputs."""
    with pytest.raises(SystemExit) as e:
        main(["compile", str(example / "m.onnx"), "--calib", str(example / "calib.npy"), "-o", str(example / "o"), "--sqnr", "--sqnr-inputs", n])
    assert e.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_model_path_is_a_directory(example, capsys):
    rc = main(["inspect", str(example)])
    one_line_error(capsys, rc, "not a regular file")
