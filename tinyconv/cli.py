"""tinyconv command line. Every user error ends as one `error: ...` line and a non-zero exit code."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tinyconv import __version__
from tinyconv.errors import BuildError, TinyconvError
from tinyconv.escape import for_terminal

console = Console(emoji=False)  # model text is printed through escape.for_terminal; no :emoji: codes
err_console = Console(stderr=True, emoji=False)

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "digits"


@contextmanager
def progress_bar(label: str):
    """A callback(done, total) that drives a rich progress bar (silent when not a terminal)."""
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console, transient=True) as p:
        task = p.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            p.update(task, completed=done, total=total)

        yield update


def cmd_compile(args) -> int:
    from tinyconv.codegen import check_prefix
    from tinyconv.pipeline import compile_model

    check_prefix(args.prefix)  # before the (slow) calibration
    with progress_bar("calibrating") as prog:
        c = compile_model(args.model, calib=args.calib, target=args.target, outdir=Path(args.output), method=args.method, prefix=args.prefix, progress=prog)
    for note in c.notes:
        console.print(f"note: {for_terminal(note)}")
    man = c.library.manifest
    console.print(f"[bold]{for_terminal(Path(args.model).name)}[/bold] → {for_terminal(args.output)}/ for {args.target}: {len(man['layers'])} layers, "
                  f"{sum(lay['macs'] for lay in man['layers']):,} MACs")  # fmt: skip
    console.print(f"arena {c.plan.arena_bytes:,} B (lower bound {c.plan.lower_bound:,} B), "
                  f"weights {sum(t.nbytes for t in c.graph.tensors.values() if t.is_const):,} B, compiled in {c.seconds:.2f} s")  # fmt: skip
    console.print("files: " + ", ".join(p.name for p in c.library.files))
    if c.float_graph is not None and args.sqnr:
        from tinyconv.pipeline import load_calibration
        from tinyconv.quantize import layer_sqnr
        from tinyconv.report import print_layers

        rows = layer_sqnr(c.float_graph, c.graph, load_calibration(args.calib, c.float_graph)[: args.sqnr_inputs])
        print_layers([{"name": r.node, "op": r.op, "sqnr_db": r.sqnr_db} for r in rows], console, "per-layer SQNR (int8 vs float)")
    return 0


def cmd_inspect(args) -> int:
    from tinyconv.inspect import inspect_model, print_inspection

    info = inspect_model(args.model)
    if args.json:
        from tinyconv.report import to_json

        to_json(info, Path(args.json))
    print_inspection(info, console)
    return 0 if not info["unsupported"] else 1


def chosen_device(args):
    """`--device NAME` (the registry only; `labgrid:...` a farm place), or a user's own `--device-file PATH`."""
    from tinyconv.harness.devices import load_device, load_device_file
    from tinyconv.harness.labgrid import is_labgrid

    if getattr(args, "device_file", None):
        return load_device_file(args.device_file)
    if not is_labgrid(args.device):
        load_device(args.device)  # refuse anything that is not a registry name, before compiling
    return args.device


def cmd_check(args) -> int:
    from tinyconv.check import device_name, run_check
    from tinyconv.report import print_check, to_json, to_junit

    device = chosen_device(args)
    with progress_bar(f"running on {for_terminal(device_name(device))}") as prog:
        report, outputs, _ = run_check(
            args.model, device=device, calib=args.calib, inputs=args.inputs, labels=args.labels,
            method=args.method, workdir=Path(args.build_dir) if args.build_dir else None, progress=prog,
        )  # fmt: skip
    if args.save_outputs:
        np.save(args.save_outputs, outputs)
    if args.json:
        to_json(report, Path(args.json))
    if args.junit:
        to_junit(report, Path(args.junit))
    print_check(report, console)
    return 0 if report["bit_exact"] else 1


def cmd_profile(args) -> int:
    from tinyconv.profile import print_profile, run_profile
    from tinyconv.report import to_json

    from tinyconv.check import device_name

    device = chosen_device(args)
    with progress_bar(f"profiling on {for_terminal(device_name(device))}") as prog:
        result = run_profile(args.model, device=device, calib=args.calib, inputs=args.inputs, method=args.method, progress=prog)
    if args.json:
        to_json(result, Path(args.json))
    print_profile(result, console)
    return 0


def cmd_flash(args) -> int:
    from tinyconv.check import device_name, target_for_device
    from tinyconv.harness import api
    from tinyconv.pipeline import compile_model

    from tinyconv.harness.workdir import work_folder

    device = chosen_device(args)
    target = target_for_device(device)
    with work_folder(Path(args.build_dir or "build/flash"), args.model, args.calib, target, (args.method,)) as folder:
        c = compile_model(args.model, calib=args.calib, target=target, outdir=folder / "lib", method=args.method)
        result = api.flash(c.library.outdir, device)
    console.print(f"flashed {for_terminal(Path(args.model).name)} to {for_terminal(device_name(device))}: {for_terminal(result)}")
    return 0


