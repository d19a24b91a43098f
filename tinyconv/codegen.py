"""IR (int8, prepared) + memory plan → a self-contained C library, rendered with Jinja2.

Output directory: <prefix>.h (API), <prefix>.c (arena + layer calls), <prefix>_weights.c (const
data: C arrays, or with weights="incbin" an .incbin of <prefix>_weights.bin), the kernel sources the layers use (copied from codegen_templates/kernels/<backend>/),
CMakeLists.txt and <prefix>.mk for build systems, and manifest.json (shapes, quantization, layers)
for the harness and for people.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from tinyconv import __version__, escape, neon_layers
from tinyconv.errors import ModelError, TinyconvError
from tinyconv.ir import Graph
from tinyconv.memory import Plan
from tinyconv.ops import helium, op_of
from tinyconv.resources import data_dir
from tinyconv.specialise import Options, Variant, choose
from tinyconv.targets import Target

CTYPES = {"int8": "int8_t", "int32": "int32_t", "uint8": "uint8_t", "int16": "int16_t"}


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("codegen_templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    env.filters["prod"] = lambda xs: int(np.prod(xs))
    # Model text (names) reaches C only through these two filters (tinyconv/escape.py).
    env.filters["c_string"] = escape.c_string
    env.filters["c_comment"] = escape.c_comment
    return env


def c_array_body(data: np.ndarray, per_line: int = 16) -> str:
    """Integer literals, `per_line` to a line; INT32_MIN spelled so C reads it as int32.

    Vectorised: 8-bit data (the weights, megabytes of them) is formatted through a 256-entry
    table of fixed-width cells, everything else through NumPy's own integer-to-text cast."""
    v = np.asarray(data).reshape(-1)
    if v.size == 0:
        return "    0,"
    if v.dtype in (np.int8, np.uint8):
        lo = int(np.iinfo(v.dtype).min)
        table = np.array([f" {i:4d}," for i in range(lo, lo + 256)], dtype="S6").view(np.uint8).reshape(256, 6)
        cells = table[v.astype(np.int16) - lo]  # [n, 6] bytes
        full = v.size // per_line * per_line
        lines = [np.concatenate([np.full((full // per_line, 3), ord(" "), np.uint8), cells[:full].reshape(-1, per_line * 6),
                                 np.full((full // per_line, 1), ord("\n"), np.uint8)], axis=1).tobytes().decode()]  # fmt: skip
        if full < v.size:
            lines.append("   " + cells[full:].tobytes().decode() + "\n")
        return "".join(lines).rstrip("\n")
    text = v.astype(str).astype(object)
    text[v == -(2**31)] = "(-2147483647 - 1)"
    return "\n".join("    " + ", ".join(text[i : i + per_line]) + "," for i in range(0, v.size, per_line))


def model_hash(graph: Graph) -> str:
    """sha256 (16 hex) of everything that determines the int8 function: ops, params, constants."""
    h = hashlib.sha256()
    for node in graph.nodes:
        h.update(repr((node.op, sorted((k, repr(v)) for k, v in node.attrs.items()))).encode())
        for k, v in sorted(node.qattrs.items()):
            h.update(k.encode() + (np.asarray(v).tobytes() if isinstance(v, np.ndarray) else repr(v).encode()))
        for i in node.inputs:
            t = graph.tensors[i]
            h.update(repr((t.shape, t.dtype)).encode())
            if t.is_const:
                h.update(t.data.tobytes())
    return h.hexdigest()[:16]


@dataclass
class GeneratedLibrary:
    outdir: Path
    files: list[Path]
    manifest: dict


ARENA_MODES = ("static", "caller")  # the library's own static array, or one per context the application passes in
PREFIX_MAX_CHARS = 40
PREFIX_SYNTAX = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Headers a build may reach through `-I<library dir>`: a library file of the same name would shadow them.
SHADOWED_HEADERS = {"assert", "complex", "ctype", "errno", "fenv", "float", "inttypes", "iso646", "limits", "locale",
                    "math", "setjmp", "signal", "stdalign", "stdarg", "stdatomic", "stdbool", "stddef", "stdint", "stdio",
                    "stdlib", "stdnoreturn", "string", "tgmath", "threads", "time", "uchar", "wchar", "wctype",
                    "arm_acle", "arm_mve", "arm_neon", "arm_fp16", "arm_math", "port", "protocol"}  # fmt: skip
# What the generator appends to the prefix (symbols, macros, the header guard), lower-cased.
GENERATED_SUFFIXES = (r"h|arena|arena_align|arena_section|arena_placement|ctx|ctx_init|ctx_run|ctx_run_io|run_io|layers|num_inputs|num_outputs|"
                      r"(input|output)\d+_(bytes|scale|zero_point)|layer_names|layer_output_bytes|init|run|layer_hook|layer_hooks|after_layer|hash|num_layers|"
                      r"arena_bytes|(input|output)_(bytes|scale|zero_point)|weights|[wb]_\d+|p_\d+_\w+|layer\d+")
_C_NAME = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
_C_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"", re.S)  # comments and strings name no symbol


def _reserved_names() -> tuple[set[str], set[str]]:
    """(file stems, identifiers, lower-cased) of every kernel and firmware source a library is built with
    (the firmware's own default spelling of tc_model is excluded by the caller)."""
    roots = [data_dir("codegen_templates") / "kernels", data_dir("firmware")]
    files = [p for r in roots if r.is_dir() for p in r.rglob("*.[ch]")]
    stems = {p.stem.lower() for p in files}
    idents = {m.lower() for p in files for m in _C_NAME.findall(_C_COMMENT.sub(" ", p.read_text(errors="replace")))}
    return stems, idents


def check_prefix(prefix: str) -> None:
    """`--prefix` names files (<prefix>.h, .c, _weights.c) and every exported symbol and macro:
    an ASCII C identifier, short, and clashing with no kernel or firmware file, header or symbol."""
    shown = escape.for_terminal(prefix, max_chars=60)
    if len(prefix) > PREFIX_MAX_CHARS:
        raise TinyconvError(f"--prefix '{shown}' is {len(prefix)} characters long", hint=f"use at most {PREFIX_MAX_CHARS}")
    if not PREFIX_SYNTAX.fullmatch(prefix):
        raise TinyconvError(f"--prefix '{shown}' is not an ASCII C identifier", hint="use letters, digits and _, starting with a letter")
    stems, idents = _reserved_names()
    low = prefix.lower()
    generated = re.compile(rf"{re.escape(low)}_({GENERATED_SUFFIXES})")  # the bare prefix names only files
    clash = ({low, f"{low}_weights"} & (stems | SHADOWED_HEADERS)) or {i for i in idents if generated.fullmatch(i)} - {"tc_model"}
    if clash:
        raise TinyconvError(f"--prefix '{prefix}' clashes with the kernel/firmware name '{sorted(clash)[0]}'",
                            hint="choose another prefix, e.g. the model's name")  # fmt: skip



WEIGHT_FORMS = ("c", "incbin")
# Flash kept for the runtime code, the firmware and the shared kernels when sizing the extras.
CODE_RESERVE_BYTES = 96 * 1024


def generate(graph: Graph, plan: Plan, target: Target, outdir: Path, *, prefix: str = "tc_model", provenance: str = "",
             arena: str = "static", weights: str = "c", options: Options | None = None,
             flash_bytes: int | None = None) -> GeneratedLibrary:  # fmt: skip
    """`weights`: "c" writes the constants as C array initializers (any C99 compiler); "incbin"
    writes them to <prefix>_weights.bin, which <prefix>_weights.c pulls in with the assembler's
    .incbin (GNU toolchains and clang only; no text round trip, so large models build in seconds). `options`: the --optimize level (tinyconv/specialise.py);
    `flash_bytes`: the device's flash, in which the per-layer variants' extra flash must fit beside
    the weights and CODE_RESERVE_BYTES (None: no limit)."""
    check_prefix(prefix)
    if arena not in ARENA_MODES:
        raise ModelError(f"--arena '{arena}' is not one of {', '.join(ARENA_MODES)}")
    if weights not in WEIGHT_FORMS:
        raise ModelError(f"--weights '{weights}' is not one of {', '.join(WEIGHT_FORMS)}")
    env = environment()
    P = prefix.upper()
    digest = model_hash(graph)
    provenance = f"Generated by tinyconv {__version__} for {target.name}; model hash {digest}. {provenance}".strip()

    def ptr(name: str) -> str:
        if name in graph.inputs:
            return f"inputs[{graph.inputs.index(name)}]"
        if name in graph.outputs:
            return f"outputs[{graph.outputs.index(name)}]"
        t = graph.tensors[name]
        if t.is_const:
            return const_names[name]
        return f"(arena + {plan.offsets[name]})"

    # Constants: tensors read by nodes, then per-layer parameter arrays from kernel_consts.
    consts: list[dict] = []
    const_names: dict[str, str] = {}
    for node in graph.nodes:
        for name in node.inputs:
            t = graph.tensors[name]
            if t.is_const and name not in const_names:
                kind = "b" if t.dtype == "int32" else "w"
                cname = f"{prefix}_{kind}_{len(consts)}"
                const_names[name] = cname
                consts.append(_const(cname, t.data, f"{name} {list(t.shape)} {t.dtype}"))

    options = options or Options()
    if flash_bytes is not None:
        weight_bytes = sum(c["nbytes"] for c in consts)
        options = Options(options.optimize, max(0, flash_bytes - weight_bytes - CODE_RESERVE_BYTES))
    shared = [helium.shared_kernel(node, graph) if "mve" in target.backends else None for node in graph.nodes]
    variants = choose([layer_variants(node, graph, target) for node in graph.nodes], options, shared)

    layers, kernel_files, includes = [], [], []
    for k, node in enumerate(graph.nodes):
        op = op_of(node)
        variant = variants[k]
        own = variant.kernel_files is not None  # a backend's kernel replaces the op's files and consts
        extra = {}
        for key, arr in (variant.consts if own else {**op.kernel_consts(node, graph), **variant.consts}).items():
            cname = f"{prefix}_p_{k}_{key}"
            extra[key] = cname
            consts.append(_const(cname, arr, f"layer {k} ({node.name}) {key}"))
        for f in variant.kernel_files if own else op.kernel_files:
            if f not in kernel_files:
                kernel_files.append(f)
        includes += [h for h in variant.includes if h not in includes]
        ctx = dict(
            node=node, attrs=node.attrs, q=node.qattrs, layer=k, consts=extra, variant=variant, prefix=prefix,
            inputs=[ptr(i) for i in node.inputs], outputs=[ptr(o) for o in node.outputs],
            in_shapes=[graph.tensors[i].shape for i in node.inputs],
            out_shapes=[graph.tensors[o].shape for o in node.outputs],
            **op.template_context(node, graph), **variant.context,
        )  # fmt: skip
        try:
            code = env.get_template(variant.template or op.template(node, graph)).render(**ctx).strip()
            defs = env.get_template(variant.defs_template).render(**ctx).strip() if variant.defs_template else ""
        except jinja2.TemplateNotFound:
            raise ModelError(f"{node.where()}: no C template for op '{node.op}' yet", node=node.name) from None
        o = graph.tensors[node.outputs[0]]
        scale, zp = o.quant.scalar() if o.quant is not None else (1.0, 0)
        layers.append(dict(
            name=node.name, op=node.op, code=code, defs=defs, output_ptr=ptr(node.outputs[0]),
            output_shape=list(o.shape), output_bytes=o.nbytes, macs=op.macs(node, graph), scale=scale, zero_point=zp,
            kernel=variant.name, kernel_flash_bytes=variant.flash_bytes,
        ))  # fmt: skip

    consts = referenced_consts(consts, layers, prefix)
    io = {"inputs": [_io_info(graph, name) for name in graph.inputs], "outputs": [_io_info(graph, name) for name in graph.outputs]}
    single_io = len(graph.inputs) == 1 and len(graph.outputs) == 1
    kernel_paths = _kernel_sources(kernel_files, target, includes)
    common = dict(provenance=provenance, prefix=prefix, P=P, model_hash=digest, arena_bytes=plan.arena_bytes,
                  arena_lower_bound=plan.lower_bound, layers=layers, consts=consts, arena=arena, single_io=single_io, **io)  # fmt: skip
    outdir.mkdir(parents=True, exist_ok=True)
    written = []

    def write(name: str, text: str) -> None:
        path = outdir / name
        path.write_text(text)
        written.append(path)

    write(f"{prefix}.h", env.get_template("model.h.j2").render(guard=f"{P}_H", **common))
    write(f"{prefix}.c", env.get_template("model.c.j2").render(kernel_headers=kernel_files, variant_headers=includes, **common))
    if weights == "incbin":
        blob = weights_blob(consts)
        (outdir / f"{prefix}_weights.bin").write_bytes(blob)
        written.append(outdir / f"{prefix}_weights.bin")
        tmpl = env.get_template("weights_incbin.c.j2")
        write(f"{prefix}_weights.c", tmpl.render(bin_name=f"{prefix}_weights.bin", bin_bytes=len(blob), align=BLOB_ALIGN,
                                                     bin_sha256=hashlib.sha256(blob).hexdigest(), **common))
    else:
        for c in consts:
            c["body"] = c_array_body(c["data"])
        write(f"{prefix}_weights.c", env.get_template("weights.c.j2").render(**common))
    build_ctx = dict(provenance=provenance, prefix=prefix, P=P, target_cflags=" ".join(target.cflags))
    write("CMakeLists.txt", env.get_template("build/CMakeLists.txt.j2").render(**build_ctx))
    write(f"{prefix}.mk", env.get_template("build/model.mk.j2").render(**build_ctx))
    for src in kernel_paths:
        shutil.copyfile(src, outdir / src.name)
        written.append(outdir / src.name)
    manifest = {
        "tinyconv_version": __version__,
        "prefix": prefix,
        "model_hash": digest,
        "target": target.name,
        "backends": list(target.backends),
        "weights": weights,
        "kernels": sorted(p.name for p in kernel_paths),
        "kernel_sources": sorted(f"{p.parent.name}/{p.name}" for p in kernel_paths),  # which backend each file came from
        "arena": arena,
        "arena_bytes": plan.arena_bytes,
        "arena_lower_bound_bytes": plan.lower_bound,
        "input": io["inputs"][0],  # the first input and output, as before multi-I/O
        "output": io["outputs"][0],
        "weights_bytes": int(sum(c["nbytes"] for c in consts)),  # const data: known before any link
        "optimize": options.optimize,
        **io,
        "layers": [{k: v for k, v in lay.items() if k not in ("code", "defs", "output_ptr")} for lay in layers],
    }
    write("manifest.json", json.dumps(manifest, indent=2) + "\n")
    return GeneratedLibrary(outdir, written, manifest)


def referenced_consts(consts: list[dict], layers: list[dict], prefix: str) -> list[dict]:
    """The constants some layer's code names. A variant that re-lays weights out offline no longer
    reads the originals; the linker drops unread C arrays, but not parts of an incbin blob, and
    the manifest's weights_bytes (what the flash check refuses on) would count them."""
    named = set(re.findall(rf"\b{re.escape(prefix)}_[wbp]_\w+", "\n".join(lay["code"] + lay["defs"] for lay in layers)))
    return [c for c in consts if c["cname"] in named]


def backend_variant(node, graph: Graph, target: Target) -> Variant | None:
    """A backend's specialised kernel for this layer (its own template, kernel files and consts),
    or None. Helium: tinyconv/ops/helium.py; NEON (aarch64, aarch64-i8mm): tinyconv/neon_layers.py."""
    if "mve" in target.backends:
        return helium.variant(node, graph)
    if neon_layers.has_neon(target):
        return neon_layers.variant(node, graph, target)
    return None


def layer_variants(node, graph: Graph, target: Target) -> list[Variant]:
    """Every way to emit this layer beyond the op's generic kernel call, fastest first: the
    backend's own kernel, then the op's variants (specialise.choose picks by level and budget)."""
    own = backend_variant(node, graph, target)
    return ([own] if own else []) + op_of(node).variants(node, graph, target)


def _const(cname: str, data: np.ndarray, comment: str) -> dict:
    data = np.asarray(data)
    dtype = str(data.dtype)
    if dtype not in CTYPES:
        raise ModelError(f"constant {comment}: dtype {dtype} cannot be emitted (quantize the model first)")
    return dict(cname=cname, ctype=CTYPES[dtype], size=max(1, data.size), data=data, comment=comment, nbytes=data.nbytes)


BLOB_ALIGN = 16  # every constant starts 16-byte aligned (vector loads; the C-array form promises 4)


def weights_blob(consts: list[dict]) -> bytes:
    """All constants, little-endian, each at a BLOB_ALIGN-aligned offset (stored in c["offset"]);
    an empty constant occupies one zero element, as its C array would."""
    parts, offset = [], 0
    for c in consts:
        data = c["data"] if c["data"].size else np.zeros(1, c["data"].dtype)
        raw = np.ascontiguousarray(data, data.dtype.newbyteorder("<")).tobytes()
        pad = -offset % BLOB_ALIGN
        parts += [b"\0" * pad, raw]
        offset += pad
        c["offset"], c["blob_bytes"] = offset, len(raw)
        offset += len(raw)
    return b"".join(parts)


def _io_info(graph: Graph, name: str) -> dict:
    t = graph.tensors[name]
    scale, zp = t.quant.scalar()
    lay = graph.io_layout.get(name)
    return dict(
        name=name, shape=list(t.shape), bytes=t.nbytes, scale=float(scale), zero_point=int(zp),
        onnx_shape=list(lay.onnx_shape) if lay else list(t.shape), perm=list(lay.perm) if lay else list(range(len(t.shape))),
    )  # fmt: skip


LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def _kernel_file(kdir: Path, filename: str, target: Target) -> Path:
    """The most specialised backend's copy of a kernel file (portable is always searched last)."""
    for backend in target.backends:
        p = kdir / backend / filename
        if p.exists():
            return p
    raise ModelError(f"kernel source {filename} is missing from codegen_templates/kernels/portable")


def _kernel_sources(names: list[str], target: Target, headers: list[str] = ()) -> list[Path]:
    """The kernel files the layers use and the headers their variants include, plus every local
    header those #include (transitively), each from the target's most specialised backend that has it."""
    kdir = data_dir("codegen_templates") / "kernels"
    todo = [f"{name}{ext}" for name in names for ext in (".h", ".c")] + list(headers)
    found: dict[str, Path] = {}
    while todo:
        filename = todo.pop(0)
        if filename in found:
            continue
        found[filename] = path = _kernel_file(kdir, filename, target)
        todo.extend(LOCAL_INCLUDE.findall(path.read_text()))
    return list(found.values())
