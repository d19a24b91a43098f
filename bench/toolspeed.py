"""Tool speed: how long compile, native build, reference and the native run take per model.

    .venv/bin/python bench/toolspeed.py                                   # resnet18, wav2letter, MLPerf Tiny
    .venv/bin/python bench/toolspeed.py --models resnet18 --runs 5 --json bench/results/toolspeed.json

Per model (host device, 16 inputs, float ONNX + calibration): `compile` (import, quantize,
plan, generate C with incbin weights) and `compile_c` (the same with C-array weights, the
library default); `build` (native build into an empty build cache) and `rebuild` (the same library
again: the cache answers); `reference` (batched int8 reference); `device` (the native batch run);
`check` (`run_check(device="host")` end to end, cold cache), `recheck` (again, other inputs) and
`check_cli` (what `tinyconv check --device host` runs: also the onnxruntime comparison and the
per-layer report, cold cache).
Each time is the best of --runs runs, as wall time and as CPU time (this process's threads plus
its children: gcc, the native run). On a loaded machine wall time is a noisy upper bound and CPU
time the better estimate of an unloaded run. The issue-12 targets are printed beside them.
ResNet-18 (11.7 M parameters, 64x64) and Wav2Letter (23.3 M, 13x100 MFCC) are built here with
seeded random weights (bench/toolspeed_models.py); the MLPerf models come from ../shared/models.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toolspeed_models import calibration, param_count, resnet18, wav2letter  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TINYCONV_SHARED_MODELS", REPO.parent / "shared" / "models")) / "mlperf-tiny"
console = Console(width=200)
# Issue 12's targets (seconds, unloaded 2-core machine): check on 16 inputs, compile.
TARGETS = {"resnet18": {"check": 5.0, "compile": 2.0}, "wav2letter": {"check": 15.0, "compile": 2.0}}
MLPERF_COMPILE_TARGET = 1.0
PHASES = ("compile", "compile_c", "build", "rebuild", "reference", "device", "check", "recheck", "check_cli")


def models(names: list[str], workdir: Path) -> list[tuple[str, Path, np.ndarray, np.ndarray, int]]:
    """(name, model path, calibration, check inputs, parameters) per requested model."""
    out = []
    for name in names:
        if name in ("resnet18", "wav2letter"):
            m, shape = resnet18() if name == "resnet18" else wav2letter()
            path = workdir / f"{name}.onnx"
            onnx.save(m, path)
            out.append((name, path, calibration(shape, 16, 0), calibration(shape, 16, 1), param_count(m)))
        else:
            d = SHARED / name
            if not d.is_dir():
                console.print(f"[yellow]skipping {name}: {d} not found[/yellow]")
                continue
            calib = np.load(d / f"calib_{name}.npy")
            m = onnx.load(d / f"{name}_float.onnx")
            params = int(sum(np.prod(t.dims) for t in m.graph.initializer))
            out.append((name, d / f"{name}_float.onnx", calib[:16], calib[16:32], params))
    return out


def cpu_seconds() -> float:
    """CPU time of this process (all its threads, BLAS included) and of its finished children (gcc, the native run)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


CPU: dict[str, float] = {}


