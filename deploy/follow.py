"""Following the provider's ``GET /events`` from the synchronous CLI.

``deploy`` and ``rollback`` wake up on the provider's events instead of
polling ``/status`` every quarter second: each event (or a quiet spell) is
a cue to re-read ``/status`` once, so what the CLI prints is computed from
the same snapshots as before. A reader thread owned by :class:`EventStream`
parses the stream into a queue; :meth:`EventStream.close` shuts the socket
down and joins the thread. When ``/events`` is missing (an older provider),
refused (too many clients) or breaks, the caller falls back to polling.
"""

from __future__ import annotations

import contextlib
import http.client
import queue
import socket
import threading
import urllib.parse

#: How long to wait for the stream's headers.
CONNECT_TIMEOUT_S = 5.0
_END = object()


class EventsUnavailable(Exception):
    """``/events`` cannot be followed; poll instead."""


class EventStream:
    """An open ``GET /events[?service=]``; :meth:`wait` blocks until something happens."""

    def __init__(
        self, base_url: str, service: str | None = None, *, token: str | None = None
    ) -> None:
        parts = urllib.parse.urlsplit(base_url)
        path = (parts.path or "") + "/events"
        if service is not None:
            path += "?" + urllib.parse.urlencode({"service": service})
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._conn = cls(parts.hostname or "127.0.0.1", parts.port, timeout=CONNECT_TIMEOUT_S)
        self._queue: queue.Queue[object] = queue.Queue()
        self.ended = False
        self.last_id: str | None = None
        try:
            headers = {"Accept": "text/event-stream"}
            if token:  # a provider with a read token refuses anonymous streams
                headers["Authorization"] = f"Bearer {token}"
            self._conn.request("GET", path, headers=headers)
            response = self._conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            self._conn.close()
            raise EventsUnavailable(str(exc) or type(exc).__name__) from exc
        ctype = response.getheader("Content-Type", "")
        if response.status != 200 or not ctype.startswith("text/event-stream"):
            self._conn.close()
            raise EventsUnavailable(f"GET /events answered {response.status}")
        if self._conn.sock is not None:
            self._conn.sock.settimeout(None)  # the heartbeat keeps it alive; close() ends it
        self._response = response
        self._thread = threading.Thread(target=self._read, name="bluegreen-events", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            kind: str | None = None
            while line := self._response.readline():
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                if text.startswith("event:"):
                    kind = text[6:].strip()
                elif text.startswith("id:"):
                    self.last_id = text[3:].strip()
                elif not text and kind is not None:
                    self._queue.put(kind)
                    kind = None
        except (OSError, ValueError, http.client.HTTPException):
            pass
        finally:
            self._queue.put(_END)

    def wait(self, timeout: float) -> bool:
        """True once an event arrived (all queued ones are taken), False after ``timeout``.

        After the stream ended, :attr:`ended` is true and this answers False at once.
        """
        if self.ended:
            return False
        try:
            item = self._queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return False
        got = item is not _END
        while True:
            if item is _END:
                self.ended = True
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return got
            got = got or item is not _END

    def close(self) -> None:
        """Stop the reader thread: shut the socket down and wait for the thread."""
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5.0)  # before closing: the thread may be reading
        self._conn.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