def cmd_devices(args) -> int:
    from rich.table import Table

    from tinyconv.harness import api

    t = Table(title="devices", title_justify="left")
    for c in ("name", "cpu", "runs here", "description"):
        t.add_column(c)
    for d in api.list_devices():
        t.add_row(*map(for_terminal, (d.name, d.cpu, "yes" if d.can_run else f"no: {d.why_not}", d.description)))
    console.print(t)
    return 0


def cmd_quantize(args) -> int:
    from tinyconv.export_qdq import export_qdq
    from tinyconv.pipeline import compile_model

    from tinyconv.errors import DataError, ModelError

    if Path(args.model).suffix.lower() != ".onnx":
        raise ModelError(f"'{Path(args.model).name}': quantize writes QDQ ONNX from an ONNX model", hint="give an .onnx file")
    c = compile_model(args.model, calib=args.calib, method=args.method)
    export_qdq(args.model, c.graph, Path(args.output))
    console.print(f"wrote {for_terminal(args.output)}: tinyconv's int8 quantization as QDQ ONNX")
    if not args.crosscheck:
        return 0
    import json

    from tinyconv.check import load_array, prepare_inputs
    from tinyconv.crosscheck import layerwise

    if not (args.inputs or args.calib):
        raise DataError("--crosscheck needs inputs: give --inputs X.npy (or --calib)")
    data = load_array(args.inputs or args.calib, "inputs")
    cc = layerwise(c.graph, prepare_inputs(c.graph, data).int8_ir)
    from rich.table import Table

    t = Table(title="onnxruntime vs tinyconv, per layer on identical int8 inputs", title_justify="left")
    for col in ("tensor", "elements", "identical", "max |diff| (LSB)"):
        t.add_column(col, justify="left" if col == "tensor" else "right")
    for lay in cc.layers:
        t.add_row(for_terminal(lay.tensor, max_chars=60), f"{lay.elements:,}", f"{100 * lay.identical_fraction:.2f} %", str(lay.max_abs_diff))
    console.print(t)
    verdict = "PASS" if cc.ok else "FAIL"
    console.print(f"{verdict}: max |diff| {cc.max_abs_diff} LSB (bound 1), identical {100 * cc.identical_fraction:.3f} % (bound 99 %)")
    if args.json:
        Path(args.json).write_text(json.dumps({"ok": cc.ok, "max_abs_diff": cc.max_abs_diff, "identical_fraction": cc.identical_fraction,
                                               "layers": [vars(lay) for lay in cc.layers]}, indent=2))  # fmt: skip
    return 0 if cc.ok else 1


def cmd_demo(args) -> int:
    """Compile the bundled example, check it bit-exact on an emulated board, print its profile."""
    from tinyconv.check import run_check
    from tinyconv.report import print_check

    model = EXAMPLE_DIR / "digits_cnn.onnx"
    chosen_device(args)
    console.rule(f"tinyconv demo: {model.name} on {args.device}")
    with progress_bar(f"compiling and running on {args.device}") as prog:
        report, _, _ = run_check(model, device=args.device, calib=EXAMPLE_DIR / "calib.npy", inputs=EXAMPLE_DIR / "test_x.npy",
                                 labels=EXAMPLE_DIR / "test_y.npy", progress=prog)  # fmt: skip
    print_check(report, console)
    if args.device != "host":
        from tinyconv.profile import print_profile, run_profile

        with progress_bar("profiling") as prog:
            prof = run_profile(model, device=args.device, calib=EXAMPLE_DIR / "calib.npy", progress=prog)
        print_profile(prof, console)
    return 0 if report["bit_exact"] else 1


