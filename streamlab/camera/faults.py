"""Network faults a real camera shows, made for real on 127.0.0.1 (for tests and benchmarks).

- ``GarbageServer``: something else answers on the camera's port with random bytes.
- ``CuttingProxy``: a TCP proxy in front of a camera that cuts every connection after
  ``cut_after_s`` (a camera that sends a little and drops).
- ``MutingProxy``: a TCP proxy in front of a camera that passes the RTSP handshake,
  PLAY's answer included, and then swallows all media (a camera whose encoder wedged, or
  a firewall that drops the media): the session is up and nothing arrives.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import Self

from streamlab.camera.launcher import free_port


class _Listener:
    """Accepts connections on 127.0.0.1:``port`` in a daemon thread until ``stop()``."""

    def __init__(self, port: int = 0) -> None:
        self.port = port or free_port()
        self.connections = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> Self:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(16)
        sock.settimeout(0.2)
        self._sock = sock
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept, name="fault-listener", daemon=True)
        self._thread.start()
        return self

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            self._track(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.add(conn)

    def _drop(self, *conns: socket.socket) -> None:
        for conn in conns:
            with self._lock:
                self._open.discard(conn)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop listening and drop every connection. Idempotent."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with self._lock:
            conns = list(self._open)
        self._drop(*conns)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class GarbageServer(_Listener):
    """Answers every connection with ``size`` random bytes (after reading what it is sent,
    so an RTSP client gets garbage where its reply should be), then closes it."""

    def __init__(self, port: int = 0, *, size: int = 4096) -> None:
        super().__init__(port)
        self.size = size

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(2)
        with contextlib.suppress(OSError):
            conn.recv(4096)
            conn.sendall(os.urandom(self.size))
        self._drop(conn)


class CuttingProxy(_Listener):
    """Forwards 127.0.0.1:``port`` to the camera on ``target_port``; cuts each connection
    ``cut_after_s`` seconds after it was accepted."""

    def __init__(self, target_port: int, *, cut_after_s: float, port: int = 0) -> None:
        super().__init__(port)
        self.target_port = target_port
        self.cut_after_s = cut_after_s

    def url(self, path: str = "cam") -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path}"

    def _serve(self, conn: socket.socket) -> None:
        upstream = self._connect_upstream(conn)
        if upstream is None:
            return
        timer = threading.Timer(self.cut_after_s, self._drop, (conn, upstream))
        timer.daemon = True
        timer.start()
        threading.Thread(target=self._pump, args=(upstream, conn), daemon=True).start()
        self._pump(conn, upstream)

    def _connect_upstream(self, conn: socket.socket) -> socket.socket | None:
        """A tracked connection to the camera for ``conn`` (None, and ``conn`` dropped,
        when the camera cannot be reached)."""
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            self._drop(conn)
            return None
        self._track(upstream)
        return upstream

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        self._drop(src, dst)


class MutingProxy(CuttingProxy):
    """Forwards the RTSP conversation to the camera on ``target_port`` (TCP interleaved
    media), up to and including the answer to PLAY; everything after it is swallowed."""

    def __init__(self, target_port: int, *, port: int = 0) -> None:
        super().__init__(target_port, cut_after_s=3600.0, port=port)
        self.swallowed_bytes = 0

    def _serve(self, conn: socket.socket) -> None:
        upstream = self._connect_upstream(conn)
        if upstream is None:
            return
        played = threading.Event()
        threading.Thread(target=self._pump_answers, args=(upstream, conn, played),
                         daemon=True).start()  # fmt: skip
        with contextlib.suppress(OSError):
            while data := conn.recv(65536):
                if b"PLAY " in data:
                    played.set()
                upstream.sendall(data)
        self._drop(conn, upstream)

    def _pump_answers(
        self, src: socket.socket, dst: socket.socket, played: threading.Event
    ) -> None:
        muted = False
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if muted:
                    self.swallowed_bytes += len(data)
                    continue
                if played.is_set() and (end := data.find(b"\r\n\r\n")) >= 0:
                    muted = True  # PLAY's answer goes through; the media after it does not
                    self.swallowed_bytes += len(data) - end - 4
                    data = data[: end + 4]
                dst.sendall(data)
        self._drop(src, dst)
