"""A unix-socket forwarder to the Docker daemon that holds connections until opened.

Tests point a provider's ``--docker-host`` at the gate to freeze its view of
Docker at a chosen moment: while the gate is closed, connections are accepted
but nothing is forwarded, so the provider's first sync cannot finish (and
``/traefik`` must answer 503); :meth:`DockerGate.open` lets them through.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import tempfile
import threading
from pathlib import Path
from typing import Self

HOLD_TIMEOUT_S = 60.0
CHUNK = 65536


class DockerGate:
    """Listen on a fresh unix socket and forward to ``target`` once open."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._dir = Path(tempfile.mkdtemp(prefix="bgg-", dir="/tmp"))
        self.path = str(self._dir / "sock")
        self.host = f"unix://{self.path}"
        self._open = threading.Event()
        self._closed = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0
        self._acceptor = threading.Thread(target=self._accept_loop, name="gate", daemon=True)
        self._acceptor.start()

    def open(self) -> None:
        """Forward held and future connections."""
        self._open.set()

    def hold(self) -> None:
        """Hold new connections from now on (established ones keep flowing)."""
        if not self._closed.is_set():
            self._open.clear()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._sockets.append(client)
                thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        if not self._open.wait(HOLD_TIMEOUT_S) or self._closed.is_set():
            client.close()
            return
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self._lock:
            self._sockets.append(upstream)
        try:
            upstream.connect(self.target)
            self._pump(client, upstream)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        with selectors.DefaultSelector() as selector:
            selector.register(a, selectors.EVENT_READ)
            selector.register(b, selectors.EVENT_READ)
            while not self._closed.is_set():
                for key, _ in selector.select(timeout=0.2):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(CHUNK)
                    if not data:
                        return
                    peers[source].sendall(data)

    def close(self) -> None:
        """Stop accepting, drop every connection, remove the socket."""
        self._closed.set()
        self._open.set()
        self._listener.close()
        self._acceptor.join(5)
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)
        with contextlib.suppress(OSError):
            Path(self.path).unlink()
        with contextlib.suppress(OSError):
            self._dir.rmdir()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
