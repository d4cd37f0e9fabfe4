"""The one way tests run a socketserver (an HTTP or DNS stand-in) in the background."""

from __future__ import annotations

import socketserver
import threading

# shutdown() returns at the server's next poll, and every test stops the servers it started:
# a short poll keeps teardown quick (a fraction of a CPU while a server runs).
POLL_SECONDS = 0.005


def serve_in_background(server: socketserver.BaseServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True)
    thread.start()
    return thread
