"""`tinyconv profile`: instructions (emulator) or cycles (silicon) per inference and per layer, and memory."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tinyconv.check import device_name, flash_for_device, load_array, prepare_inputs, target_for_device
from tinyconv.escape import for_terminal
from tinyconv.pipeline import compile_model
from tinyconv.progress import phase
from tinyconv.specialise import DEFAULT_LEVEL


def run_profile(model, *, device: str = "qemu-m4", **kw) -> dict:
    from tinyconv.harness.labgrid import hold, is_labgrid

    if not is_labgrid(device):
        return _run_profile(model, device=device, **kw)
    with hold(device) as dev:
        report = _run_profile(model, device=dev, **kw)
    report.update(device=device, labgrid_place=dev.place.name)
    return report


def _run_profile(model, *, device="qemu-m4", calib=None, inputs=None, method: str = "minmax", progress=None, workdir: Path | None = None,
                 optimize: str = DEFAULT_LEVEL) -> dict:  # fmt: skip
    from tinyconv.harness.workdir import work_folder

    with work_folder(workdir, model, calib, target_for_device(device), (method, optimize)) as folder:
        return _profile_in(model, device=device, calib=calib, inputs=inputs, method=method, workdir=folder, progress=progress,
                           optimize=optimize)  # fmt: skip


def _profile_in(model, *, device, calib, inputs, method: str, workdir: Path, progress, optimize: str) -> dict:
    from tinyconv.harness import api

    t0 = time.perf_counter()
    phase(progress, "compiling")
    c = compile_model(model, calib=calib, target=target_for_device(device), outdir=Path(workdir) / "lib", method=method, weights="incbin",
                      optimize=optimize, flash_bytes=flash_for_device(device))  # fmt: skip
    compile_seconds = time.perf_counter() - t0
    source = inputs if inputs is not None else calib
    if source is not None:
        data = load_array(source, "inputs") if isinstance(source, (str, Path)) else np.asarray(source)
        x = prepare_inputs(c.graph, data[:1] if data.ndim > len(c.graph.tensors[c.graph.inputs[0]].shape) - 1 else data).int8_ir[0]
    else:
        x = np.zeros(c.graph.tensors[c.graph.inputs[0]].shape[1:], np.int8)
    phase(progress, f"building, starting {device_name(device)} and profiling")
    res = api.profile(c.library.outdir, device, x.reshape(-1))
    r = dataclasses.asdict(res) if dataclasses.is_dataclass(res) else dict(res)
    man = c.library.manifest
    macs = int(sum(lay["macs"] for lay in man["layers"]))
    per_layer = r.pop("layers", None) or []
    layers = []
    for k, lay in enumerate(man["layers"]):
        row = {"name": lay["name"], "op": lay["op"], "output_shape": lay["output_shape"], "macs": lay["macs"]}
        if k < len(per_layer):
            v = per_layer[k]
            row.update(v if isinstance(v, dict) else {"count": v})
        layers.append(row)
    report = {"model": str(model), "device": device_name(device), "target": man["target"], "macs": macs, **r, "layers": layers,
              "arena_bytes": c.plan.arena_bytes, "arena_lower_bound_bytes": c.plan.lower_bound,
              "compile_seconds": round(compile_seconds, 3)}  # fmt: skip
    per_inf = report.get("instructions_per_inference") or report.get("cycles_per_inference")
    if per_inf and macs:
        report["per_mac"] = round(per_inf / macs, 3)
    return report


def print_profile(r: dict, console: Console | None = None) -> None:
    console = console or Console(emoji=False)
    unit = "instructions" if r.get("instructions_per_inference") is not None else "cycles"
    total = r.get(f"{unit}_per_inference")
    t = Table(title=f"tinyconv profile: {for_terminal(Path(r['model']).name)} on {for_terminal(r['device'])}", show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row(f"{unit} / inference", f"{total:,}" if total is not None else "not measurable on this device")
    if r.get("per_mac") is not None:
        t.add_row(f"{unit} / MAC", f"{r['per_mac']:.2f} ({r['macs']:,} MACs)")
    for key, label in (("arena_bytes", "arena"), ("stack_bytes", "stack high-water"), ("ram_static_bytes", "static RAM"),
                       ("flash_weights_bytes", "flash: weights"), ("flash_code_bytes", "flash: code")):  # fmt: skip
        if r.get(key) is not None:
            t.add_row(label, f"{r[key]:,} B")
    if r.get("unit_note"):
        t.add_row("note", r["unit_note"])
    console.print(t)
    if r.get("layers"):
        lt = Table(title="per layer", title_justify="left")
        for col in ("#", "layer", "op", "MACs", unit, "share"):
            lt.add_column(col, justify="right" if col in ("#", "MACs", unit, "share") else "left")
        for k, lay in enumerate(r["layers"]):
            n = lay.get(unit) if lay.get(unit) is not None else lay.get("count")
            share = f"{100 * n / total:.1f} %" if n is not None and total else ""
            lt.add_row(str(k), for_terminal(lay["name"]), lay["op"], f"{lay['macs']:,}", f"{n:,}" if n is not None else "n/a", share)
        console.print(lt)
