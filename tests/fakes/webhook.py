"""A webhook receiver on loopback: records every JSON POST and answers 200 (or a queued status)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.serve import serve_in_background


class WebhookReceiver:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.payloads: list[dict] = []
        self.queued_statuses: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver.queued_statuses.pop(0) if receiver.queued_statuses else 200
                    if status == 200:
                        receiver.payloads.append(json.loads(raw or b"{}"))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def events(self, kind: str | None = None) -> list[dict]:
        with self._lock:
            return [p for p in self.payloads if kind is None or p.get("event") == kind]

    def wait_for(self, predicate, timeout: float) -> bool:
        """Until `predicate(self)` holds (see tests.support.wait.wait_for)."""
        from tests.support.wait import wait_for

        return bool(wait_for(lambda: predicate(self), timeout))

    def __enter__(self) -> WebhookReceiver:
        self._thread = serve_in_background(self._server)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
