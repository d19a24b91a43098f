"""tinyconv command line. Every user error ends as one `error: ...` line and a non-zero exit code."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape

from tinyconv import __version__
from tinyconv.errors import BuildError, TinyconvError
from tinyconv.escape import for_terminal
from tinyconv.specialise import DEFAULT_LEVEL, LEVELS

def _console(stderr: bool = False) -> Console:
    """Rich console; when the stream is not a terminal (a pipe, a file, CI), lines are never cut or wrapped."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, emoji=False)  # model text goes through escape.for_terminal; no :emoji: codes
    return Console(stderr=stderr, width=100_000, soft_wrap=True, emoji=False)


console = _console()
err_console = _console(stderr=True)


def progress_bar(label: str):
    """A progress callback with phases: a transient bar on a terminal, plain lines in logs."""
    from tinyconv.progress import progress_reporter

    return progress_reporter(label, err_console)


REPORTING = ("check", "profile", "inspect", "quantize")  # commands that write --json (and check --junit)


def write_reports(args, command: str, body: dict, *, ok: bool, error: dict | None = None) -> None:
    """The --json / --junit files of a command, in the versioned report format."""
    from tinyconv.report import envelope, to_json, to_junit

    report = envelope(command, body, ok=ok, error=error)
    if getattr(args, "json", None):
        to_json(report, Path(args.json))
    if getattr(args, "junit", None):
        to_junit(report, Path(args.junit))


def write_error_reports(args, exc: BaseException) -> None:
    """A failed command still writes its --json / --junit files, carrying the error."""
    if getattr(args, "command", None) not in REPORTING or not (getattr(args, "json", None) or getattr(args, "junit", None)):
        return
    from tinyconv.report import error_info

    body = {"model": str(args.model), "device": getattr(args, "device", None)}
    try:
        write_reports(args, args.command, body, ok=False, error=error_info(exc))
    except OSError as e:
        err_console.print(f"[red]error:[/red] cannot write the report: {escape(str(e))}", highlight=False, soft_wrap=True)


def cmd_compile(args) -> int:
    from tinyconv.codegen import check_prefix
    from tinyconv.pipeline import compile_model

    check_prefix(args.prefix)  # before the (slow) calibration
    with progress_bar("calibrating") as prog:
        c = compile_model(args.model, calib=args.calib, target=args.target, outdir=Path(args.output), method=args.method, prefix=args.prefix, arena=args.arena, progress=prog,
                          weights=args.weights, optimize=args.optimize)
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
    body = {k: v for k, v in info.items() if k != "error"}
    error = {"type": "UnsupportedError", "message": info["error"], "node": None, "exit_code": 1} if info.get("error") else None
    write_reports(args, "inspect", body, ok=not info["unsupported"], error=error)
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
    from tinyconv.report import print_check

    device = chosen_device(args)
    with progress_bar(f"running on {for_terminal(device_name(device))}") as prog:
        report, outputs, _ = run_check(
            args.model, device=device, calib=args.calib, inputs=args.inputs, labels=args.labels,
            method=args.method, workdir=Path(args.build_dir) if args.build_dir else None, progress=prog, layer_report=True,
            optimize=args.optimize,
        )  # fmt: skip
    if args.save_outputs:
        np.save(args.save_outputs, outputs)
    write_reports(args, "check", report, ok=report["bit_exact"])
    print_check(report, console)
    if args.html:
        from tinyconv import html_report
        from tinyconv.profile import run_profile

        with progress_bar(f"profiling on {for_terminal(device_name(device))}") as prog:  # a device without a counter gives no per-layer counts; the page says so
            prof = run_profile(args.model, device=device, calib=args.calib, inputs=args.inputs, method=args.method, progress=prog)
        html_report.write(Path(args.html), check=report, profile=prof)
        console.print(f"wrote {args.html}")
    return 0 if report["bit_exact"] else 1


def cmd_profile(args) -> int:
    from tinyconv.profile import print_profile, run_profile

    from tinyconv.check import device_name

    device = chosen_device(args)
    with progress_bar(f"profiling on {for_terminal(device_name(device))}") as prog:
        result = run_profile(args.model, device=device, calib=args.calib, inputs=args.inputs, method=args.method, progress=prog,
                             optimize=args.optimize)
    write_reports(args, "profile", result, ok=True)
    print_profile(result, console)
    if args.html:
        from tinyconv import html_report

        html_report.write(Path(args.html), profile=result)
        console.print(f"wrote {args.html}")
    return 0


