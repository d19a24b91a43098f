"""`tinyconv ops` lists exactly what the importers lower."""

from __future__ import annotations

from tinyconv.cli import main
from tinyconv.frontend import tflite
from tinyconv.frontend.onnx import CONVERTERS
from tinyconv.supported_ops import ONNX, TFLITE


def test_the_onnx_list_is_the_importers_table():
    assert set(ONNX) == set(CONVERTERS) | {"Constant", "Shape"}


def test_the_tflite_list_is_the_importers_table():
    assert set(TFLITE) == set(tflite.SUPPORTED)


def test_ops_command_prints_every_op_with_its_limits(capsys):
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    for op in (*ONNX, *TFLITE):
        assert op in out
    assert "mode 'nearest'" in out
    assert main(["ops", "--format", "tflite"]) == 0
    out = capsys.readouterr().out
    assert "CONV_2D" in out and "QLinearConv" not in out
