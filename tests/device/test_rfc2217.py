"""rfc2217:// URLs (what ser2net and labgrid exports hand out) through a real RFC 2217 server:
pyserial's PortManager in front of QEMU's serial socket, telnet escaping and option negotiation
included. The model's payload bytes include 0xFF (telnet IAC), so a transport that bypassed the
telnet decoding would corrupt frames and fail the comparison."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import numpy as np
import pytest
import serial
import serial.rfc2217

from conftest import need
from tinyconv import reference
from tinyconv.harness.build import build_firmware
from tinyconv.harness.devices import load_device
from tinyconv.harness.flash import Target, _logfile, free_port, qemu_system_cmd
from tinyconv.harness.link import SerialTransport
from tinyconv.harness.session import Session

pytestmark = pytest.mark.device


class _Conn:
    """The socket side PortManager writes telnet answers to."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)


class Rfc2217Server:
    """One client, bridged to `upstream_url` (any pyserial URL) with RFC 2217 in between."""

    def __init__(self, upstream_url: str):
        self.upstream_url = upstream_url
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _open_upstream(self) -> serial.SerialBase:
        deadline = time.monotonic() + 10  # QEMU may not listen yet
        while True:
            try:
                return serial.serial_for_url(self.upstream_url, timeout=0.05)
            except serial.SerialException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _serve(self) -> None:
        try:
            client, _ = self.srv.accept()
        except OSError:
            return
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ser = self._open_upstream()
        pm = serial.rfc2217.PortManager(ser, _Conn(client))
        self.client, self.ser = client, ser

        def device_to_client() -> None:
            while not self.stop.is_set():
                try:
                    data = ser.read(max(1, ser.in_waiting))
                    if data:
                        client.sendall(b"".join(pm.escape(data)))
                except (OSError, serial.SerialException):
                    return

        threading.Thread(target=device_to_client, daemon=True).start()
        client.settimeout(0.1)
        while not self.stop.is_set():
            try:
                data = client.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            payload = b"".join(pm.filter(data))
            if payload:
                ser.write(payload)

    def close(self) -> None:
        self.stop.set()
        self.srv.close()
        for s in (getattr(self, "client", None), getattr(self, "ser", None)):
            if s is not None:
                s.close()


def test_check_over_rfc2217_is_bit_exact(libs):
    need("qemu-m4")
    c = libs.get("cortex-m4")
    xq = libs.xq("cortex-m4")[:4]
    # IAC (0xFF == int8 -1) must cross the link in both directions
    xq[0].reshape(-1)[:16] = -1
    expected = reference.run_batch(c.graph, xq).reshape(len(xq), -1)
    fw = build_firmware(c.library.outdir, load_device("qemu-m4"))

    qport = free_port()
    log = _logfile()
    with open(log, "wb") as lf:
        proc = subprocess.Popen(qemu_system_cmd(fw, qport), stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT)
    server = Rfc2217Server(f"socket://127.0.0.1:{qport}")
    try:
        tr = SerialTransport(f"rfc2217://127.0.0.1:{server.port}", connect_timeout=10)
        assert isinstance(tr.ser, serial.rfc2217.Serial)
        assert tr._raw_socket() is None, "RFC 2217 bytes must go through pyserial's telnet decoding"
        with Session(fw, target=Target(tr, proc, log, "QEMU")) as s:
            got = []
            for x in xq:
                s.set_input(x)
                s.run()
                got.append(s.get_output())
            assert s.link.stats["retries"] == 0
    finally:
        server.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    got = np.stack(got)
    assert np.array_equal(got, expected), f"{int((got != expected).sum())} bytes differ"