def cmd_flash(args) -> int:
    from tinyconv.check import device_name, flash_for_device, target_for_device
    from tinyconv.harness import api
    from tinyconv.pipeline import compile_model

    from tinyconv.harness.workdir import work_folder

    device = chosen_device(args)
    target = target_for_device(device)
    with work_folder(Path(args.build_dir or "build/flash"), args.model, args.calib, target, (args.method, args.optimize)) as folder:
        c = compile_model(args.model, calib=args.calib, target=target, outdir=folder / "lib", method=args.method, weights="incbin",
                          optimize=args.optimize, flash_bytes=flash_for_device(device))  # fmt: skip
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


def cmd_ops(args) -> int:
    from rich.table import Table

    from tinyconv.supported_ops import LIMITS_ALL, rows

    t = Table(title="supported ops", title_justify="left")
    for c in ("format", "op", "limits"):
        t.add_column(c)
    for fmt, op, lim in rows():
        if args.format in ("all", fmt.lower()):
            t.add_row(fmt, op, lim)
    console.print(t)
    console.print(LIMITS_ALL)
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
    body = {"model": str(args.model), "output_model": str(args.output), "crosscheck": None}
    if not args.crosscheck:
        write_reports(args, "quantize", body, ok=True)
        return 0

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
    body["crosscheck"] = {"ok": cc.ok, "max_abs_diff": cc.max_abs_diff, "identical_fraction": cc.identical_fraction, "layers": [vars(lay) for lay in cc.layers]}
    write_reports(args, "quantize", body, ok=cc.ok)
    return 0 if cc.ok else 1


def cmd_demo(args) -> int:
    """Compile the bundled example, check it bit-exact on an emulated board, print its profile."""
    from tinyconv.check import run_check
    from tinyconv.report import print_check
    from tinyconv.resources import data_dir

    example = data_dir("examples") / "digits"
    model = example / "digits_cnn.onnx"
    chosen_device(args)
    console.print(f"[bold]tinyconv demo: {model.name} on {for_terminal(args.device)}[/bold]")
    with progress_bar(f"compiling and running on {args.device}") as prog:
        report, _, _ = run_check(model, device=args.device, calib=example / "calib.npy", inputs=example / "test_x.npy",
                                 labels=example / "test_y.npy", progress=prog)  # fmt: skip
    print_check(report, console)
    if args.device != "host":
        from tinyconv.profile import print_profile, run_profile

        with progress_bar("profiling") as prog:
            prof = run_profile(model, device=args.device, calib=example / "calib.npy", progress=prog)
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