def best(fn, runs: int, phase: str) -> tuple[float, object]:
    """Best wall time of `runs` runs (returned) and best CPU time (kept in CPU[phase])."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        c0, t0 = cpu_seconds(), time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds() - c0)
    CPU[phase] = min(cpus)
    return min(walls), result


def measure(name: str, path: Path, calib: np.ndarray, inputs: np.ndarray, runs: int, tmp: Path) -> dict:
    from tinyconv import native, reference
    from tinyconv.check import prepare_inputs, run_check
    from tinyconv.pipeline import compile_model

    row: dict = {"model": name}
    lib = tmp / f"{name}-lib"
    row["compile"], c = best(lambda: compile_model(path, calib=calib, outdir=lib, weights="incbin"), runs, "compile")
    row["compile_c"], _ = best(lambda: compile_model(path, calib=calib, outdir=tmp / f"{name}-lib-c", weights="c"), runs, "compile_c")
    caches = iter(range(10**6))

    def cold_build():
        os.environ["TINYCONV_CACHE"] = str(tmp / f"cache-{name}-{next(caches)}")
        return native.build(lib, opt="-O3", march_native=True)  # what check --device host builds

    row["build"], exe = best(cold_build, runs, "build")
    row["rebuild"], _ = best(lambda: native.build(lib, opt="-O3", march_native=True), runs, "rebuild")
    xq = prepare_inputs(c.graph, inputs).int8_ir
    row["reference"], want = best(lambda: reference.run_batch(c.graph, xq), runs, "reference")
    out_bytes = c.library.manifest["output"]["bytes"]
    row["device"], got = best(lambda: native.run_batch(exe, xq, out_bytes), runs, "device")
    row["bit_exact"] = bool(np.array_equal(got.reshape(-1), want.reshape(-1)))

    def cold_check():
        os.environ["TINYCONV_CACHE"] = str(tmp / f"cache-{name}-{next(caches)}")
        return run_check(path, device="host", calib=calib, inputs=inputs, compare_onnxruntime=False)

    row["check"], (report, _, _) = best(cold_check, runs, "check")
    row["recheck"], (report2, _, _) = best(lambda: run_check(path, device="host", calib=calib, inputs=inputs[::-1].copy(), compare_onnxruntime=False), runs, "recheck")

    def cold_cli_check():
        os.environ["TINYCONV_CACHE"] = str(tmp / f"cache-{name}-{next(caches)}")
        return run_check(path, device="host", calib=calib, inputs=inputs, compare_onnxruntime=True, layer_report=True)

    row["check_cli"], (report3, _, _) = best(cold_cli_check, runs, "check_cli")
    row["bit_exact"] = row["bit_exact"] and report["bit_exact"] and report2["bit_exact"] and report3["bit_exact"]
    row["inputs"] = int(len(inputs))
    row["macs_per_inference"] = int(report["macs"])
    row["weights_bytes"] = int(sum(t.nbytes for t in c.graph.tensors.values() if t.is_const))
    for k in PHASES:
        row[k] = round(row[k], 3)
        row[f"{k}_cpu"] = round(CPU[k], 3)
    return row


def print_table(rows: list[dict], runs: int) -> None:
    t = Table(title=f"tinyconv tool speed: seconds, best of {runs}, wall (CPU) — host device, 16 inputs")
    for col in ("model", "params", "MACs/inf", *PHASES, "bit-exact", "targets"):
        t.add_column(col, justify="left" if col in ("model", "targets") else "right")
    for r in rows:
        tg = TARGETS.get(r["model"])
        target = f"check ≤ {tg['check']:g}, compile ≤ {tg['compile']:g}" if tg else f"compile < {MLPERF_COMPILE_TARGET:g}"
        t.add_row(r["model"], f"{r['params']:,}", f"{r['macs_per_inference']:,}", *(f"{r[k]:.2f} ({r[k + '_cpu']:.2f})" for k in PHASES), str(r["bit_exact"]), target)
    console.print(t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="resnet18,wav2letter,kws,vww,ic,ad")
    ap.add_argument("--runs", type=int, default=3, help="best of this many runs per phase")
    ap.add_argument("--json", help="write the rows as JSON here")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinyconv-toolspeed-") as tmp:
        for name, path, calib, inputs, params in models(args.models.split(","), Path(tmp)):
            console.print(f"measuring {name} ...")
            row = measure(name, path, calib, inputs, args.runs, Path(tmp))
            row["params"] = params
            rows.append(row)
    print_table(rows, args.runs)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"runs": args.runs, "unit": "seconds, best of runs; <phase>: wall, <phase>_cpu: CPU", "rows": rows}, indent=2) + "\n")
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
