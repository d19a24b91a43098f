"""Content-addressed C build cache shared by the native and the firmware builds.

Every translation unit is compiled to an object once per (compiler, flags, its text, the local
headers and .incbin blobs it reads); every link once per (its objects, link flags). So checking the
same model again with other inputs compiles nothing, and a model whose weights changed recompiles
only the weights object and the units that read a changed header.

Location: `cache_dir` arguments, else $TINYCONV_CACHE, else $XDG_CACHE_HOME/tinyconv (~/.cache).
Writes go to a temporary name and are renamed into place, so concurrent builds of the same key
are safe (both produce identical bytes; the last rename wins).

Size: after every build the least recently used objects and links go until the cache holds at
most $TINYCONV_CACHE_MAX_MB (default 2048); a file's modification time is its last use (a hit
touches it); the build just made always stays.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tinyconv import procs
from tinyconv.errors import BuildError

LOCAL_INCLUDE = re.compile(rb'^\s*#\s*include\s+"([^"]+)"', re.M)
MACRO_INCLUDE = re.compile(rb"^\s*#\s*include\s+[A-Za-z_]", re.M)
INCBIN_FILE = re.compile(rb'"([^"\s]+\.bin)"')
COMPILE_TIMEOUT = 600  # seconds; a generated unit with megabytes of initializers takes minutes at worst
DEFAULT_MAX_MB = 2048  # a check of a 23 M-parameter model leaves ~150 MB (weights in 3 objects, 3 links)
KEY_NAME = re.compile(r"[0-9a-f]{32}")  # cache entries; temporary files being written are named otherwise


@dataclass
class Stats:
    """What this process compiled and linked, and how often the cache answered instead."""

    compiles: int = 0
    links: int = 0
    hits: int = 0
    pruned: int = 0  # entries removed to keep the size bound


stats = Stats()


def cache_root(cache_dir: Path | str | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("TINYCONV_CACHE"):
        return Path(os.environ["TINYCONV_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinyconv"


def max_bytes() -> int:
    """The size bound: $TINYCONV_CACHE_MAX_MB megabytes, else DEFAULT_MAX_MB."""
    text = os.environ.get("TINYCONV_CACHE_MAX_MB", "").strip()
    try:
        mb = float(text) if text else DEFAULT_MAX_MB
    except ValueError:
        mb = -1.0
    if not mb >= 0:  # also NaN
        raise BuildError(f"TINYCONV_CACHE_MAX_MB={text!r} is not a size in megabytes", hint="set it to a number such as 2048, or unset it")
    return int(mb * (1 << 20))


def _entries(root: Path) -> list[tuple[int, int, Path]]:
    """(last use in ns, bytes, path) of every object file and link folder in the cache."""
    out = []
    for shard in _scan(root / "obj"):
        for f in _scan(Path(shard.path)):
            if f.name.endswith(".o") and KEY_NAME.fullmatch(f.name[:-2]):
                with contextlib.suppress(OSError):
                    st = f.stat()
                    out.append((st.st_mtime_ns, st.st_size, Path(f.path)))
    for d in _scan(root / "link"):
        if KEY_NAME.fullmatch(d.name):
            with contextlib.suppress(OSError):
                files = [f.stat() for f in _scan(Path(d.path))]
                if files:
                    out.append((max(st.st_mtime_ns for st in files), sum(st.st_size for st in files), Path(d.path)))
    return out


def _scan(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError:  # not there (yet), or removed by a concurrent prune
        return []


def _touch(path: Path) -> None:
    """Marks a cache entry as just used (its modification time is its last use)."""
    with contextlib.suppress(OSError):
        os.utime(path)


def prune(cache_dir=None, *, keep=(), limit: int | None = None) -> int:
    """Removes the least recently used objects and links until the cache holds at most `limit`
    bytes (default max_bytes()); paths in `keep` (the build just made) stay. Returns bytes removed."""
    root = cache_root(cache_dir)
    limit = max_bytes() if limit is None else limit
    entries = _entries(root)
    excess = sum(size for _, size, _ in entries) - limit
    if excess <= 0:
        return 0
    keep = {Path(k) for k in keep}
    removed = 0
    for _, size, path in sorted(entries):
        if removed >= excess:
            break
        if path in keep:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        removed += size
        stats.pruned += 1
    return removed


def cache_key(*parts) -> str:
    """The one keying rule: sha256 over the parts (bytes, or anything with a stable repr)."""
    h = hashlib.sha256()
    for p in parts:
        b = p if isinstance(p, bytes) else repr(p).encode()
        h.update(len(b).to_bytes(8, "little") + b)
    return h.hexdigest()[:32]


def _compiler_identity(cc: str) -> tuple:
    """Which compiler binary (path, size, mtime): an upgraded compiler invalidates the cache."""
    path = shutil.which(cc)
    if path is None:
        raise BuildError(f"C compiler '{cc}' not found", hint="run scripts/setup")
    st = os.stat(path)
    return (cc, path, st.st_size, st.st_mtime_ns)


def host_cpu() -> str:
    """What -march=native means on this machine (the CPU's model and feature flags)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        import platform

        return platform.processor() or platform.machine()
    lines = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags", "Features", "CPU part"))]
    return "\n".join(sorted(set(lines)))


def _find(name: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        if (d / name).is_file():
            return d / name
    return None


def source_digest(src: Path, include_dirs: list[Path]) -> bytes:
    """The unit's text plus every local header (transitively) and .incbin blob it names. An
    `#include MACRO` cannot be followed: then every header in the include directories counts."""
    dirs = [src.parent, *include_dirs]
    h = hashlib.sha256()
    todo, seen = [src], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        text = p.read_bytes()
        h.update(str(p.name).encode() + b"\0" + text)
        names = LOCAL_INCLUDE.findall(text) + INCBIN_FILE.findall(text)
        if MACRO_INCLUDE.search(text):
            todo.extend(sorted(q for d in include_dirs for q in d.glob("*.h")))
        for n in names:
            q = _find(n.decode(), [p.parent, *dirs])
            if q is not None:
                todo.append(q)
    return h.digest()


def _run(cmd: list[str], what: str, timeout: float) -> None:
    try:
        r = procs.run(cmd, timeout=timeout)  # the compiler dies with tinyconv
    except subprocess.TimeoutExpired:
        raise BuildError(f"{cmd[0]} did not finish {what} in {timeout:.0f} s") from None
    if r.returncode != 0:
        raise BuildError(f"{cmd[0]} failed {what}:\n{r.stderr.strip()[:4000]}")


def _publish(tmp: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)


def compile_object(cc: str, flags: list[str], src: Path, include_dirs: list[Path], *, cache_dir=None, key_extra=()) -> Path:
    """src → a cached object file (compiled only if no object with the same key exists).
    `key_extra`: whatever else the object depends on (the build machine's CPU for -march=native)."""
    src = Path(src)
    key = cache_key("obj", _compiler_identity(cc), flags, key_extra, source_digest(src, include_dirs))  # contents, not paths
    obj = cache_root(cache_dir) / "obj" / key[:2] / f"{key}.o"
    if obj.exists():
        stats.hits += 1
        _touch(obj)
        return obj
    obj.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".o", dir=obj.parent)
    os.close(fd)
    procs.track(tmp)  # a half-written object never stays in the cache
    try:
        _run([cc, *flags, *(f"-I{d}" for d in include_dirs), "-c", str(src), "-o", tmp], f"compiling {src}", COMPILE_TIMEOUT)
        _publish(Path(tmp), obj)
    finally:
        procs.untrack(tmp)
    stats.compiles += 1
    return obj


def build_executable(cc: str, sources: list[Path], compile_flags: list[str], link_flags: list[str], include_dirs: list[Path], *,
                     name: str, link_inputs: tuple[bytes, ...] = (), cache_dir=None, key_extra=(), unit_flags=None) -> Path:  # fmt: skip
    """Compile every source (cached, in parallel) and link (cached). `link_inputs`: the content of
    anything the link reads besides the objects (a linker script), for the key. `unit_flags`:
    {source: flags added for that unit only} (so the other units share objects with other builds)."""
    unit_flags = unit_flags or {}
    jobs = min(len(sources), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        objs = list(pool.map(lambda s: compile_object(cc, [*compile_flags, *unit_flags.get(s, [])], s, include_dirs, cache_dir=cache_dir,
                                                      key_extra=key_extra), sources))  # fmt: skip
    key = cache_key("link", _compiler_identity(cc), link_flags, key_extra, [o.stem for o in objs], link_inputs)
    out = cache_root(cache_dir) / "link" / key / name
    if out.exists():
        stats.hits += 1
        _touch(out)
        prune(cache_dir, keep=[*objs, out.parent])
        return out
    out.parent.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix="link-", dir=out.parent.parent))
    procs.track(tmpdir)
    try:
        _run([cc, *link_flags, *map(str, objs), "-o", str(tmpdir / name)], f"linking {name}", COMPILE_TIMEOUT)
        (tmpdir / "build.txt").write_text(" ".join([cc, *compile_flags]) + "\n" + " ".join([cc, *link_flags, *map(str, objs)]) + "\n")
        try:
            os.replace(tmpdir, out.parent)
        except OSError:  # linked concurrently by someone else: theirs is identical
            pass
    finally:
        procs.untrack(tmpdir)
    stats.links += 1
    prune(cache_dir, keep=[*objs, out.parent])
    return out

