"""Real models on every emulated board: the bundled example and the MLPerf Tiny ONNX models,
every output byte compared with the reference through the serial protocol, and a profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import need
from tinyconv.check import run_check
from tinyconv.profile import run_profile

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"
DEVICES = ("qemu-m4", "qemu-m7", "qemu-m55", "qemu-aarch64", "qemu-aarch64-i8mm")
TASKS = ("kws", "vww", "ic", "ad")


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
def test_example_on_device(device, tmp_path):
    need(device)
    x, y = np.load(EXAMPLE / "test_x.npy")[:60], np.load(EXAMPLE / "test_y.npy")[:60]
    report, outputs, _ = run_check(EXAMPLE / "digits_cnn.onnx", device=device, calib=EXAMPLE / "calib.npy", inputs=x, labels=y, workdir=tmp_path)
    assert report["bit_exact"], report["first_divergent_layer"]
    assert report["elements"] == 600 and outputs.shape == (60, 10)
    assert report["int8_accuracy"] >= 0.9


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("device", DEVICES)
def test_mlperf_onnx_on_device(mlperf_dir, device, task, tmp_path):
    need(device)
    calib = np.load(mlperf_dir / task / f"calib_{task}.npy")
    report, _, _ = run_check(mlperf_dir / task / f"{task}_float.onnx", device=device, calib=calib, inputs=calib[:3], workdir=tmp_path)
    assert report["bit_exact"], f"{report['mismatches']} bytes differ; first layer {report['first_divergent_layer']}"


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("device", ("qemu-aarch64", "qemu-aarch64-i8mm"))
def test_mlperf_qdq_on_phone(mlperf_dir, device, task, tmp_path):
    """The pre-quantized (QDQ) route through the specialised NEON / i8mm layers."""
    need(device)
    calib = np.load(mlperf_dir / task / f"calib_{task}.npy")
    report, _, _ = run_check(mlperf_dir / task / f"{task}_qdq.onnx", device=device, inputs=calib[:3], workdir=tmp_path)
    assert report["bit_exact"], f"{report['mismatches']} bytes differ; first layer {report['first_divergent_layer']}"


@pytest.mark.device
@pytest.mark.parametrize("device", ("qemu-m4", "qemu-m55"))
def test_profile_of_example(device, tmp_path):
    need(device)
    r = run_profile(EXAMPLE / "digits_cnn.onnx", device=device, calib=EXAMPLE / "calib.npy", workdir=tmp_path)
    total = r["instructions_per_inference"]
    per_layer = [lay["instructions"] for lay in r["layers"]]
    assert total > r["macs"] > 0  # at least one instruction per MAC
    assert sum(per_layer) <= total and all(n > 0 for n in per_layer)
    assert r["flash_weights_bytes"] >= 3818 and r["flash_code_bytes"] > 0 and r["stack_bytes"] > 0
    assert r["arena_bytes"] == 640


TFLITE = {"kws": "kws_ref_model", "vww": "vww_96_int8", "ic": "pretrainedResnet_quant", "ad": "ad01_int8"}


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.parametrize("device,route", [("qemu-m4", "float"), ("qemu-m4", "qdq"), ("qemu-m4", "tflite"), ("qemu-m7", "tflite")])
@pytest.mark.parametrize("task", TASKS)
def test_mlperf_speed_level_on_device(mlperf_dir, device, route, task, tmp_path):
    """--optimize speed (per-layer kernels, offline int16 layouts) on the DSP boards, every route."""
    need(device)
    d = mlperf_dir / task
    calib = np.load(d / f"calib_{task}.npy")
    if route == "tflite":
        model, inputs = d / f"{TFLITE[task]}.tflite", np.load(d / f"{TFLITE[task]}.seed0_input0.npy")
    else:
        model, inputs = d / f"{task}_{route}.onnx", calib[:2]
    report, _, compiled = run_check(model, device=device, calib=calib if route == "float" else None, inputs=inputs,
                                    workdir=tmp_path, optimize="speed")  # fmt: skip
    assert report["bit_exact"], f"{report['mismatches']} bytes differ; first layer {report['first_divergent_layer']}"
    kernels = [lay["kernel"] for lay in compiled.library.manifest["layers"] if lay["op"] in ("conv2d", "fully_connected")]
    assert kernels and all(k.startswith("dsp-inline") for k in kernels), kernels
