"""A long fuzz campaign over both importers, in worker processes.

    python tests/fuzz/campaign.py tflite --start 0 --count 3000 [--no-build] [--save DIR] [--json R.json]

Cases run in a worker process that records each case before running it, so a hard crash (a
signal, an abort inside a native library) or a worker over its time limit costs only that case:
it is counted ("crash" / "hang"), saved, and the campaign resumes after it. Prints the counts per
outcome and every defect (see fuzzlib.py for the outcome rules); exit status 1 if any defect.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER_TIMEOUT_S = 1800  # a worker runs at most CHUNK cases; each case has its own 120 s alarm


def _paths() -> None:
    for p in (HERE, HERE.parent / "tflite", HERE.parent):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))


def worker(kind: str, start: int, count: int, build: bool, progress: Path, results: Path) -> None:
    _paths()
    import fuzzlib

    seeds = fuzzlib.onnx_seeds() if kind == "onnx" else fuzzlib.tflite_seeds()
    fn = fuzzlib.onnx_case if kind == "onnx" else fuzzlib.tflite_case
    with results.open("a") as res:
        for k in range(start, start + count):
            progress.write_text(str(k))
            with tempfile.TemporaryDirectory(prefix="tc-fuzz-") as tmp:
                out, data = fn(k, seeds, Path(tmp), build=build)
            res.write(json.dumps({"case": k, "kind": out.kind, "detail": out.detail[-1500:], "data": data.hex() if out.defect else None}) + "\n")
            res.flush()


def campaign(kind: str, start: int, count: int, build: bool, save: Path | None, chunk: int = 200) -> tuple[dict, list]:
    counts: dict[str, int] = {}
    defects: list[dict] = []
    end = start + count
    k = start
    while k < end:
        n = min(chunk, end - k)
        with tempfile.TemporaryDirectory(prefix="tc-campaign-") as tmp:
            progress, results = Path(tmp) / "progress", Path(tmp) / "results.jsonl"
            cmd = [sys.executable, __file__, kind, "--worker", "--start", str(k), "--count", str(n), "--progress", str(progress), "--results", str(results)]
            if not build:
                cmd.append("--no-build")
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
                failure = None if r.returncode == 0 else ("crash", f"worker exit status {r.returncode}: {r.stderr.strip()[-800:]}")
            except subprocess.TimeoutExpired:
                failure = ("hang", f"worker over {WORKER_TIMEOUT_S} s")
            done = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
            for rec in done:
                counts[rec["kind"]] = counts.get(rec["kind"], 0) + 1
                if rec["data"] is not None:
                    defects.append(rec)
            last = done[-1]["case"] if done else k - 1
            if failure is not None and last < k + n - 1:
                bad = int(progress.read_text()) if progress.exists() else last + 1
                counts[failure[0]] = counts.get(failure[0], 0) + 1
                defects.append({"case": bad, "kind": failure[0], "detail": failure[1], "data": None})
                k = bad + 1
            else:
                k += n
        print(f"{kind}: {k - start}/{count} cases, {counts}", file=sys.stderr, flush=True)
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        for rec in defects:
            if rec["data"]:
                (save / f"{kind}-{rec['case']}.{'onnx' if kind == 'onnx' else 'tflite'}").write_bytes(bytes.fromhex(rec["data"]))
    return counts, defects


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=("onnx", "tflite"))
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--no-build", action="store_true", help="stop at the library (no C build / sanitizer run)")
    p.add_argument("--save", type=Path, help="write every defective case's model file here")
    p.add_argument("--json", type=Path, help="write counts and defects as JSON")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--progress", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker(a.kind, a.start, a.count, not a.no_build, a.progress, a.results)
        return 0
    t0 = time.monotonic()
    counts, defects = campaign(a.kind, a.start, a.count, not a.no_build, a.save)
    for rec in defects:
        print(f"{a.kind} case {rec['case']}: {rec['kind']}: {rec['detail']}")
    summary = {"kind": a.kind, "start": a.start, "count": a.count, "built": not a.no_build, "counts": counts, "defects": len(defects),
               "seconds": round(time.monotonic() - t0, 1), "pid": os.getpid()}  # fmt: skip
    print(json.dumps(summary))
    if a.json:
        a.json.write_text(json.dumps({**summary, "defect_cases": [{k: v for k, v in d.items() if k != "data"} for d in defects]}, indent=2))
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
