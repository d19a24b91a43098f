"""tinyconv benchmark: model × route × device → bit-exactness, SQNR, instructions, memory.

    .venv/bin/python bench/run.py                       # everything found, default devices
    .venv/bin/python bench/run.py --models kws,ad --devices qemu-m4 --json bench/results/latest.json

Numbers come from the emulator: instructions (not cycles) per inference, counted deterministically
(see README, "Profiling"). Routes: `float` (float ONNX + calibration), `qdq` (pre-quantized ONNX),
`tflite` (int8 .tflite). The MLPerf Tiny models are read from ../shared/models when present.
On the phone devices (qemu-aarch64, qemu-aarch64-i8mm) each row also shows LiteRT + XNNPACK's count
on the same emulated core (bench/incumbents.py) and tinyconv's ratio to it. Rows at `--optimize size`
on the .tflite route show commit 035073e's instructions and code flash beside their own (the size
level must stay at or below both).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from incumbents import xnnpack  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TINYCONV_SHARED_MODELS", REPO.parent / "shared" / "models")) / "mlperf-tiny"  # as tests/conftest.py
EXAMPLE = REPO / "examples" / "digits"
console = Console(width=280)  # a wide table even when piped to a file (never cut)


# TensorFlow Lite Micro + CMSIS-NN on the same boards, seed-0 .tflite input, QEMU instruction
# counts (../shared/models/README.md): the incumbent each row's `ratio` is taken against.
TFLM_CMSIS_NN = {
    "qemu-m4": {"kws": 7_696_428, "vww": 24_101_938, "ic": 29_863_175, "ad": 582_944},
    "qemu-m7": {"kws": 7_642_175, "vww": 24_025_564, "ic": 30_025_869, "ad": 583_246},
    "qemu-m55": {"kws": 1_812_130, "vww": 6_558_314, "ic": 4_911_696, "ad": 149_997},
}

# Commit 035073e, before the per-layer variants (the code --optimize size must not exceed, at no
# more instructions): .tflite route, seed-0 input, (instructions per inference, code flash bytes).
BEFORE_VARIANTS = {
    "qemu-m4": {"kws": (8_668_200, 20_296), "vww": (27_304_560, 21_292), "ic": (30_028_520, 17_244), "ad": (709_160, 5_100)},
    "qemu-m7": {"kws": (8_779_160, 18_796), "vww": (27_713_520, 19_796), "ic": (30_199_320, 15_976), "ad": (715_800, 4_880)},
    "qemu-m55": {"kws": (2_953_094, 15_232), "vww": (9_206_500, 16_232), "ic": (7_934_062, 12_812), "ad": (136_531, 5_356)},
}


@dataclass
class Case:
    model: str
    route: str
    path: Path
    calib: Path | None
    inputs: Path | None  # int8 inputs (tflite) or float inputs


def cases() -> list[Case]:
    out = [Case("digits", "float", EXAMPLE / "digits_cnn.onnx", EXAMPLE / "calib.npy", EXAMPLE / "test_x.npy")]
    tfl = {"kws": "kws_ref_model", "vww": "vww_96_int8", "ic": "pretrainedResnet_quant", "ad": "ad01_int8"}
    if SHARED.is_dir():
        for task, stem in tfl.items():
            d = SHARED / task
            calib = d / f"calib_{task}.npy"
            out.append(Case(task, "float", d / f"{task}_float.onnx", calib, calib))
            out.append(Case(task, "qdq", d / f"{task}_qdq.onnx", None, calib))
            out.append(Case(task, "tflite", d / f"{stem}.tflite", None, d / f"{stem}.seed0_input0.npy"))
    return out


def run_case(case: Case, device: str, n_check: int, optimize: str = "balanced") -> dict:
    from tinyconv.check import run_check
    from tinyconv.profile import run_profile

    row = {"model": case.model, "route": case.route, "device": device, "optimize": optimize}
    inputs = np.load(case.inputs)
    check_inputs = inputs[:n_check] if inputs.shape[0] > n_check else inputs
    t0 = time.perf_counter()
    report, _, compiled = run_check(case.path, device=device, calib=case.calib, inputs=check_inputs, compare_onnxruntime=False,
                                    optimize=optimize)  # fmt: skip
    row.update(bit_exact=report["bit_exact"], checked_inputs=report["inputs"], mismatches=report["mismatches"],
               sqnr_db=(report["sqnr_db"][0]["sqnr_db"] if report["sqnr_db"] else None), check_seconds=round(time.perf_counter() - t0, 2))  # fmt: skip
    if device != "host":
        prof = run_profile(case.path, device=device, calib=case.calib, inputs=check_inputs[:1], optimize=optimize)
        for k in ("instructions_per_inference", "cycles_per_inference", "per_mac", "macs", "arena_bytes", "stack_bytes",
                  "flash_weights_bytes", "flash_code_bytes", "ram_static_bytes", "compile_seconds"):  # fmt: skip
            if k in prof:
                row[k] = prof[k]
    else:
        row["arena_bytes"] = compiled.plan.arena_bytes
        row["macs"] = report["macs"]
    row["arena_lower_bound_bytes"] = compiled.plan.lower_bound
    tflm = TFLM_CMSIS_NN.get(device, {}).get(case.model)
    if tflm and row.get("instructions_per_inference"):
        row["tflm_cmsis_nn_instructions"] = tflm
        row["ratio_vs_tflm"] = round(row["instructions_per_inference"] / tflm, 3)
    before = BEFORE_VARIANTS.get(device, {}).get(case.model)
    if before and case.route == "tflite" and optimize == "size":  # same model file and input as the figures
        row["instr_035073e"], row["code_035073e"] = before
    ref = xnnpack(device, case.model)
    if ref and row.get("instructions_per_inference"):
        row["xnnpack_instructions"] = ref
        row["vs_xnnpack"] = round(row["instructions_per_inference"] / ref, 3)
    return row



def print_table(rows: list[dict]) -> None:
    cols = [("model", "model"), ("route", "route"), ("device", "device"), ("optimize", "optimize"), ("bit_exact", "bit-exact"),
            ("sqnr_db", "SQNR dB"), ("instructions_per_inference", "instr/inf"), ("tflm_cmsis_nn_instructions", "TFLM+CMSIS-NN"),
            ("ratio_vs_tflm", "ratio"), ("xnnpack_instructions", "LiteRT+XNNPACK"), ("vs_xnnpack", "x XNNPACK"),
            ("per_mac", "instr/MAC"), ("arena_bytes", "arena B"), ("arena_lower_bound_bytes", "arena LB B"),
            ("stack_bytes", "stack B"), ("flash_weights_bytes", "flash w B"), ("flash_code_bytes", "flash code B"),
            ("instr_035073e", "035073e instr"), ("code_035073e", "035073e code B"), ("compile_seconds", "compile s")]  # fmt: skip
    t = Table(title="tinyconv bench (QEMU instruction counts)", title_justify="left")
    for _, label in cols:
        t.add_column(label, justify="left" if label in ("model", "route", "device", "optimize") else "right")
    for r in rows:
        cells = []
        for key, _ in cols:
            v = r.get(key)
            if key == "bit_exact":
                v = "error" if r.get("error") else (f"yes ({r['checked_inputs']})" if v else f"NO ({r.get('mismatches')})")
            elif key == "ratio_vs_tflm" and v is not None:
                v = f"{v:.3f}x"
            elif isinstance(v, float):
                v = f"{v:.2f}"
            elif isinstance(v, int):
                v = f"{v:,}"
            cells.append("" if v is None else str(v))
        t.add_row(*cells)
    console.print(t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="", help="comma-separated: digits,kws,vww,ic,ad (default: all found)")
    ap.add_argument("--routes", default="float,qdq,tflite")
    ap.add_argument("--devices", default="qemu-m4,qemu-m7,qemu-m55,qemu-aarch64,qemu-aarch64-i8mm")
    ap.add_argument("--check-inputs", type=int, default=4, help="inputs compared bit for bit per case")
    ap.add_argument("--optimize", default="speed,balanced,size",
                    help="comma-separated --optimize levels: speed, balanced (the default), size (rows on the .tflite route show 035073e's figures)")
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    wanted = set(filter(None, args.models.split(",")))
    routes = set(args.routes.split(","))
    rows = []
    for case in cases():
        if (wanted and case.model not in wanted) or case.route not in routes or not case.path.exists():
            continue
        for device in args.devices.split(","):
            for level in args.optimize.split(","):
                console.print(f"[dim]{case.model} / {case.route} / {device} / {level}…[/dim]")
                try:
                    rows.append(run_case(case, device, args.check_inputs, level))
                except Exception as e:  # a failed case is a row, not the end of the bench
                    rows.append({"model": case.model, "route": case.route, "device": device, "optimize": level,
                                 "error": f"{type(e).__name__}: {e}"})  # fmt: skip
                    console.print(f"[red]{case.model}/{case.route}/{device}/{level}: {e}[/red]")
                    if "--debug" in sys.argv:
                        traceback.print_exc()
    print_table(rows)
    text = json.dumps(rows, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0 if all(r.get("bit_exact") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
