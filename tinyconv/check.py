"""The reference check: compile, run every input on a device, compare every output byte with the
NumPy int8 reference, and say where a difference starts.

`host` builds the generated library natively with a batch driver (fast, no protocol); the first
inputs also run under AddressSanitizer and UBSan (`-fno-sanitize-recover`) when the compiler
supports them (host_outputs); every other
device goes through the harness (firmware + framed serial protocol).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyconv import native, reference
from tinyconv.errors import BuildError, DataError, TinyconvError
from tinyconv.fixedpoint import dequantize, quantize
from tinyconv.ir import Graph
from tinyconv.pipeline import Compiled, compile_model, load_calibration
from tinyconv.metrics import float_metrics, layer_diffs, layer_float_metrics
from tinyconv.progress import phase
from tinyconv.quantize import sqnr_db
from tinyconv.report import compare
from tinyconv.specialise import DEFAULT_LEVEL

DEVICE_TARGETS = {"host": "host", "qemu-m4": "cortex-m4", "qemu-m7": "cortex-m7", "qemu-m55": "cortex-m55", "qemu-aarch64": "aarch64",
                  "qemu-aarch64-i8mm": "aarch64-i8mm"}


def target_for_device(device) -> str:
    """The compile target of a registry device name or of a Device (a --device-file, a labgrid place)."""
    if not isinstance(device, str):
        return device.target
    if device in DEVICE_TARGETS:
        return DEVICE_TARGETS[device]
    from tinyconv.harness.devices import load_device

    return load_device(device).target


def device_name(device) -> str:
    return device if isinstance(device, str) else device.name


def flash_for_device(device) -> int | None:
    """The flash of the part a device stands for (None when it states none): the budget the
    faster kernel variants' extra flash must fit."""
    from tinyconv.harness.devices import load_device

    if not isinstance(device, str):
        return device.flash_bytes
    try:
        return load_device(device).flash_bytes
    except TinyconvError:
        return None


@dataclass
class Inputs:
    int8_ir: np.ndarray  # [N, *IR input shape without batch], what the device receives
    float_onnx: np.ndarray | None  # the float inputs in the ONNX layout, when known


def prepare_inputs(graph: Graph, data) -> Inputs:
    """Float inputs are quantized by the model-edge rule (round half away from zero); int8 used as is."""
    (inp,) = graph.inputs
    lay = graph.io_layout.get(inp)
    want = tuple(lay.onnx_shape[1:]) if lay else graph.tensors[inp].shape[1:]
    arr = np.asarray(data)
    if arr.ndim == len(want):
        arr = arr[None]
    if tuple(arr.shape[1:]) != tuple(want):
        raise DataError(f"inputs have shape {list(arr.shape)}; the model input '{inp}' needs [N, {', '.join(map(str, want))}]")
    s, z = graph.tensors[inp].quant.scalar()
    if np.issubdtype(arr.dtype, np.floating):
        return Inputs(quantize(reference.onnx_in(graph, arr.astype(np.float32)), s, z), arr.astype(np.float32))
    if arr.dtype == np.int8:
        return Inputs(reference.onnx_in(graph, arr).astype(np.int8), None)
    raise DataError(f"inputs must be float32 or int8 (got {arr.dtype})")


def _running(progress):
    """Passes counts on to `progress`, announcing the "running" phase with the first one."""
    if progress is None:
        return None
    started = False

    def count(done: int, total: int) -> None:
        nonlocal started
        if not started:
            started = True
            phase(progress, "running")
        progress(done, total)

    return count


