"""One firmware session: IDENTIFY on connect, chunked transfers, counters, layer dumps."""

from __future__ import annotations

import struct

import numpy as np

from tinyconv.errors import DeviceError
from tinyconv.harness import protocol as P
from tinyconv.harness.build import Firmware
from tinyconv.harness.flash import Target, start
from tinyconv.harness.link import Link


class Session:
    def __init__(self, fw: Firmware, *, target: Target | None = None, timeout: float = 3.0, run_timeout: float = 120.0, retries: int = 4):
        self.fw = fw
        self.name = fw.device.name
        self.target = target if target is not None else start(fw)
        self.run_timeout = run_timeout
        try:
            self.link = Link(self.target.transport, self.name, timeout=timeout, retries=retries, on_closed=self.target.exit_detail)
            self.ident = P.parse_identify(self.link.request(P.IDENTIFY).payload)
            self._check_identity()
        except BaseException:
            self.target.close()
            raise
        self.chunk = max(16, min(self.ident.max_chunk, P.MAX_CHUNK))

    def _check_identity(self) -> None:
        man, i = self.fw.manifest, self.ident
        if i.protocol != P.VERSION:
            raise DeviceError(f"{self.name} speaks protocol {i.protocol}, this host speaks {P.VERSION}: rebuild the firmware")
        want = man.get("model_hash", "")
        if want and i.model_hash != want[:16]:
            raise DeviceError(f"{self.name} runs model {i.model_hash}, expected {want}: the firmware on the device is not this build")
        if i.build_id != self.fw.build_id:
            raise DeviceError(f"{self.name} runs firmware build {i.build_id:08x}, expected {self.fw.build_id:08x}")
        if i.input_bytes != man["input"]["bytes"] or i.output_bytes != man["output"]["bytes"] or i.num_layers != len(man["layers"]):
            raise DeviceError(f"{self.name} reports input/output/layers {i.input_bytes}/{i.output_bytes}/{i.num_layers}, "
                              f"the manifest says {man['input']['bytes']}/{man['output']['bytes']}/{len(man['layers'])}")  # fmt: skip

    # ---- commands ----
    def set_input(self, x: np.ndarray) -> None:
        data = np.ascontiguousarray(x, dtype=np.int8).reshape(-1).tobytes()
        if len(data) != self.ident.input_bytes:
            raise DeviceError(f"input has {len(data)} bytes, the model takes {self.ident.input_bytes}")
        for off in range(0, len(data), self.chunk):
            self.link.request(P.SET_INPUT, struct.pack("<I", off) + data[off : off + self.chunk])

    def run(self) -> None:
        self.link.request(P.RUN, timeout=self.run_timeout)

    def _read(self, cmd: int, head: bytes, total: int, timeout: float | None = None, chunk: int | None = None) -> np.ndarray:
        out = bytearray()
        chunk = chunk or self.chunk
        for off in range(0, total, chunk):
            n = min(chunk, total - off)
            r = self.link.request(cmd, head + struct.pack("<IH", off, n), timeout=timeout)
            if len(r.payload) != n:
                raise DeviceError(f"{self.name} sent {len(r.payload)} bytes for a {n}-byte chunk of {P.CMD_NAMES[cmd]}")
            out += r.payload
        return np.frombuffer(bytes(out), dtype=np.int8).copy()

    def get_output(self) -> np.ndarray:
        return self._read(P.GET_OUTPUT, b"", self.ident.output_bytes)

    def dump_layer(self, layer: int, nbytes: int) -> np.ndarray:
        # The first chunk of each window re-runs the model on the device.
        chunk = max(1, min(self.chunk, self.ident.dump_window))
        return self._read(P.DUMP_LAYER, struct.pack("<H", layer), nbytes, timeout=self.run_timeout, chunk=chunk)

    def counters(self) -> P.Counters:
        first = 0
        c = None
        ticks: list[int] = []
        while True:
            c = P.parse_counters(self.link.request(P.COUNTERS, struct.pack("<H", first)).payload)
            ticks += c.layer_ticks
            first += len(c.layer_ticks)
            if first >= c.num_layers or not c.layer_ticks:
                break
        c.layer_ticks = ticks
        return c

    def close(self) -> None:
        try:
            if self.target.alive():
                try:
                    self.link.retries = 0
                    self.link.request(P.BYE, timeout=1.0)
                except DeviceError:
                    pass
        finally:
            self.target.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
