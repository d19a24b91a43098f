"""A TCP proxy between the host (pyserial socket://) and QEMU's serial socket that corrupts,
drops or swallows bytes, or sends whole frames twice, deterministically (seeded per direction)."""

from __future__ import annotations

import random
import socket
import threading
import time


class FaultProxy:
    def __init__(self, upstream_port: int, *, flip: float = 0.0, drop: float = 0.0, seed: int = 0, mute_after: int | None = None,
                 dup: float = 0.0, dup_directions: str = "both", flip_directions: str = "both"):  # fmt: skip
        self.upstream_port = upstream_port
        self.flip, self.drop, self.mute_after = flip, drop, mute_after
        self.dup = dup  # probability that a frame (up to its 0x00) is sent twice
        ways = {"both": (1, 2), "requests": (1,), "answers": (2,)}
        self.dup_directions, self.flip_directions = ways[dup_directions], ways[flip_directions]
        self.seed = seed
        self.counts = {"flipped": 0, "dropped": 0, "bytes": 0, "duplicated": 0}
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        deadline = time.monotonic() + 10
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=1)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return s
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _accept(self) -> None:
        try:
            client, _ = self.srv.accept()
        except OSError:
            return
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up = self._connect_upstream()
        self.socks = (client, up)
        for src, dst, k in ((client, up, 1), (up, client, 2)):
            t = threading.Thread(target=self._pump, args=(src, dst, random.Random(self.seed * 10 + k), k), daemon=True)
            t.start()
            self.threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, rng: random.Random, direction: int) -> None:
        src.settimeout(0.1)
        frame = bytearray()  # the current frame, for duplication
        while not self.stop.is_set():
            try:
                data = src.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            out = bytearray()
            for b in data:
                self.counts["bytes"] += 1
                if self.mute_after is not None and self.counts["bytes"] > self.mute_after:
                    continue
                if self.drop and rng.random() < self.drop:
                    self.counts["dropped"] += 1
                    continue
                if self.flip and direction in self.flip_directions and rng.random() < self.flip:
                    self.counts["flipped"] += 1
                    b ^= 1 << rng.randrange(8)
                if self.dup and direction in self.dup_directions:
                    frame.append(b)
                    if b == 0:
                        out += frame
                        if rng.random() < self.dup:
                            self.counts["duplicated"] += 1
                            out += frame
                        frame.clear()
                    continue
                out.append(b)
            try:
                dst.sendall(bytes(out))
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.srv.close()
        for s in getattr(self, "socks", ()):
            s.close()
