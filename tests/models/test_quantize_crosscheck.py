"""`tinyconv quantize`: the exported QDQ model runs in onnxruntime, and on tinyconv's own int8
intermediate tensors each layer's onnxruntime output is within 1 LSB of tinyconv's, identical on
at least 99 % of elements (the two round requantization differently)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from tinyconv.check import prepare_inputs
from tinyconv.cli import main
from tinyconv.crosscheck import layerwise
from tinyconv.pipeline import compile_model


@pytest.mark.slow
@pytest.mark.parametrize("route", ["float", "qdq"])
@pytest.mark.parametrize("task", ["kws", "vww", "ic", "ad"])
def test_mlperf_quantization_agrees_with_onnxruntime(mlperf_dir, task, route):
    calib = np.load(mlperf_dir / task / f"calib_{task}.npy")
    c = compile_model(mlperf_dir / task / f"{task}_{route}.onnx", calib=calib if route == "float" else None)
    cc = layerwise(c.graph, prepare_inputs(c.graph, calib[:4]).int8_ir)
    assert cc.ok, f"max |diff| {cc.max_abs_diff} LSB, identical {100 * cc.identical_fraction:.3f} %"


def test_quantize_cli_writes_a_model_onnxruntime_runs(tmp_path, capsys):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "digits"
    out = tmp_path / "digits.qdq.onnx"
    rc = main(["quantize", str(example / "digits_cnn.onnx"), "--calib", str(example / "calib.npy"), "-o", str(out), "--crosscheck",
               "--json", str(tmp_path / "cc.json")])  # fmt: skip
    assert rc == 0, capsys.readouterr()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x, y = np.load(example / "test_x.npy"), np.load(example / "test_y.npy")
    p = np.concatenate([sess.run(None, {sess.get_inputs()[0].name: x[i : i + 1]})[0] for i in range(len(x))])
    assert (p.argmax(1) == y).mean() >= 0.95  # onnxruntime's int8 run of tinyconv's quantization is still a good classifier
    assert '"ok": true' in (tmp_path / "cc.json").read_text()
