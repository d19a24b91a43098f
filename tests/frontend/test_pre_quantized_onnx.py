"""Models quantized by onnxruntime.quantization.quantize_static, in both formats it writes:
QDQ (Q/DQ pairs) and QOperator (QLinearConv, QLinearMatMul and the com.microsoft QLinear* ops),
int8 and uint8 activations. The model's own parameters are used; the result is bit-exact on the
host and still classifies the example's held-out digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from tinyconv.check import run_check
from tinyconv.frontend.onnx import load_onnx

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"


class Reader(CalibrationDataReader):
    def __init__(self, name: str, calib: np.ndarray):
        self.it = iter([{name: c[None]} for c in calib])

    def get_next(self):
        return next(self.it, None)


def quantized(tmp_path, fmt, act_type, per_channel=True) -> Path:
    out = tmp_path / f"digits_{fmt.name}_{act_type.name}.onnx"
    src = tmp_path / "digits_cnn.onnx"  # quantize_static writes scratch files beside its input
    src.write_bytes((EXAMPLE / "digits_cnn.onnx").read_bytes())
    quantize_static(str(src), str(out), Reader("image", np.load(EXAMPLE / "calib.npy")[:64]),
                    quant_format=fmt, activation_type=act_type, weight_type=QuantType.QInt8, per_channel=per_channel)  # fmt: skip
    return out


@pytest.mark.parametrize("act_type", [QuantType.QInt8, QuantType.QUInt8])
@pytest.mark.parametrize("fmt", [QuantFormat.QDQ, QuantFormat.QOperator])
def test_onnxruntime_quantized_example(tmp_path, fmt, act_type):
    path = quantized(tmp_path, fmt, act_type)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ("QLinearConv" in ops) == (fmt == QuantFormat.QOperator)
    g = load_onnx(path)
    assert g.given_quant, "the model's own quantization parameters were not picked up"
    report, _, _ = run_check(path, device="host", inputs=EXAMPLE / "test_x.npy", labels=EXAMPLE / "test_y.npy", workdir=tmp_path / "w")
    assert report["bit_exact"]
    assert report["int8_accuracy"] >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("task", ["ad", "ic"])
def test_mlperf_qoperator(mlperf_dir, tmp_path, task):
    calib = np.load(mlperf_dir / task / f"calib_{task}.npy")
    out = tmp_path / f"{task}_qop.onnx"
    src = tmp_path / f"{task}_float.onnx"
    src.write_bytes((mlperf_dir / task / f"{task}_float.onnx").read_bytes())
    quantize_static(str(src), str(out), Reader("input_1", calib[:16]), quant_format=QuantFormat.QOperator,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True)  # fmt: skip
    report, _, _ = run_check(out, device="host", inputs=calib[:8], workdir=tmp_path / "w")
    assert report["bit_exact"] and report["sqnr_db"][0]["sqnr_db"] > 15
