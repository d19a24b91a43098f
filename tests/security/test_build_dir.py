"""A shared --build-dir: one locked, content-keyed entry per target/model/options, old entries pruned,
so reusing it across targets or sharing it between concurrent checks gives the right answers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinyconv.errors import TinyconvError
from tinyconv.harness.workdir import KEEP, locked_entry

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "digits"


def check(build_dir: Path, device: str, model=EXAMPLE / "digits_cnn.onnx", calib=EXAMPLE / "calib.npy", json_out: Path | None = None):
    args = [sys.executable, "-m", "tinyconv.cli", "check", str(model), "--calib", str(calib), "--device", device, "--build-dir", str(build_dir)]
    if json_out:
        args += ["--json", str(json_out)]
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


@pytest.mark.device
@pytest.mark.slow
def test_build_dir_reused_across_targets(tmp_path):
    """Helium kernels of one check must not reach a later Cortex-M4 build of a model without them."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    other = other_model(tmp_path)
    runs = [(EXAMPLE / "digits_cnn.onnx", EXAMPLE / "calib.npy", "qemu-m55"), (other, tmp_path / "other_calib.npy", "qemu-m4"),
            (EXAMPLE / "digits_cnn.onnx", EXAMPLE / "calib.npy", "qemu-m4")]  # fmt: skip
    for k, (model, calib, device) in enumerate(runs):
        r = check(tmp_path / "b", device, model, calib, json_out=tmp_path / f"{k}.json")
        assert r.returncode == 0, f"{device}: {r.stderr[-2000:]}"
        assert json.loads((tmp_path / f"{k}.json").read_text())["bit_exact"]
    assert len(list((tmp_path / "b").glob("k-*"))) == 3


def other_model(path: Path) -> Path:
    """A second model with another input size, so a mixed-up build cannot pass."""
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.normal(size=(3, 2, 3, 3)).astype(np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], "conv", pads=[1, 1, 1, 1])], "other",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 5, 5])], [w])  # fmt: skip
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path / "other.onnx")
    np.save(path / "other_calib.npy", rng.normal(size=(16, 2, 5, 5)).astype(np.float32))
    return path / "other.onnx"


@pytest.mark.slow
def test_two_checks_share_a_build_dir(tmp_path):
    other = other_model(tmp_path)
    jobs = [(EXAMPLE / "digits_cnn.onnx", EXAMPLE / "calib.npy"), (other, tmp_path / "other_calib.npy")] * 2
    results: list = [None] * len(jobs)

    def run(k):
        m, c = jobs[k]
        results[k] = check(tmp_path / "shared", "host", m, c, tmp_path / f"r{k}.json")

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    for k, r in enumerate(results):
        assert r is not None and r.returncode == 0, r.stderr[-2000:] if r else "did not finish"
        rep = json.loads((tmp_path / f"r{k}.json").read_text())
        assert rep["bit_exact"] and Path(rep["model"]).name == Path(jobs[k][0]).name


def test_entries_are_locked_and_pruned(tmp_path):
    (tmp_path / "mine.txt").write_text("not tinyconv's")
    with locked_entry(tmp_path, "held") as held:
        with pytest.raises(TinyconvError, match="stayed in use by another tinyconv"):
            with locked_entry(tmp_path, "held", timeout=0.3):
                pass
        for k in range(KEEP + 4):
            with locked_entry(tmp_path, f"e{k}"):
                pass
        left = sorted(p.name for p in tmp_path.glob("k-*"))
        assert held.name in left  # in use: never pruned
        assert len(left) <= KEEP + 1
        assert f"k-e{KEEP + 3}" in left and "k-e0" not in left  # the least recently used went first
    assert (tmp_path / "mine.txt").read_text() == "not tinyconv's"
