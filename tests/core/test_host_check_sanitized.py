"""`check --device host` runs the generated code under AddressSanitizer and UBSan (when the
compiler has them), and undefined behaviour fails the check instead of passing silently."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyconv import native
from tinyconv.check import run_check
from tinyconv.errors import BuildError

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "digits"


def _need_sanitizers():
    if not native.sanitizers_available():
        pytest.skip("gcc here cannot build and run with -fsanitize=address,undefined")


def test_host_check_builds_with_sanitizers(tmp_path, monkeypatch):
    _need_sanitizers()
    monkeypatch.setenv("TINYCONV_CACHE", str(tmp_path / "cache"))  # the driver is linked into the build cache
    x = np.load(EXAMPLE / "test_x.npy")[:4]
    report, _, _ = run_check(EXAMPLE / "digits_cnn.onnx", device="host", calib=EXAMPLE / "calib.npy", inputs=x,
                             workdir=tmp_path, compare_onnxruntime=False)  # fmt: skip
    assert report["bit_exact"]
    drivers = list((tmp_path / "cache").rglob("driver"))
    assert len(drivers) == 2, "one -O3 driver for every input, one sanitized driver for the first inputs"
    sanitized = [exe for exe in drivers if "__asan_init" in (syms := subprocess.run(["nm", str(exe)], capture_output=True, text=True, check=True).stdout)
                 and "__ubsan_handle" in syms]  # fmt: skip
    assert len(sanitized) == 1, "the host check's sample run is not sanitized"


def _overflowing_library(tmp_path):
    (tmp_path / "tc_model.h").write_text(
        "#include <stdint.h>\n#define TC_MODEL_INPUT_BYTES 4\n#define TC_MODEL_OUTPUT_BYTES 4\n"
        "int tc_model_init(void);\nint tc_model_run(const int8_t *input, int8_t *output);\n"
    )
    (tmp_path / "tc_model.c").write_text(
        '#include "tc_model.h"\nint tc_model_init(void) { return 0; }\n'
        "int tc_model_run(const int8_t *input, int8_t *output)\n{\n"
        "    int32_t big = INT32_MAX - 10;\n    big += input[0];\n"
        "    for (int i = 0; i < 4; ++i) output[i] = (int8_t)(big & 0x7f);\n    return 0;\n}\n"
    )


def test_undefined_behaviour_in_generated_code_fails_the_run(tmp_path):
    """A library whose run overflows a signed int: the sanitized driver stops with a clear error."""
    _need_sanitizers()
    _overflowing_library(tmp_path)
    exe = native.build(tmp_path, sanitize=True)
    assert native.run_batch(exe, np.zeros((1, 4), np.int8), 4).shape == (1, 4)
    with pytest.raises(BuildError, match="undefined behaviour"):
        native.run_batch(exe, np.full((1, 4), 100, np.int8), 4)


def test_sanitized_sample_follows_the_mac_budget():
    """Four inputs for models of ordinary size, fewer for big ones, never none (check.sanitized_inputs)."""
    from tinyconv.check import SANITIZED_INPUTS, SANITIZED_MACS, sanitized_inputs

    assert sanitized_inputs(16, 12_500_000) == SANITIZED_INPUTS  # ic
    assert sanitized_inputs(16, 7_489_664) == SANITIZED_INPUTS  # vww
    assert sanitized_inputs(16, 148_621_312) == 2  # resnet18 at 64x64
    assert sanitized_inputs(16, SANITIZED_MACS // 2) == 2
    assert sanitized_inputs(16, 1_185_005_000) == 1  # wav2letter
    assert sanitized_inputs(16, 10 * SANITIZED_MACS) == 1
    assert sanitized_inputs(2, 1000) == 2 and sanitized_inputs(1, 10**12) == 1 and sanitized_inputs(0, 1000) == 0
    assert sanitized_inputs(16, None) == SANITIZED_INPUTS


def test_host_outputs_fail_on_undefined_behaviour_in_the_sanitized_sample(tmp_path, monkeypatch):
    """The sanitized build runs beside the -O3 one (another thread): its failure still fails the run."""
    _need_sanitizers()
    monkeypatch.setenv("TINYCONV_CACHE", str(tmp_path / "cache"))
    _overflowing_library(tmp_path)
    from tinyconv.check import host_outputs

    assert host_outputs(tmp_path, np.zeros((3, 4), np.int8), 4, macs=100).shape == (3, 4)
    with pytest.raises(BuildError, match="undefined behaviour"):
        host_outputs(tmp_path, np.full((3, 4), 100, np.int8), 4, macs=100)
