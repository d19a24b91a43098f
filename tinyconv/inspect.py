"""`tinyconv inspect`: what a model is made of and what tinyconv would do with it."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from rich.console import Console

from tinyconv import memory
from tinyconv.errors import UnsupportedError
from tinyconv.escape import for_terminal
from tinyconv.ops import op_of


def inspect_model(path) -> dict:
    from tinyconv.frontend import load

    info = {"model": str(path), "unsupported": [], "layers": [], "notes": []}
    try:
        g = load(Path(path))
    except UnsupportedError as e:
        info["unsupported"] = _scan_unsupported(path) or [str(e)]
        info["error"] = str(e)
        return info
    info["notes"] = list(g.notes)
    (inp,), (out,) = g.inputs, g.outputs
    info["input"] = {"name": inp, "shape": list(g.tensors[inp].shape)}
    info["output"] = {"name": out, "shape": list(g.tensors[out].shape)}
    for node in g.nodes:
        op = op_of(node)
        params = sum(g.tensors[i].size for i in node.inputs if g.tensors[i].is_const)
        info["layers"].append({"name": node.name, "op": node.op, "origin": node.origin, "output_shape": list(g.tensors[node.outputs[0]].shape),
                               "macs": op.macs(node, g), "params": params})  # fmt: skip
    info["macs"] = sum(lay["macs"] for lay in info["layers"])
    info["params"] = sum(lay["params"] for lay in info["layers"])
    # Arena estimate: the same plan with every activation at one byte per element (int8).
    g8 = copy.copy(g)
    g8.tensors = {k: (dataclasses.replace(t, dtype="int8") if not t.is_const else t) for k, t in g.tensors.items()}
    plan = memory.plan_memory(g8)
    info["arena_estimate_bytes"] = plan.arena_bytes
    info["arena_lower_bound_bytes"] = plan.lower_bound
    return info


def _scan_unsupported(path) -> list[str]:
    """Every ONNX node whose op type the frontend has no lowering for (not just the first)."""
    try:
        import onnx

    except ImportError:
        return []
    if Path(path).suffix.lower() != ".onnx":
        return []
    from tinyconv.supported_ops import ONNX  # checked against the importer's own table by the suite

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - the importer already named the load error; nothing more to list
        return []
    return [f"{n.op_type} '{n.name}'" for n in m.graph.node if n.op_type not in ONNX]


def print_inspection(info: dict, console: Console) -> None:
    from tinyconv.report import print_layers

    if info["unsupported"]:
        console.print(f"[red]{for_terminal(Path(info['model']).name)}: unsupported[/red]")
        for u in info["unsupported"]:
            console.print(f"  {for_terminal(u)}")
        if info.get("error"):
            console.print(f"first error: {for_terminal(info['error'], max_chars=4000)}")
        return
    for note in info["notes"]:
        console.print(f"note: {for_terminal(note)}")
    print_layers(info["layers"], console, f"{for_terminal(Path(info['model']).name)}: {info['input']['shape']} → {info['output']['shape']}")
    console.print(f"total: {info['macs']:,} MACs, {info['params']:,} parameters; int8 arena ≈ {info['arena_estimate_bytes']:,} B "
                  f"(lower bound {info['arena_lower_bound_bytes']:,} B)")  # fmt: skip
