"""Run onnx's C++ shape inference in a forked child process.

onnx's shape inference is C++ and trusts its input more than a compiler reading a user's file may:
some malformed attributes trip an assertion inside it (`std::clamp` with hi < lo on a Slice after a
conv with an absurd dilation) and abort the whole Python process. In a child, such a crash (or a
hang) becomes a one-line ModelError instead of a dead `tinyconv` with no message.

The child infers on its own (copy-on-write) copy of the model with the large initializers' payloads
taken out and their names declared as typed graph inputs: inference needs their shapes and types,
never their values (only small integer tensors feed shape arithmetic: Reshape targets, Slice
bounds, ...), and a model of tens of MB is otherwise serialised and parsed four times around it.
"""

from __future__ import annotations

import faulthandler
import math
import os
import select
import signal
import time

import onnx
from onnx import helper, shape_inference

from tinyconv.errors import ModelError

TIMEOUT_S = 120.0
# Initializers with more elements than this reach shape inference as typed inputs, without values.
# A shape-carrying tensor has one element per axis; this leaves room for any real one.
SLIM_ELEMENTS = 1024


def _declare_large_initializers(model: onnx.ModelProto) -> list[str]:
    """In place: drop the values of initializers with more than SLIM_ELEMENTS elements and declare
    each as a graph input of its type and shape. Returns the names of the inputs it added."""
    g = model.graph
    if not any(math.prod(i.dims) > SLIM_ELEMENTS for i in g.initializer):
        return []
    inputs = {vi.name for vi in g.input}
    keep, added = [], []
    for init in g.initializer:
        if math.prod(init.dims) <= SLIM_ELEMENTS:
            keep.append(onnx.TensorProto())
            keep[-1].CopyFrom(init)
            continue
        if init.name not in inputs:  # listed as an input too (IR < 4 style), onnx reads its declared type
            g.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
            added.append(init.name)
    del g.initializer[:]
    g.initializer.extend(keep)
    return added


def _inferred_without(model: onnx.ModelProto, added: list[str], **kwargs) -> onnx.ModelProto:
    """Shape inference on `model` (already slimmed); the inputs slimming added are removed again."""
    out = shape_inference.infer_shapes(model, **kwargs)
    if added:
        names = set(added)
        kept = [vi for vi in out.graph.input if vi.name not in names]
        del out.graph.input[:]
        out.graph.input.extend(kept)
    return out


def infer_shapes(model: onnx.ModelProto, what: str, **kwargs) -> onnx.ModelProto:
    """shape_inference.infer_shapes(model, **kwargs), isolated; exceptions it raises are re-raised
    as a RuntimeError carrying its message (the caller decides whether to fall back). The result
    is meant for its value types (value_info, inputs, outputs): it holds only the small initializers."""
    if not hasattr(os, "fork"):
        return shape_inference.infer_shapes(model, **kwargs)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: write b"O" + the inferred model, or b"E" + the error message
        try:
            os.close(rfd)
            faulthandler.disable()  # an abort here is reported by the parent, in one line
            try:
                added = _declare_large_initializers(model)  # the child's copy: the caller's model is untouched
                payload = b"O" + _inferred_without(model, added, **kwargs).SerializeToString()
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
