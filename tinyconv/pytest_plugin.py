"""pytest plugin: reference-check a model on a device in one line of a user's test suite.

    def test_my_model(tinyconv_check):
        tinyconv_check("model.onnx", calib="calib.npy")            # default device: qemu-m4

`--tinyconv-device NAME` (or TINYCONV_DEVICE) overrides the device for every check, e.g. to run the
same suite on a real board. The check fails with the mismatch count, the worst difference and the
first differing layer; the report dict is returned for further assertions (accuracy, arena...).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("tinyconv")
    group.addoption("--tinyconv-device", default=None, help="device for tinyconv_check (default: qemu-m4)")


@pytest.fixture
def tinyconv_check(request, tmp_path):
    from tinyconv.check import run_check
    from tinyconv.cli import DEFAULT_DEVICE
    from tinyconv.errors import TinyconvError

    forced = request.config.getoption("--tinyconv-device") or os.environ.get("TINYCONV_DEVICE")

    def check(model, *, calib=None, inputs=None, device: str | None = None, labels=None, **kwargs) -> dict:
        dev = forced or device or DEFAULT_DEVICE
        try:
            report, _, _ = run_check(Path(model), device=dev, calib=calib, inputs=inputs, labels=labels,
                                     workdir=tmp_path / f"tinyconv-{dev}", **kwargs)  # fmt: skip
        except TinyconvError as e:
            pytest.fail(f"tinyconv check of {model} on {dev} could not run: {e}", pytrace=False)
        if not report["bit_exact"]:
            msg = f"{model} on {dev}: {report['mismatches']} of {report['elements']} output bytes differ from the reference (max |diff| {report['max_abs_diff']})"
            if report.get("first_divergent_layer"):
                fl = report["first_divergent_layer"]
                msg += f"; first differing layer #{fl['index']} {fl['name']} ({fl['op']})"
            pytest.fail(msg, pytrace=False)
        return report

    return check