DEFAULT_DEVICE = "qemu-m4"  # the README's and devices/qemu-m4.toml's default; used by every command


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows an option's default in --help when it has a meaningful one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def _known_devices() -> str:
    from tinyconv.harness.devices import DEVICES_DIR

    return ", ".join(sorted(p.stem for p in Path(DEVICES_DIR).glob("*.toml")))


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    # Global options, accepted before and after the subcommand: SUPPRESS keeps a subcommand that was
    # not given the flag from resetting what the top-level parser read.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show Python tracebacks for errors")
    p = argparse.ArgumentParser(prog="tinyconv", description="int8 CNN compiler and on-device reference checker", formatter_class=HelpFormatter,
                                epilog="exit codes: 0 success, 1 check failed (outputs differ, unsupported ops, cross-check out of bounds), "
                                       "2 bad input or build error, 3 device error, 130 interrupted")  # fmt: skip
    p.add_argument("--version", action="version", version=f"tinyconv {__version__}")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help_):
        return sub.add_parser(name, help=help_, description=help_, parents=[common], formatter_class=HelpFormatter)

    def model_args(sp, calib_required=False):
        sp.add_argument("model", help=".onnx (float or QDQ) or int8 .tflite")
        sp.add_argument("--calib", metavar="X.npy", required=calib_required, help="float calibration inputs .npy, [N, *input shape without batch] (ONNX layout)")
        sp.add_argument("--method", default="minmax", choices=("minmax", "percentile", "mse"), help="calibration range method")

    def device_arg(sp, *, device_file: bool = True):
        sp.add_argument("--device", metavar="NAME", default=DEFAULT_DEVICE, help=f"device to run on: {_known_devices()} (see `tinyconv devices`), or labgrid:PLACE / labgrid:tag=DEVICE on a board farm")
        if device_file:
            sp.add_argument("--device-file", metavar="PATH", help="your own board's device TOML file (instead of --device)")

    def optimize_arg(sp):
        sp.add_argument("--optimize", default=DEFAULT_LEVEL, choices=LEVELS,
                        help=f"kernel variants per layer: speed (fastest, more flash), balanced, size (default {DEFAULT_LEVEL})")  # fmt: skip

    def device_command(name, help_):
        """A command that builds the model for a device and runs (or flashes) it there."""
        sp = command(name, help_)
        model_args(sp)
        optimize_arg(sp)
        device_arg(sp)
        return sp

    from tinyconv.targets import TARGETS

    c = command("compile", "lower a model to an int8 C library")
    model_args(c)
    optimize_arg(c)
    c.add_argument("-o", "--output", metavar="DIR", required=True, help="output directory")
    c.add_argument("--target", default="host", choices=tuple(TARGETS), help="CPU family the kernels are chosen for")
    c.add_argument("--prefix", default="tc_model", help="C symbol prefix")
    c.add_argument("--arena", default="static", choices=("static", "caller"),
                   help="static: the library owns one arena (tc_model_init/tc_model_run); caller: the application passes an arena per context (tc_model_ctx_init/tc_model_ctx_run)")
    c.add_argument("--weights", default="c", choices=("c", "incbin"),
                   help="c: constants as C arrays (any C99 compiler; default); incbin: a binary blob the assembler includes (gcc/clang, much faster to build)")
    c.add_argument("--sqnr", action="store_true", help="print the per-layer SQNR (int8 vs float)")
    c.add_argument("--sqnr-inputs", metavar="N", type=positive_int, default=16, help="calibration inputs used for --sqnr")
    c.set_defaults(func=cmd_compile)

    i = command("inspect", "ops, shapes, MACs and parameters per layer; unsupported ops")
    i.add_argument("model", help=".onnx or .tflite model")
    i.add_argument("--json", metavar="R.json", help="write the inspection as JSON")
    i.set_defaults(func=cmd_inspect)

    k = device_command("check", "run on a device and compare every output byte with the reference")
    k.add_argument("--inputs", metavar="Y.npy", help="inputs .npy, float (quantized at the model edge) or int8 (used as is); default: the calibration set")
    k.add_argument("--labels", metavar="L.npy", help="integer class labels .npy, to report float and int8 accuracy")
    k.add_argument("--save-outputs", metavar="Z.npy", help="write the device's int8 outputs .npy, [N, *output shape] (ONNX layout)")
    k.add_argument("--json", metavar="R.json", help="write the report as JSON")
    k.add_argument("--junit", metavar="R.xml", help="write a JUnit XML result")
    k.add_argument("--html", metavar="R.html", help="write an HTML report with plots: per-layer error and (on a device that counts) per-layer instructions; needs matplotlib")
    k.add_argument("--build-dir", metavar="DIR", help="keep the generated library and build here (default: a temporary folder)")
    k.set_defaults(func=cmd_check)

    pr = device_command("profile", "instructions per inference and per layer, arena, stack, flash")
    pr.add_argument("--inputs", metavar="Y.npy", help="input .npy (the first sample is used; default: first calibration input or zeros)")
    pr.add_argument("--json", metavar="R.json", help="write the profile as JSON")
    pr.add_argument("--html", metavar="R.html", help="write an HTML report with the per-layer profile as a plot; needs matplotlib")
    pr.set_defaults(func=cmd_profile)

    f = device_command("flash", "build and flash only (leaves the runner on a real board)")
    f.add_argument("--build-dir", metavar="DIR", default="build/flash", help="where the generated library and firmware go")
    f.set_defaults(func=cmd_flash)

    d = command("devices", "list devices and whether each can run here")
    d.set_defaults(func=cmd_devices)

    o = command("ops", "every supported ONNX op and TFLite builtin, with its limits")
    o.add_argument("--format", default="all", choices=("all", "onnx", "tflite"), help="which importer's ops to list")
    o.set_defaults(func=cmd_ops)

    q = command("quantize", "write tinyconv's quantization as QDQ ONNX (for an onnxruntime cross-check)")
    model_args(q)  # a float model needs --calib; a QDQ / QOperator one has its own parameters
    q.add_argument("-o", "--output", metavar="MODEL.qdq.onnx", required=True, help="QDQ ONNX file to write")
    q.add_argument("--crosscheck", action="store_true", help="run onnxruntime on the exported layers and bound the difference (≤ 1 LSB)")
    q.add_argument("--inputs", metavar="Y.npy", help="inputs for --crosscheck (default: the calibration set)")
    q.add_argument("--json", metavar="R.json", help="write the cross-check as JSON")
    q.set_defaults(func=cmd_quantize)

    fa = command("farm", "a local labgrid farm of emulated boards: up, down, status")
    fa.add_argument("action", choices=("up", "down", "status"), help="start, stop or show the local farm")
    fa.add_argument("--boards", default="qemu-m4:2", help="emulated boards for 'up', DEVICE:COUNT[,...] (default: %(default)s)")
    fa.set_defaults(func=cmd_farm)

    m = command("demo", "compile the bundled example and check it on an emulated board")
    device_arg(m, device_file=False)
    m.set_defaults(func=cmd_demo)
    return p


