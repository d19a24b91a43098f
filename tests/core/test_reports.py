"""Report files: every JSON validates against the published schema (also when the command fails),
JUnit carries errors, check reports per-output and per-layer errors and float metrics, and tables
are not cut when stdout is not a terminal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tinyconv.cli import main
from tinyconv.report import SCHEMA_VERSION, schema

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test dependency (pip install tinyconv[test])")
EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "digits"


def validated(path: Path) -> dict:
    report = json.loads(Path(path).read_text())
    jsonschema.validate(report, schema())
    assert report["schema_version"] == SCHEMA_VERSION
    return report


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(schema())


def test_check_report_has_per_output_and_per_layer_errors(tmp_path):
    x = np.load(EXAMPLE / "test_x.npy")[:20]
    np.save(tmp_path / "x.npy", x)
    rc = main(["check", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(EXAMPLE / "calib.npy"), "--inputs", str(tmp_path / "x.npy"),
               "--device", "host", "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml")])  # fmt: skip
    assert rc == 0
    r = validated(tmp_path / "r.json")
    assert r["command"] == "check" and r["ok"] and r["error"] is None and r["bit_exact"]
    (out,) = r["outputs"]
    assert out["mismatches"] == 0 and out["max_abs_diff"] == 0 and out["elements"] == 200
    m = out["float_metrics"]
    assert m["cosine"] > 0.99 and 0 < m["rmse"] < 0.05 and 0 < m["mae"] <= m["rmse"] and 0 < m["l2_relative"] < 0.1
    assert len(r["layers"]) == 6
    for lay in r["layers"]:
        assert lay["mismatches"] == 0 and lay["max_abs_diff"] == 0, lay
        assert lay["float_metrics"]["cosine"] > 0.95, lay
    case = ElementTree.parse(tmp_path / "r.xml").getroot().find("testsuite/testcase")
    assert case is not None and case.find("failure") is None and case.find("error") is None


def test_a_failing_command_still_writes_its_reports(tmp_path):
    rc = main(["check", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(tmp_path / "missing.npy"), "--device", "host",
               "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml")])  # fmt: skip
    assert rc == 2
    r = validated(tmp_path / "r.json")
    assert r["ok"] is False and r["error"]["type"] == "DataError" and "missing.npy" in r["error"]["message"]
    assert r["error"]["exit_code"] == 2 and r["device"] == "host"
    suite = ElementTree.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite.get("errors") == "1" and "missing.npy" in suite.find("testcase/error").get("message")


def test_unknown_device_error_is_reported_in_json(tmp_path):
    rc = main(["check", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(EXAMPLE / "calib.npy"), "--device", "no-such-board",
               "--json", str(tmp_path / "r.json")])  # fmt: skip
    assert rc != 0
    r = validated(tmp_path / "r.json")
    assert r["error"]["type"] == "DeviceError" and "no-such-board" in r["error"]["message"]


def test_inspect_and_quantize_reports_validate(tmp_path):
    assert main(["inspect", str(EXAMPLE / "digits_cnn.onnx"), "--json", str(tmp_path / "i.json")]) == 0
    r = validated(tmp_path / "i.json")
    assert r["command"] == "inspect" and r["ok"] and len(r["layers"]) >= 6
    assert main(["quantize", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(EXAMPLE / "calib.npy"), "-o", str(tmp_path / "q.onnx"),
                 "--json", str(tmp_path / "q.json")]) == 0  # fmt: skip
    r = validated(tmp_path / "q.json")
    assert r["command"] == "quantize" and r["output_model"].endswith("q.onnx") and r["crosscheck"] is None
    assert main(["inspect", str(tmp_path / "nope.onnx"), "--json", str(tmp_path / "e.json")]) == 2
    assert validated(tmp_path / "e.json")["error"]["type"] == "ModelError"


def test_tables_are_not_cut_when_stdout_is_not_a_terminal(tmp_path):
    long_name = "functional_1/block_" + "x" * 120 + "/conv"
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 1, 3, 3], np.linspace(-1, 1, 18).astype(np.float32))
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], [long_name], name=long_name, pads=[1, 1, 1, 1])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
                          [helper.make_tensor_value_info(long_name, TensorProto.FLOAT, [1, 2, 6, 6])], [w])  # fmt: skip
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "m.onnx")
    r = subprocess.run([sys.executable, "-m", "tinyconv.cli", "inspect", str(tmp_path / "m.onnx")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert long_name in r.stdout and "…" not in r.stdout


class _HtmlOutline(__import__("html.parser").parser.HTMLParser):
    """Headings, inline SVG pictures and the text inside them."""

    def __init__(self):
        super().__init__()
        self.headings, self.svgs, self.svg_text, self._in = [], 0, [], []

    def handle_starttag(self, tag, attrs):
        self._in.append(tag)
        self.svgs += tag == "svg"

    def handle_endtag(self, tag):
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data):
        if self._in and self._in[-1] == "h2":
            self.headings.append(data)
        elif "svg" in self._in and data.strip():
            self.svg_text.append(data.strip())


def html_outline(path: Path) -> _HtmlOutline:
    pytest.importorskip("matplotlib", reason="--html needs matplotlib (pip install tinyconv[html])")
    o = _HtmlOutline()
    o.feed(Path(path).read_text())
    return o


@pytest.mark.slow  # matplotlib, a check and a profile: ~10 s
def test_check_html_report_has_the_per_layer_error_as_pictures(tmp_path):
    pytest.importorskip("matplotlib", reason="--html needs matplotlib (pip install tinyconv[html])")
    rc = main(["check", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(EXAMPLE / "calib.npy"), "--device", "host", "--html", str(tmp_path / "r.html")])
    assert rc == 0
    o = html_outline(tmp_path / "r.html")
    assert "Per-layer error against the float model" in o.headings
    assert "Per-layer difference from the reference (device, first input)" in o.headings
    assert o.svgs == 2  # the host has no instruction counter: no profile picture
    assert "This device gives no per-layer" in (tmp_path / "r.html").read_text()
    text = " ".join(o.svg_text)
    assert "L2 relative error" in text and "1 − cosine similarity" in text and "2 conv2 (conv2d)" in text


def test_inspect_of_an_unsupported_model_reports_the_ops(tmp_path):
    g = helper.make_graph([helper.make_node("Erf", ["x"], ["e"], name="erf1"), helper.make_node("Relu", ["e"], ["r"], name="relu1"),
                           helper.make_node("Gelu", ["r"], ["y"], name="gelu1", domain="com.microsoft")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])  # fmt: skip
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]
    onnx.save(helper.make_model(g, opset_imports=opsets), tmp_path / "m.onnx")
    assert main(["inspect", str(tmp_path / "m.onnx"), "--json", str(tmp_path / "r.json")]) == 1
    r = validated(tmp_path / "r.json")
    assert r["ok"] is False and r["error"]["type"] == "UnsupportedError" and "Erf" in r["error"]["message"]
    # Every unsupported node is listed (not just the first error), and supported ones are not.
    assert r["unsupported"] == ["Erf 'erf1'", "Gelu 'gelu1'"] and "tinyconv ops" in r["error"]["message"]
