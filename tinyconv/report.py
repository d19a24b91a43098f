"""Reports: one dict of fields, rendered as a rich table for people, JSON for machines, JUnit XML for CI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from rich.console import Console
from rich.table import Table

from tinyconv.escape import for_terminal


def compare(device: np.ndarray, expected: np.ndarray) -> dict:
    """Every byte compared: counts, worst difference, and the first differing positions."""
    d = np.asarray(device, np.int16).reshape(len(device), -1)
    e = np.asarray(expected, np.int16).reshape(len(expected), -1)
    if d.shape != e.shape:
        return {"bit_exact": False, "elements": int(e.size), "mismatches": int(e.size), "max_abs_diff": None,
                "mismatched_inputs": list(range(len(e))), "shape_error": f"device gave shape {list(d.shape)}, expected {list(e.shape)}"}  # fmt: skip
    diff = np.abs(d - e)
    bad_rows = np.nonzero(diff.max(axis=1) > 0)[0] if diff.size else np.array([], int)
    return {
        "bit_exact": bool(diff.size > 0 and not diff.any()),
        "elements": int(e.size),
        "mismatches": int(np.count_nonzero(diff)),
        "max_abs_diff": int(diff.max()) if diff.size else 0,
        "mismatched_inputs": [int(i) for i in bad_rows[:20]],
    }


SCHEMA_VERSION = 1  # bump when a field changes meaning; tinyconv/report_schema.json describes it


def schema() -> dict:
    """The JSON Schema every report file follows (tinyconv/report_schema.json)."""
    from importlib import resources

    return json.loads(resources.files("tinyconv").joinpath("report_schema.json").read_text())


def error_info(exc: BaseException) -> dict:
    """An exception as the report's `error` object."""
    from tinyconv.errors import TinyconvError

    if isinstance(exc, TinyconvError):
        return {"type": type(exc).__name__, "message": str(exc), "node": exc.node, "exit_code": exc.exit_code}
    if isinstance(exc, KeyboardInterrupt):
        return {"type": "KeyboardInterrupt", "message": "interrupted", "node": None, "exit_code": 130}
    return {"type": type(exc).__name__, "message": f"internal error: {exc}", "node": None, "exit_code": 1}


def envelope(command: str, body: dict, *, ok: bool, error: dict | None = None) -> dict:
    """A command's result in the versioned report format (see schema())."""
    from tinyconv import __version__

    return {"schema_version": SCHEMA_VERSION, "command": command, "tinyconv_version": __version__, "ok": bool(ok), "error": error, **body}


def _finite(x):
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else "-inf"
    return x


def to_json(report: dict, path: Path | None) -> str:
    text = json.dumps(report, indent=2, default=_jsonable)
    if path:
        Path(path).write_text(text + "\n")
    return text


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return _finite(float(o))
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def fmt_db(x) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    return "exact" if math.isinf(x) and x > 0 else f"{x:.1f} dB"


def print_check(report: dict, console: Console | None = None) -> None:
    console = console or Console(emoji=False)
    ok = report["bit_exact"]
    t = Table(title=f"tinyconv check: {for_terminal(Path(report['model']).name)} on {for_terminal(report['device'])}", show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    verdict = "[green]PASS: bit-exact[/green]" if ok else "[red]FAIL: outputs differ from the reference[/red]"
    t.add_row("result", verdict)
    t.add_row("inputs", str(report["inputs"]))
    t.add_row("elements compared", f"{report['elements']:,}")
    t.add_row("mismatches", f"{report['mismatches']:,}")
    t.add_row("max |difference|", str(report["max_abs_diff"]))
    t.add_row("arena", f"{report['arena_bytes']:,} B (lower bound {report['arena_lower_bound_bytes']:,} B)")
    for o in report.get("sqnr_db", []):
        t.add_row(f"SQNR int8 vs float ({for_terminal(o['name'], max_chars=60)})", fmt_db(o["sqnr_db"]))
    for o in report.get("sqnr_vs_onnxruntime_db", []):
        t.add_row(f"SQNR int8 vs onnxruntime float ({for_terminal(o['name'], max_chars=60)})", fmt_db(o["sqnr_db"]))
    for k, label in (("float_accuracy", "float accuracy"), ("int8_accuracy", "int8 accuracy")):
        if report.get(k) is not None:
            t.add_row(label, f"{100 * report[k]:.2f} %")
    if report.get("first_divergent_layer"):
        fl = report["first_divergent_layer"]
        t.add_row("first differing layer", f"#{fl['index']} {for_terminal(fl['name'])}: {fl['mismatches']} elements, max diff {fl['max_abs_diff']}")
    console.print(t)


def print_layers(layers: list[dict], console: Console | None = None, title: str = "layers") -> None:
    console = console or Console(emoji=False)
    t = Table(title=title, title_justify="left")
    cols = [k for k in ("index", "name", "op", "output_shape", "macs", "params", "sqnr_db", "instructions") if any(k in lay for lay in layers)]
    for c in cols:
        t.add_column(c, justify="right" if c in ("index", "macs", "params", "instructions") else "left")
    for i, lay in enumerate(layers):
        row = []
        for c in cols:
            v = i if c == "index" else lay.get(c, "")
            if c == "sqnr_db":
                v = fmt_db(v)
            elif isinstance(v, int) and c != "index":
                v = f"{v:,}"
            elif isinstance(v, (list, tuple)):
                v = "x".join(map(str, v))
            row.append(for_terminal(str(v)))
        t.add_row(*row)
    console.print(t)


def to_junit(report: dict, path: Path) -> None:
    """One test case per check; failure text carries the counts a CI log needs, an error its message."""
    name = f"{Path(str(report.get('model', '?'))).name}[{report.get('device')}]"
    body = ""
    if report.get("error"):
        err = report["error"]
        body = f"<error type={quoteattr(err['type'])} message={quoteattr(err['message'])}>{escape(err['message'])}</error>"
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuites><testsuite name="tinyconv.check" tests="1" failures="0" errors="1">'
            f'<testcase classname="tinyconv.check" name={quoteattr(name)} time="0.000">{body}</testcase>'
            "</testsuite></testsuites>\n"
        )
        Path(path).write_text(xml)
        return
    if not report["bit_exact"]:
        msg = f"{report['mismatches']} of {report['elements']} output bytes differ; max |diff| {report['max_abs_diff']}"
        if report.get("first_divergent_layer"):
            fl = report["first_divergent_layer"]
            msg += f"; first differing layer #{fl['index']} {fl['name']}"
        body = f"<failure message={quoteattr(msg)}>{escape(json.dumps(report, default=_jsonable)[:20000])}</failure>"
    failures = 0 if report["bit_exact"] else 1
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites><testsuite name="tinyconv.check" tests="1" failures="{failures}" errors="0">'
        f'<testcase classname="tinyconv.check" name={quoteattr(name)} time="{report.get("seconds", 0):.3f}">{body}</testcase>'
        "</testsuite></testsuites>\n"
    )
    Path(path).write_text(xml)