NPY_ARGUMENTS = {"calib": "calibration data", "inputs": "inputs", "labels": "labels"}
NPY_MAX_HEADER = 10_000  # numpy's own default limit for an .npy header


def check_file_arguments(args) -> None:
    """Refuse unusable file arguments before any work: one line each, never a traceback later."""
    from tinyconv.errors import DataError

    for attr, what in NPY_ARGUMENTS.items():
        path = getattr(args, attr, None)
        if path is None:
            continue
        p = Path(path)
        if not p.is_file():
            raise DataError(f"{what} '{path}' {'is not a regular file' if p.exists() else 'does not exist'}", hint="give an .npy file")
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False, max_header_size=NPY_MAX_HEADER)
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"cannot read {what} '{path}': {str(e).splitlines()[0] if str(e) else type(e).__name__}", hint="give an .npy file (numpy.save)") from None
        if not isinstance(arr, np.ndarray):
            arr.close()  # an .npz archive
            raise DataError(f"{what} '{path}' is an .npz archive, not one array", hint="save a single array with numpy.save")
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise DataError(f"{what} '{path}' holds no samples (shape {list(arr.shape)})", hint="the first axis counts the samples; give at least one")
        if arr.dtype.hasobject or arr.dtype.fields is not None:
            raise DataError(f"{what} '{path}' has dtype {arr.dtype}; give a numeric array")
        if attr == "inputs" and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise DataError(f"{what} '{path}' contain NaN or infinite values", hint="int8 quantization of those is undefined")
    dirs = {"build_dir": "--build-dir"}
    if args.command == "compile":
        from tinyconv.codegen import check_prefix

        check_prefix(args.prefix)  # refused before -o is created
        dirs["output"] = "-o"
    for attr, flag in dirs.items():
        out = getattr(args, attr, None)
        if out is None:
            continue
        o = Path(out)
        if o.exists() and not o.is_dir():
            raise DataError(f"{flag} '{out}' is an existing file", hint=f"give a directory with {flag}")
        try:
            o.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"cannot create {flag} directory '{out}': {e.strerror or e}") from None
        if not os.access(o, os.W_OK | os.X_OK):
            raise DataError(f"{flag} directory '{out}' is not writable")
    files = {"save_outputs": "--save-outputs", "json": "--json", "junit": "--junit"}
    if args.command == "quantize":
        files["output"] = "-o"
    for attr, flag in files.items():  # written at the end of a possibly long run: checked first
        path = getattr(args, attr, None)
        if path is None:
            continue
        parent = Path(path).resolve().parent
        bad = None
        if Path(path).is_dir():
            bad = DataError(f"{flag} '{path}' is a directory", hint="give a file name")
        elif not parent.is_dir() or not os.access(parent, os.W_OK):
            bad = DataError(f"cannot write {flag} '{path}': folder '{parent}' {'is not writable' if parent.is_dir() else 'does not exist'}")
        if bad is not None:
            setattr(args, attr, None)  # the error report is not retried on the path that cannot be written
            raise bad


def main(argv: list[str] | None = None) -> int:
    from tinyconv import procs

    args = build_parser().parse_args(argv)
    previous = procs.exit_cleanly_on_signals()  # children and temp folders go with us, exit 128 + signo
    try:
        check_file_arguments(args)
        if args.debug:
            return args.func(args)
        # Float overflow in a user's model (weights of 1e30, ...) is reported as an `error:` line by
        # the checks that find it; numpy's RuntimeWarnings about it would only print noise before.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return args.func(args)
    except TinyconvError as e:
        write_error_reports(args, e)
        if args.debug:
            raise
        # one line, whatever names it quotes; only a compiler's own report keeps its lines
        text = for_terminal(str(e), max_chars=4000, keep_newlines=isinstance(e, BuildError))
        err_console.print(f"[red]error:[/red] {text}", highlight=False, soft_wrap=True)
        return e.exit_code
    except KeyboardInterrupt as e:
        write_error_reports(args, e)
        err_console.print("interrupted")
        return 130
    except Exception as e:  # a bug: still leave the report files, then show the traceback
        write_error_reports(args, e)
        raise
    finally:
        procs.restore_signals(previous)  # main() may be called in-process (tests)


if __name__ == "__main__":
    sys.exit(main())
