"""pytest plugin: reference-check a model on a device in one line of a user's test suite.

    def test_my_model(tinyconv_check):
        tinyconv_check("model.onnx", calib="calib.npy")            # default device: qemu-m4

`--tinyconv-device NAME` (or TINYCONV_DEVICE) overrides the device for every check, e.g. to run the
same suite on a real board; names come from the device registry (`tinyconv devices`) or name a
farm place (`labgrid:...`), and a board file of your own is given with `--tinyconv-device-file PATH`
(or TINYCONV_DEVICE_FILE). The check fails with the mismatch count, the worst difference and the
first differing layer; the report dict is returned for further assertions (accuracy, arena...).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("tinyconv")
    group.addoption("--tinyconv-device", default=None, help="device name for tinyconv_check (default: qemu-m4)")
    group.addoption("--tinyconv-device-file", default=None, help="your own device TOML file for tinyconv_check")


@pytest.fixture
def tinyconv_check(request, tmp_path):
    from tinyconv.check import device_name, run_check
    from tinyconv.cli import DEFAULT_DEVICE
    from tinyconv.errors import TinyconvError
    from tinyconv.harness.devices import load_device, load_device_file
    from tinyconv.harness.labgrid import is_labgrid

    forced_file = request.config.getoption("--tinyconv-device-file") or os.environ.get("TINYCONV_DEVICE_FILE")
    forced = request.config.getoption("--tinyconv-device") or os.environ.get("TINYCONV_DEVICE")
    counter = itertools.count()

    def check(model, *, calib=None, inputs=None, device: str | None = None, labels=None, **kwargs) -> dict:
        dev = forced or device or DEFAULT_DEVICE
        # The work folder is numbered, never named after the device: it stays inside tmp_path.
        workdir = tmp_path / f"tinyconv-check-{next(counter)}"
        try:
            if forced_file:
                dev = load_device_file(forced_file)
            elif not is_labgrid(dev):  # a farm place spec (labgrid:...) is resolved by run_check
                dev = load_device(dev).name
            report, _, _ = run_check(Path(model), device=dev, calib=calib, inputs=inputs, labels=labels, workdir=workdir, **kwargs)
        except TinyconvError as e:
            pytest.fail(f"tinyconv check of {model} on {dev if isinstance(dev, str) else dev.name} could not run: {e}", pytrace=False)
        if not report["bit_exact"]:
            msg = (f"{model} on {device_name(dev)}: {report['mismatches']} of {report['elements']} output bytes differ from the reference "
                   f"(max |diff| {report['max_abs_diff']})")  # fmt: skip
            if report.get("first_divergent_layer"):
                fl = report["first_divergent_layer"]
                msg += f"; first differing layer #{fl['index']} {fl['name']} ({fl['op']})"
            pytest.fail(msg, pytrace=False)
        return report

    return check
