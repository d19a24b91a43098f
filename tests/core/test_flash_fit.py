"""Models whose weights exceed a board's flash get the clean "does not fit" error before anything
is compiled or linked (not `ld: region overflowed`), and every device's declared memory budget
agrees with its firmware linker script."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from ir_graphs import GraphBuilder

from tinyconv.errors import FitError
from tinyconv.harness.build import build_firmware, linker_regions
from tinyconv.harness.devices import list_devices, load_device
from tinyconv.pipeline import compile_model


def _fc_library(tmp_path, outputs: int, target: str, inputs: int = 1024):
    """One fully connected layer with inputs · outputs int8 weights."""
    rng = np.random.default_rng(0)
    b = GraphBuilder("big_fc", (1, inputs))
    y = b.node("big_fc", "fully_connected", ["x", b.const("w", rng.normal(size=(outputs, inputs)) / 32)], act=None)
    g = b.finish(y)
    calib = rng.normal(size=(2, inputs)).astype(np.float32)
    return compile_model(g, calib=calib, target=target, outdir=tmp_path / "lib")


@pytest.mark.slow
@pytest.mark.parametrize(("device", "outputs"), [("qemu-m4", 4500), ("qemu-m55", 2200)])
def test_weights_beyond_flash_are_refused_before_linking(tmp_path, device, outputs):
    """qemu-m4: 4.6 MB of weights overflowed the linker's 4 MiB CODE region (raw ld error).
    qemu-m55: 2.25 MB fit its 2.5 MiB flash budget but not the 2 MiB region constants live in."""
    dev = load_device(device)
    c = _fc_library(tmp_path, outputs, dev.target)
    assert c.library.manifest["weights_bytes"] >= 1024 * outputs
    t0 = time.monotonic()
    with pytest.raises(FitError, match=rf"does not fit {device}.*weights alone need"):
        build_firmware(c.library.outdir, dev)
    assert time.monotonic() - t0 < 5, "refused only after compiling"
    assert not list((c.library.outdir / ".build").glob("fw-*")), "the firmware was built anyway"


@pytest.mark.parametrize("name", [d.name for d in list_devices() if linker_regions(d)])
def test_declared_budgets_match_the_linker_script(name):
    dev = load_device(name)
    regions = linker_regions(dev)
    nonvolatile = sum(v for k, v in regions.items() if k not in ("RAM", "RODATA_REGION"))
    assert dev.flash_bytes is not None and dev.flash_bytes <= nonvolatile, f"{name}: flash budget beyond the linker's code + constant regions"
    assert dev.ram_bytes is not None and dev.ram_bytes <= regions["RAM"], f"{name}: RAM budget beyond the linker's RAM region"
    assert "RODATA_REGION" in regions, f"{name}: linker script without a RODATA_REGION"


@pytest.mark.slow
def test_constant_region_overflow_at_link_time_is_a_fit_error(tmp_path):
    """Weights 128 B under qemu-m55's 2 MiB constant region pass the pre-check; the firmware's own
    constants then overflow it at link time: still the "does not fit" error, not ld's."""
    dev = load_device("qemu-m55")
    if shutil.which(dev.build["cc"]) is None:
        pytest.skip(f"{dev.build['cc']} not installed")
    # weights_bytes grows by a fixed amount per output row (the row's weights plus its bias and
    # requantization record, whose size the kernel variant decides): measure it, then pick a row
    # length that fills the region to within 128 B
    small = [_fc_library(tmp_path / f"probe{n}", n, dev.target).library.manifest["weights_bytes"] for n in (16, 32)]
    extra = (small[1] - small[0]) // 16 - 1024
    fixed = small[0] - 16 * (1024 + extra)
    region = linker_regions(dev)["RODATA_REGION"]
    k = next(k for k in range(1024, 1400, 4) if (region - fixed) % (k + extra) < 128)
    c = _fc_library(tmp_path, (region - fixed) // (k + extra), dev.target, inputs=k)
    assert region - 128 < c.library.manifest["weights_bytes"] <= region
    with pytest.raises(FitError, match=r"does not fit qemu-m55 .*SRAM region is \d+ B too small"):
        build_firmware(c.library.outdir, dev)
