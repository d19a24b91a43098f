"""`--html R.html`: one self-contained page with the check and profile results and, as pictures
(matplotlib, inline SVG), the per-layer instruction profile and the per-layer error."""

from __future__ import annotations

import html
import io
from pathlib import Path

from tinyconv.errors import TinyconvError


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        matplotlib.rcParams["svg.fonttype"] = "none"  # labels stay text: searchable, and the file stays small
        import matplotlib.pyplot as plt
    except ImportError:
        raise TinyconvError("--html needs matplotlib", hint="pip install 'tinyconv[html]'") from None
    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: the SVG is inline


def _bar_chart(plt, names: list[str], series: dict[str, list], title: str, xlabel: str, log: bool = False) -> str:
    """Horizontal bars, one row per layer, first layer on top; one panel per series."""
    fig, axes = plt.subplots(1, len(series), figsize=(5 * len(series) + 2, 0.32 * len(names) + 1.4), sharey=True, squeeze=False)
    ys = list(range(len(names)))
    for ax, (label, values) in zip(axes[0], series.items()):
        vals = [v if v is not None else 0 for v in values]
        ax.barh(ys, vals, color="#4c72b0")
        ax.set_title(label, fontsize=9)
        if log and any(v > 0 for v in vals):
            ax.set_xscale("log")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(ys, [n if len(n) <= 40 else n[:18] + "…" + n[-18:] for n in names], fontsize=8)
    axes[0][0].invert_yaxis()
    fig.suptitle(title, fontsize=10)
    fig.supxlabel(xlabel, fontsize=8)
    svg = _svg(fig)
    plt.close(fig)
    return svg


def _table(rows: list[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def render(check: dict | None, profile: dict | None) -> str:
    plt = _pyplot()
    base = check or profile or {}
    title = f"tinyconv report: {Path(str(base.get('model', '?'))).name} on {base.get('device', '?')}"
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if check:
        verdict = "PASS: bit-exact" if check.get("bit_exact") else "FAIL: outputs differ from the reference"
        rows = [("result", verdict), ("inputs", check.get("inputs")), ("elements compared", check.get("elements")),
                ("mismatches", check.get("mismatches")), ("max |difference|", check.get("max_abs_diff")), ("arena bytes", check.get("arena_bytes"))]  # fmt: skip
        for o in check.get("outputs", []):
            for k, v in (o.get("float_metrics") or {}).items():
                rows.append((f"{o['name']}: {k} vs float model", f"{v:.6g}" if isinstance(v, float) else v))
        parts += ["<h2>Check</h2>", _table(rows)]
        layers = check.get("layers", [])
        names = [f"{k} {lay['name']} ({lay['op']})" for k, lay in enumerate(layers)]
        fm = [lay.get("float_metrics") or {} for lay in layers]
        if any(fm):
            parts += ["<h2>Per-layer error against the float model</h2>",
                      _bar_chart(plt, names, {"L2 relative error": [m.get("l2_relative") for m in fm], "1 − cosine similarity":
                                              [(1 - m["cosine"]) if m.get("cosine") is not None else None for m in fm],
                                              "RMSE": [m.get("rmse") for m in fm]}, "int8 (dequantized) vs float, per layer output", "error")]  # fmt: skip
        else:
            parts.append("<p>No float model (pre-quantized input): no per-layer float error.</p>")
        if any(lay.get("mismatches") is not None for lay in layers):
            parts += ["<h2>Per-layer difference from the reference (device, first input)</h2>",
                      _bar_chart(plt, names, {"mismatching elements": [lay.get("mismatches") for lay in layers],
                                              "max |diff| (LSB)": [lay.get("max_abs_diff") for lay in layers]}, "device vs NumPy reference", "count")]  # fmt: skip
    if profile:
        unit = "instructions" if profile.get("instructions_per_inference") is not None else "cycles"
        total = profile.get(f"{unit}_per_inference")
        rows = [(f"{unit} / inference", total), (f"{unit} / MAC", profile.get("per_mac")), ("stack bytes", profile.get("stack_bytes")),
                ("flash: weights bytes", profile.get("flash_weights_bytes")), ("flash: code bytes", profile.get("flash_code_bytes")),
                ("note", profile.get("unit_note", ""))]  # fmt: skip
        parts += ["<h2>Profile</h2>", _table(rows)]
        layers = profile.get("layers", [])
        counts = [lay.get(unit) if lay.get(unit) is not None else lay.get("count") for lay in layers]
        if any(c is not None for c in counts):
            names = [f"{k} {lay['name']} ({lay['op']})" for k, lay in enumerate(layers)]
            parts += [f"<h2>Per-layer {unit}</h2>",
                      _bar_chart(plt, names, {f"{unit} per layer": counts, "MACs per layer": [lay.get("macs") for lay in layers]},
                                 f"{unit} per inference: {total:,}" if total else unit, unit)]  # fmt: skip
        else:
            parts.append(f"<p>This device gives no per-layer {unit}.</p>")
    style = "body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}"
    return f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"


def write(path: Path, check: dict | None = None, profile: dict | None = None) -> None:
    Path(path).write_text(render(check, profile), encoding="utf-8")