def load_array(path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {what} '{path}': {e}") from None


def device_outputs(compiled: Compiled, device: str, xq: np.ndarray, progress=None) -> np.ndarray:
    libdir = compiled.library.outdir
    out_bytes = compiled.library.manifest["output"]["bytes"]
    if device == "host":
        return host_outputs(libdir, xq, out_bytes, macs=sum(lay["macs"] for lay in compiled.library.manifest["layers"]))
    from tinyconv.harness import api

    return np.asarray(api.run_inputs(libdir, device, xq.reshape(len(xq), -1), progress=progress).outputs).reshape(len(xq), out_bytes)


SANITIZED_INPUTS = 4  # ASan + UBSan code runs 10-20x slower: a sample of the inputs, every one in the -O3 build
# ... and at most this many MACs of them (~0.6 s of sanitized code on a 2-core x86 host), but always
# one input. A smaller sample loses little: the generated code's loops and addresses follow from the
# shapes alone (values only select results: clamps, maxima, entries of 256-entry tables), so one
# input already makes every memory access ASan checks; and prepare refuses any layer whose int32 sums
# could overflow for some input. More inputs add values through the same arithmetic for UBSan, which
# the random-graph and fuzz tests run under sanitizers on every input.
SANITIZED_MACS = 400_000_000


def sanitized_inputs(n: int, macs: int | None) -> int:
    """How many of n inputs the sanitized build runs, for a model of `macs` per inference."""
    k = min(n, SANITIZED_INPUTS)
    return max(min(n, 1), min(k, SANITIZED_MACS // macs)) if macs else k


def host_outputs(libdir: Path, xq: np.ndarray, out_bytes: int, macs: int | None = None) -> np.ndarray:
    """Every input through an -O3 native build (integer-only C: -O3 and this CPU's vector units
    cannot change a byte); the first sanitized_inputs() also through an ASan + UBSan build with
    -fno-sanitize-recover when the compiler has them, whose outputs must be the same bytes.
    Undefined behaviour thus fails the check, by a sanitizer report or by the two builds disagreeing.
    The two builds and runs are separate processes started from two threads: they overlap."""

    def sanitized() -> np.ndarray | None:
        if not native.sanitizers_available():
            return None
        k = sanitized_inputs(len(xq), macs)
        return native.run_batch(native.build(libdir, sanitize=True, opt="-O3", march_native=True), xq[:k], out_bytes, timeout=600)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(sanitized)
        got = native.run_batch(native.build(libdir, opt="-O3", march_native=True), xq, out_bytes, timeout=600)
        san = pending.result()
    if san is not None:
        bad = np.flatnonzero((san != got[: len(san)]).any(axis=1))
        if bad.size:
            raise BuildError(f"the sanitized and the optimized native builds disagree on input {int(bad[0])}: "
                             f"the generated code depends on undefined behaviour")  # fmt: skip
    return got


def device_layers(compiled: Compiled, device: str, x: np.ndarray) -> list[np.ndarray]:
    libdir = compiled.library.outdir
    if device == "host":
        return native.dump_layers(libdir, x, [lay["output_bytes"] for lay in compiled.library.manifest["layers"]])
    from tinyconv.harness import api

    return api.dump_layers(libdir, device, x.reshape(-1))


def first_divergent_layer(compiled: Compiled, device: str, x: np.ndarray) -> dict | None:
    g = compiled.graph
    (inp,) = g.inputs
    ref = reference.run(g, {inp: x.reshape(g.tensors[inp].shape)}, mode="int8", keep=True)
    got = device_layers(compiled, device, x)
    for k, (node, d) in enumerate(zip(g.nodes, got)):
        e = ref[node.outputs[0]].reshape(-1)
        diff = np.abs(d.astype(np.int16) - e.astype(np.int16))
        if diff.any():
            return {"index": k, "name": node.name, "op": node.op, "mismatches": int(np.count_nonzero(diff)), "max_abs_diff": int(diff.max())}
    return None


LAYER_METRIC_INPUTS = 8  # per-layer float metrics are diagnostic; a few inputs show where the error grows


def _add_layer_errors(report: dict, compiled: Compiled, device: str, xq: np.ndarray, int8_head: dict, float_head: dict | None, progress) -> None:
    """`int8_head` / `float_head`: every reference tensor of the first LAYER_METRIC_INPUTS inputs."""
    g = compiled.graph
    phase(progress, f"comparing every layer on {getattr(device, 'name', device)}")
    diffs = layer_diffs(g, device_layers(compiled, device, xq[0]), ref={k: v[0] for k, v in int8_head.items()})
    fm = {}
    if float_head is not None:
        phase(progress, "float metrics per layer")
        fm = layer_float_metrics(g, float_head, int8_head)
    for row, node, d in zip(report["layers"], g.nodes, diffs):
        row.update(d)
        row["float_metrics"] = fm.get(node.outputs[0])


def onnxruntime_outputs(model_path: Path, float_onnx: np.ndarray) -> np.ndarray | None:
    """Float outputs from onnxruntime for an ONNX model, or None where that does not apply."""
    if Path(model_path).suffix.lower() != ".onnx":
        return None
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    try:
        sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        (i,) = sess.get_inputs()
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        return np.stack([sess.run(None, {i.name: x.reshape(shape).astype(np.float32)})[0][0] for x in float_onnx])
    except Exception:  # noqa: BLE001 - onnxruntime refuses a model tinyconv accepts: no comparison, not a crash after the device run
        return None


def run_check(model, *, device: str = "host", **kw) -> tuple[dict, np.ndarray, Compiled]:
    """Returns (report, device outputs [N, *ONNX output shape] int8, the compiled model).
    `labgrid:...` devices hold their farm place for the whole check (runs and layer dumps)."""
    from tinyconv.harness.labgrid import hold, is_labgrid

    if not is_labgrid(device):
        return _run_check(model, device=device, **kw)
    with hold(device) as dev:
        report, got, compiled = _run_check(model, device=dev, **kw)
    report["device"] = device
    report["labgrid_place"] = dev.place.name
    return report, got, compiled


def _run_check(
    model,
    *,
    device="host",  # a registry name or a Device (a --device-file, a labgrid place)
    calib=None,
    inputs=None,
    labels=None,
    method: str = "minmax",
    workdir: Path | None = None,
    progress=None,
    compare_onnxruntime: bool = True,
    layer_report: bool = False,
    optimize: str = DEFAULT_LEVEL,
) -> tuple[dict, np.ndarray, Compiled]:
    """Returns (report, device outputs [N, *ONNX output shape] int8, the compiled model).
    layer_report adds per-layer device-vs-reference differences (one more device session, on the
    first input) and per-layer float metrics (the int8 reference vs the float model, first
    LAYER_METRIC_INPUTS inputs) to report["layers"].
    `workdir`: a build dir (a locked, content-keyed entry is used); default a temp folder."""
    from tinyconv.harness.workdir import work_folder

    with work_folder(workdir, model, calib, target_for_device(device), (method, optimize)) as folder:
        return _check_in(model, device=device, calib=calib, inputs=inputs, labels=labels, method=method, workdir=folder,
                         progress=progress, compare_onnxruntime=compare_onnxruntime, layer_report=layer_report,
                         optimize=optimize)  # fmt: skip


def _check_in(model, *, device, calib, inputs, labels, method, workdir: Path, progress, compare_onnxruntime,
              layer_report, optimize) -> tuple[dict, np.ndarray, Compiled]:  # fmt: skip
    t0 = time.perf_counter()
    phase(progress, "compiling")
    compiled = compile_model(model, calib=calib, target=target_for_device(device), outdir=Path(workdir) / "lib", method=method, weights="incbin",
                             optimize=optimize, flash_bytes=flash_for_device(device))  # fmt: skip
    g = compiled.graph
    if inputs is None:
        if calib is None:
            raise DataError("give --inputs X.npy (or --calib for a float model): there is nothing to run")
        data = calib if not isinstance(calib, (str, Path)) else load_array(calib, "calibration data")
    else:
        data = inputs if not isinstance(inputs, (str, Path)) else load_array(inputs, "inputs")
    ins = prepare_inputs(g, data)
    head = LAYER_METRIC_INPUTS if layer_report else 0  # their every tensor is kept for the layer report
    expected, int8_head = reference.run_batch_keeping(g, ins.int8_ir, head)
    phase(progress, f"building and starting {device_name(device)}")
    got = device_outputs(compiled, device, ins.int8_ir, _running(progress)).reshape(expected.shape).astype(np.int8)
    report = {"model": str(model) if not isinstance(model, Graph) else g.name, "device": device_name(device)}
    report.update(compare(got, expected))
    report["inputs"] = int(len(ins.int8_ir))
    report["first_divergent_layer"] = None
    if not report["bit_exact"] and report.get("mismatched_inputs"):
        report["first_divergent_layer"] = first_divergent_layer(compiled, device, ins.int8_ir[report["mismatched_inputs"][0]])
    man = compiled.library.manifest
    report["arena_bytes"] = compiled.plan.arena_bytes
    report["arena_lower_bound_bytes"] = compiled.plan.lower_bound
    (out,) = g.outputs
    so, zo = g.tensors[out].quant.scalar()
    got_onnx = reference.onnx_out(g, got)
    deq = dequantize(got_onnx, so, zo)
    report["outputs"] = [{"name": out, "shape": list(got_onnx.shape[1:]), "scale": so, "zero_point": zo, "elements": report["elements"],
                          "mismatches": report["mismatches"], "max_abs_diff": report["max_abs_diff"], "float_metrics": None}]  # fmt: skip
    report["sqnr_db"] = []
    float_ref = float_head = None
    if compiled.float_graph is not None:
        fin = ins.float_onnx if ins.float_onnx is not None else dequantize(data, *g.tensors[g.inputs[0]].quant.scalar())
        float_ir, float_head = reference.run_batch_keeping(compiled.float_graph, reference.onnx_in(compiled.float_graph, fin), head, mode="float")
        float_ref = reference.onnx_out(compiled.float_graph, float_ir)
        report["sqnr_db"].append({"name": out, "sqnr_db": sqnr_db(float_ref, deq)})
        report["outputs"][0]["float_metrics"] = float_metrics(float_ref, deq)
        if compare_onnxruntime and not isinstance(model, Graph):
            ort_out = onnxruntime_outputs(Path(model), fin)
            if ort_out is not None:
                report["sqnr_vs_onnxruntime_db"] = [{"name": out, "sqnr_db": sqnr_db(ort_out.reshape(deq.shape), deq)}]
    if labels is not None:
        y = np.asarray(labels if not isinstance(labels, (str, Path)) else load_array(labels, "labels")).reshape(-1)
        if len(y) != len(got):
            raise DataError(f"{len(y)} labels for {len(got)} inputs")
        report["int8_accuracy"] = float(np.mean(deq.reshape(len(y), -1).argmax(axis=1) == y))
        if float_ref is not None:
            report["float_accuracy"] = float(np.mean(float_ref.reshape(len(y), -1).argmax(axis=1) == y))
    report["layers"] = [{"name": lay["name"], "op": lay["op"], "output_shape": lay["output_shape"], "macs": lay["macs"]} for lay in man["layers"]]
    if layer_report:
        _add_layer_errors(report, compiled, device, ins.int8_ir, int8_head, float_head, progress)
    report["macs"] = int(sum(lay["macs"] for lay in man["layers"]))
    report["notes"] = compiled.notes
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report, got_onnx, compiled
