"""The bundled example: bit-exact on the host, int8 accuracy within 1 point of float, and the
committed ONNX still means what its training script says (onnxruntime agrees with the labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from tinyconv.check import run_check

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits"


def test_example_is_bit_exact_and_accurate(tmp_path):
    report, _, compiled = run_check(EXAMPLE / "digits_cnn.onnx", device="host", calib=EXAMPLE / "calib.npy",
                                    inputs=EXAMPLE / "test_x.npy", labels=EXAMPLE / "test_y.npy", workdir=tmp_path)  # fmt: skip
    assert report["bit_exact"] and report["mismatches"] == 0
    assert report["inputs"] == 360
    assert report["float_accuracy"] >= 0.95
    assert abs(report["int8_accuracy"] - report["float_accuracy"]) <= 0.01
    ops = [n.op for n in compiled.graph.nodes]
    assert "batch_norm" not in ops and "unary" not in ops, f"BN folding / activation fusion did not happen: {ops}"


def test_example_float_model_matches_onnxruntime():
    x, y = np.load(EXAMPLE / "test_x.npy"), np.load(EXAMPLE / "test_y.npy")
    sess = ort.InferenceSession(str(EXAMPLE / "digits_cnn.onnx"), providers=["CPUExecutionProvider"])
    p = np.concatenate([sess.run(None, {"image": x[i : i + 1]})[0] for i in range(len(x))])
    assert (p.argmax(1) == y).mean() >= 0.95
