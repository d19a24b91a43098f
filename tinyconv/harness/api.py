"""The harness API used by `tinyconv check / profile / flash / devices`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyconv.errors import DeviceError
from tinyconv.harness import devices as _devices
from tinyconv.harness import protocol as P
from tinyconv.harness.build import build_firmware, elf_sizes
from tinyconv.harness.devices import Device
from tinyconv.harness.flash import flash_only
from tinyconv.harness.session import Session


@dataclass
class RunResult:
    outputs: np.ndarray  # [N, output_bytes] int8
    device: str
    firmware: str
    link_stats: dict = field(default_factory=dict)


def list_devices() -> list[Device]:
    return _devices.list_devices()


def _device(device) -> Device:
    return device if isinstance(device, Device) else _devices.load_device(device)


def _session(libdir, device, **kw) -> Session:
    dev = _device(device)
    if not dev.can_run:
        raise DeviceError(f"{dev.name} cannot run here: {dev.why_not}")
    fw = build_firmware(Path(libdir), dev, extra_cflags=tuple(kw.pop("extra_cflags", ())))
    return Session(fw, **kw)


def run_inputs(libdir, device: str, xq: np.ndarray, progress=None, **session_kw) -> RunResult:
    """Run every input through the firmware in one session; outputs exactly as the device wrote them."""
    xq = np.ascontiguousarray(xq, dtype=np.int8)
    xq = xq.reshape(len(xq), -1)
    with _session(libdir, device, **session_kw) as s:
        outs = np.empty((len(xq), s.ident.output_bytes), np.int8)
        if progress:
            progress(0, len(xq))
        for k, x in enumerate(xq):
            s.set_input(x)
            s.run()
            outs[k] = s.get_output()
            if progress:
                progress(k + 1, len(xq))
        return RunResult(outs, s.name, str(s.fw.elf), dict(s.link.stats))


def dump_layers(libdir, device: str, x: np.ndarray, **session_kw) -> list[np.ndarray]:
    """Every layer's output for one input, in layer order, as the device computed it."""
    with _session(libdir, device, **session_kw) as s:
        s.set_input(np.asarray(x, np.int8).reshape(-1))
        return [s.dump_layer(k, int(lay["output_bytes"])) for k, lay in enumerate(s.fw.manifest["layers"])]


def profile(libdir, device: str, x: np.ndarray, **session_kw) -> dict:
    with _session(libdir, device, **session_kw) as s:
        s.set_input(np.asarray(x, np.int8).reshape(-1))
        s.run()
        c = s.counters()
        ident, fw = s.ident, s.fw
    sizes = elf_sizes(fw.elf, fw.manifest.get("prefix", "tc_model"))
    res = {"instructions_per_inference": None, "cycles_per_inference": None}
    nl = len(fw.manifest["layers"])
    if ident.counter_kind == P.COUNTER_SYSTICK and ident.counter_hz and fw.device.emulated:
        per_tick = 1e9 / ident.counter_hz  # QEMU -icount shift=0: one instruction per virtual ns
        res["instructions_per_inference"] = int(round(c.total_ticks * per_tick))
        layers = [{"instructions": int(round(t * per_tick))} for t in c.layer_ticks]
        res["unit_note"] = (f"QEMU -icount shift=0: SysTick counts guest instructions at {per_tick:g}-instruction resolution, "
                            f"±1 tick per measurement, not cycles (a real core takes more cycles per instruction)")  # fmt: skip
    elif ident.counter_kind == P.COUNTER_INSTRUCTIONS:
        res["instructions_per_inference"] = int(c.total_ticks)
        layers = [{"instructions": int(t)} for t in c.layer_ticks]
        res["unit_note"] = (f"exact executed-instruction count from a QEMU plugin ({fw.device.run.get('qemu', 'qemu')} "
                            f"-cpu {fw.device.run.get('cpu', fw.device.cpu)}), one inference; not cycles")  # fmt: skip
    elif ident.counter_kind in (P.COUNTER_SYSTICK, P.COUNTER_CYCLES) and not fw.device.emulated:
        res["cycles_per_inference"] = int(c.total_ticks)
        layers = [{"cycles": int(t)} for t in c.layer_ticks]
        res["unit_note"] = f"core clock cycles measured on {fw.device.name}"
    else:
        layers = [{"instructions": None} for _ in range(nl)]
        res["unit_note"] = (f"{fw.device.name} has no deterministic counter: instruction counts are not measured "
                            f"(use qemu-m4/m7/m55 for instruction counts)")  # fmt: skip
    res.update({
        "layers": layers,
        "stack_bytes": int(c.stack_bytes),
        "flash_weights_bytes": sizes["flash_weights_bytes"],
        "flash_code_bytes": sizes["flash_code_bytes"],
        "flash_other_bytes": sizes["flash_other_bytes"],
        "ram_static_bytes": sizes["ram_static_bytes"],
        "firmware_build_id": f"{ident.build_id:08x}",
    })  # fmt: skip
    if res["cycles_per_inference"] is None:
        res.pop("cycles_per_inference")
    return res


def flash(libdir, device) -> str:
    """Build, check the memory budget, and flash (real boards) or just build (emulators)."""
    fw = build_firmware(Path(libdir), _device(device))
    return flash_only(fw)
