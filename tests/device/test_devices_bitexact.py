"""every_op_graph on every emulated device: outputs and every layer bit-exact with the NumPy
int8 reference; profiles give plausible counts."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import QEMU_DEVICES, need
from tinyconv import reference
from tinyconv.harness import api

pytestmark = pytest.mark.device


@pytest.mark.parametrize("device", list(QEMU_DEVICES))
def test_outputs_and_layers_bit_exact(libs, device):
    need(device)
    c = libs.get(QEMU_DEVICES[device])
    xq = libs.xq(QEMU_DEVICES[device])
    expected = reference.run_batch(c.graph, xq).reshape(len(xq), -1)
    seen = []
    res = api.run_inputs(c.library.outdir, device, xq, progress=lambda k, n: seen.append((k, n)))
    assert res.outputs.dtype == np.int8 and res.outputs.shape == expected.shape
    assert np.count_nonzero(res.outputs != expected) == 0
    assert seen[-1] == (len(xq), len(xq))
    assert res.link_stats["retries"] == 0

    layers = api.dump_layers(c.library.outdir, device, xq[3])
    ref = reference.run(c.graph, {"x": xq[3].reshape(1, 9, 8, 4)}, mode="int8", keep=True)
    assert len(layers) == len(c.graph.nodes)
    for node, got in zip(c.graph.nodes, layers):
        assert np.array_equal(got, ref[node.outputs[0]].reshape(-1)), node.name


def test_layer_dump_windows(libs):
    """A dump window smaller than a layer (as on a RAM-starved board) still returns every byte."""
    need("qemu-m4")
    c = libs.get("cortex-m4")
    x = libs.xq("cortex-m4")[5]
    layers = api.dump_layers(c.library.outdir, "qemu-m4", x, extra_cflags=("-DTCR_DUMP_WINDOW_MAX=100u",))
    ref = reference.run(c.graph, {"x": x.reshape(1, 9, 8, 4)}, mode="int8", keep=True)
    for node, got in zip(c.graph.nodes, layers):
        assert np.array_equal(got, ref[node.outputs[0]].reshape(-1)), node.name


@pytest.mark.parametrize("device", ["qemu-m4", "qemu-m55"])
def test_profile_counts(libs, device):
    need(device)
    c = libs.get(QEMU_DEVICES[device])
    x = libs.xq(QEMU_DEVICES[device])[0]
    p = api.profile(c.library.outdir, device, x)
    total = p["instructions_per_inference"]
    per = [lay["instructions"] for lay in p["layers"]]
    assert len(per) == len(c.library.manifest["layers"])
    macs = sum(lay["macs"] for lay in c.library.manifest["layers"])
    assert macs < total < 200 * macs + 100_000
    assert sum(per) <= total
    assert all(n >= 0 for n in per)
    # every layer that does arithmetic takes more than one counter tick
    for lay, n in zip(c.library.manifest["layers"], per):
        if lay["macs"] > 100:
            assert n > 0, lay["name"]
    assert per[0] >= 0.05 * total  # the 3x3 conv is a large share (with optimized kernels it need not be the largest)
    assert 0 < p["stack_bytes"] < 16384
    assert p["flash_weights_bytes"] > 0 and p["flash_code_bytes"] > p["flash_weights_bytes"] // 10
    assert p["ram_static_bytes"] >= c.library.manifest["arena_bytes"]
    assert "instructions" in p["unit_note"]
    # deterministic under -icount up to the counter's resolution: where the run starts within one
    # SysTick period depends on how long the firmware polled the UART, so totals move by <= 1 tick
    again = api.profile(c.library.outdir, device, x)["instructions_per_inference"]
    assert abs(again - total) <= 40


@pytest.mark.parametrize("device", ["qemu-aarch64", "qemu-aarch64-i8mm"])
def test_profile_aarch64_counts_instructions_exactly(libs, device):
    """The QEMU plugin counts every executed instruction: per inference and per layer, the same
    numbers on every run, the layers adding up to the inference minus the hooks' own few."""
    need(device)
    target = QEMU_DEVICES[device]
    c = libs.get(target)
    x = libs.xq(target)[0]
    p = api.profile(c.library.outdir, device, x)
    total = p["instructions_per_inference"]
    per = [lay["instructions"] for lay in p["layers"]]
    assert len(per) == len(c.library.manifest["layers"])
    macs = sum(lay["macs"] for lay in c.library.manifest["layers"])
    assert macs // 16 < total < 20 * macs + 100_000  # SDOT does at most 16 MACs per instruction
    assert all(n > 0 for n in per)
    assert 0 <= total - sum(per) < 200 * len(per)  # the layer hook's bookkeeping between layers
    assert "exact" in p["unit_note"] and "instruction" in p["unit_note"]
    again = api.profile(c.library.outdir, device, x)
    assert again["instructions_per_inference"] == total and [lay["instructions"] for lay in again["layers"]] == per


def test_profile_without_counter_says_so(libs):
    """A device with no deterministic counter (the native host runner) reports none, not a time."""
    c = libs.get("host")
    p = api.profile(c.library.outdir, "host", libs.xq("host")[0])
    assert p["instructions_per_inference"] is None
    assert all(lay["instructions"] is None for lay in p["layers"])
    assert "not measured" in p["unit_note"]


def test_list_devices():
    devs = {d.name: d for d in api.list_devices()}
    for name in ("qemu-m4", "qemu-m7", "qemu-m55", "qemu-aarch64", "qemu-aarch64-i8mm", "host", "nucleo-l4r5zi", "android-adb"):
        assert name in devs
    assert devs["qemu-m4"].default and devs["qemu-m4"].target == "cortex-m4"
    assert devs["qemu-m55"].target == "cortex-m55" and devs["qemu-aarch64"].target == "aarch64"
    assert devs["qemu-aarch64-i8mm"].target == "aarch64-i8mm" and "sme=off" in devs["qemu-aarch64-i8mm"].run["cpu"]
    for d in devs.values():
        assert d.can_run or d.why_not


def test_large_input(tmp_path):
    """27 KiB inputs go through in 240-byte chunks; an 18 KiB layer is dumped in windows."""
    need("qemu-m4")
    from conftest import big_input_graph
    from tinyconv.fixedpoint import quantize
    from tinyconv.pipeline import compile_model

    calib = np.random.default_rng(3).normal(size=(3, 96, 96, 3)).astype(np.float32)
    c = compile_model(big_input_graph(), calib=calib, target="cortex-m4", outdir=tmp_path / "lib")
    assert c.library.manifest["input"]["bytes"] == 27648
    xq = quantize(calib, *c.graph.tensors["x"].quant.scalar())
    expected = reference.run_batch(c.graph, xq).reshape(len(xq), -1)
    assert np.array_equal(api.run_inputs(c.library.outdir, "qemu-m4", xq[:2]).outputs, expected[:2])
    layers = api.dump_layers(c.library.outdir, "qemu-m4", xq[2])
    ref = reference.run(c.graph, {"x": xq[2].reshape(1, 96, 96, 3)}, keep=True)
    assert layers[0].size == 18432
    for node, got in zip(c.graph.nodes, layers):
        assert np.array_equal(got, ref[node.outputs[0]].reshape(-1)), node.name