def cmd_farm(args) -> int:
    from tinyconv import farm

    if args.action == "up":
        st = farm.up(farm.parse_boards(args.boards), say=lambda m: console.print(for_terminal(m, max_chars=None), highlight=False))
        console.print(f"farm up: {len(st['boards'])} board(s); use them with --device labgrid:tag=DEVICE or labgrid:PLACE")
        print(f"export LG_COORDINATOR={st['address']}")
        return 0
    if args.action == "down":
        farm.down(say=lambda m: console.print(for_terminal(m, max_chars=None), highlight=False))
        return 0
    st = farm.read_state()
    if st is None or not farm.local_farm_address():
        console.print("no local farm is up")
        return 1
    console.print(f"coordinator {st['address']}")
    for b in st["boards"]:
        console.print(f"  place {b['place']}: {b['device']} on port {b['port']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyconv", description="int8 CNN compiler and on-device reference checker")
    p.add_argument("--version", action="version", version=f"tinyconv {__version__}")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    sub = p.add_subparsers(dest="command", required=True)

    def model_args(sp, calib_required=False):
        sp.add_argument("model", help=".onnx (float or QDQ) or int8 .tflite")
        sp.add_argument("--calib", required=calib_required, help="float calibration inputs .npy, [N, *input shape without batch] (ONNX layout)")
        sp.add_argument("--method", default="minmax", choices=("minmax", "percentile", "mse"), help="calibration range method")

    c = sub.add_parser("compile", help="lower a model to an int8 C library")
    model_args(c)
    c.add_argument("-o", "--output", required=True, help="output directory")
    c.add_argument("--target", default="host", choices=("host", "cortex-m4", "cortex-m7", "cortex-m55", "aarch64"))
    c.add_argument("--prefix", default="tc_model", help="C symbol prefix")
    c.add_argument("--sqnr", action="store_true", help="print the per-layer SQNR (int8 vs float)")
    c.add_argument("--sqnr-inputs", type=int, default=16, help="calibration inputs used for --sqnr")
    c.set_defaults(func=cmd_compile)

    i = sub.add_parser("inspect", help="ops, shapes, MACs and parameters per layer; unsupported ops")
    i.add_argument("model")
    i.add_argument("--json", help="write the inspection as JSON")
    i.set_defaults(func=cmd_inspect)

    k = sub.add_parser("check", help="run on a device and compare every output byte with the reference")
    model_args(k)
    k.add_argument("--device", default="host", help="a device name (tinyconv devices)")
    k.add_argument("--device-file", help="your own board's device TOML file (instead of --device)")
    k.add_argument("--inputs", help="inputs .npy, float (quantized at the model edge) or int8 (used as is)")
    k.add_argument("--labels", help="integer class labels .npy, to report float and int8 accuracy")
    k.add_argument("--save-outputs", help="write the device's int8 outputs .npy, [N, *output shape] (ONNX layout)")
    k.add_argument("--json", help="write the report as JSON")
    k.add_argument("--junit", help="write a JUnit XML result")
    k.add_argument("--build-dir", help="keep the generated library and build here")
    k.set_defaults(func=cmd_check)

    pr = sub.add_parser("profile", help="instructions per inference and per layer, arena, stack, flash")
    model_args(pr)
    pr.add_argument("--device", default="qemu-m4", help="a device name (tinyconv devices)")
    pr.add_argument("--device-file", help="your own board's device TOML file (instead of --device)")
    pr.add_argument("--inputs", help="input .npy (the first sample is used; default: first calibration input or zeros)")
    pr.add_argument("--json", help="write the profile as JSON")
    pr.set_defaults(func=cmd_profile)

    f = sub.add_parser("flash", help="build and flash only (leaves the runner on a real board)")
    model_args(f)
    f.add_argument("--device", default="qemu-m4", help="a device name (tinyconv devices)")
    f.add_argument("--device-file", help="your own board's device TOML file (instead of --device)")
    f.add_argument("--build-dir")
    f.set_defaults(func=cmd_flash)

    d = sub.add_parser("devices", help="list devices and whether each can run here")
    d.set_defaults(func=cmd_devices)

    q = sub.add_parser("quantize", help="write tinyconv's quantization as QDQ ONNX (for an onnxruntime cross-check)")
    model_args(q)  # a float model needs --calib; a QDQ / QOperator one has its own parameters
    q.add_argument("-o", "--output", required=True)
    q.add_argument("--crosscheck", action="store_true", help="run onnxruntime on the exported layers and bound the difference (≤ 1 LSB)")
    q.add_argument("--inputs", help="inputs for --crosscheck (default: the calibration set)")
    q.add_argument("--json", help="write the cross-check as JSON")
    q.set_defaults(func=cmd_quantize)

    fa = sub.add_parser("farm", help="a local labgrid farm of emulated boards: up, down, status")
    fa.add_argument("action", choices=("up", "down", "status"))
    fa.add_argument("--boards", default="qemu-m4:2", help="emulated boards for 'up', DEVICE:COUNT[,...] (default: %(default)s)")
    fa.set_defaults(func=cmd_farm)

    m = sub.add_parser("demo", help="compile the bundled example and check it on an emulated board")
    m.add_argument("--device", default="qemu-m4", help="a device name (tinyconv devices)")
    m.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    from tinyconv import procs

    args = build_parser().parse_args(argv)
    previous = procs.exit_cleanly_on_signals()  # children and temp folders go with us, exit 128 + signo
    try:
        return args.func(args)
    except TinyconvError as e:
        if args.debug:
            raise
        # one line, whatever names it quotes; only a compiler's own report keeps its lines
        text = for_terminal(str(e), max_chars=4000, keep_newlines=isinstance(e, BuildError))
        err_console.print(f"[red]error:[/red] {text}", highlight=False, soft_wrap=True)
        return e.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    finally:
        procs.restore_signals(previous)  # main() may be called in-process (tests)


if __name__ == "__main__":
    sys.exit(main())
