"""Run onnx's C++ shape inference in a forked child process.

onnx's shape inference is C++ and trusts its input more than a compiler reading a user's file may:
some malformed attributes trip an assertion inside it (`std::clamp` with hi < lo on a Slice after a
conv with an absurd dilation) and abort the whole Python process. In a child, such a crash (or a
hang) becomes a one-line ModelError instead of a dead `tinyconv` with no message.
"""

from __future__ import annotations

import faulthandler
import os
import select
import signal
import time

import onnx
from onnx import shape_inference

from tinyconv.errors import ModelError

TIMEOUT_S = 120.0


def infer_shapes(model: onnx.ModelProto, what: str, **kwargs) -> onnx.ModelProto:
    """shape_inference.infer_shapes(model, **kwargs), isolated; exceptions it raises are re-raised
    as a RuntimeError carrying its message (the caller decides whether to fall back)."""
    if not hasattr(os, "fork"):
        return shape_inference.infer_shapes(model, **kwargs)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: write b"O" + the inferred model, or b"E" + the error message
        try:
            os.close(rfd)
            faulthandler.disable()  # an abort here is reported by the parent, in one line
            try:
                payload = b"O" + shape_inference.infer_shapes(model, **kwargs).SerializeToString()
            except Exception as e:  # noqa: BLE001 - sent to the parent as text
                payload = b"E" + str(e).encode("utf-8", "replace")
            view = memoryview(payload)
            while view:
                view = view[os.write(wfd, view) :]
        finally:
            os._exit(0)
    os.close(wfd)
    chunks, deadline = [], time.monotonic() + TIMEOUT_S
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([rfd], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise ModelError(f"'{what}': ONNX shape inference did not finish in {TIMEOUT_S:.0f} s", hint="the model may be malformed")
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    if os.WIFSIGNALED(status) or not data:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        name = signal.Signals(sig).name if sig else "no result"
        raise ModelError(f"'{what}': ONNX shape inference crashed on this model ({name})",
                         hint="the model is malformed; check it with onnx.checker.check_model(model, full_check=True)")  # fmt: skip
    if data[:1] == b"E":
        raise RuntimeError(data[1:].decode("utf-8", "replace"))
    out = onnx.ModelProto()
    out.ParseFromString(data[1:])
    return out
