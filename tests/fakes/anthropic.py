"""A scripted stand-in for the Anthropic Messages API, served over HTTP on the host.

Claude Code in a container talks to it through `ANTHROPIC_BASE_URL=http://<bridge gateway>:<port>`.
It speaks the real wire format: `POST /v1/messages` answered with server-sent events
(message_start, content_block_start, content_block_delta, content_block_stop, message_delta,
message_stop) or, for `stream: false`, one JSON message; `POST /v1/messages/count_tokens`;
`HEAD /` / `GET /` for connectivity checks. Every request is recorded, with the credential it
carried (`x-api-key`, or the token of `Authorization: Bearer`). With `tls=` (an SSLContext, e.g.
from tests/fakes/tls.py) it serves HTTPS instead.

Usage:

    with FakeAnthropic([bash("echo hi > /workspace/out.txt"), text("done")]) as api:
        env = {"ANTHROPIC_BASE_URL": api.url_for(gateway), "ANTHROPIC_API_KEY": api.api_key}
        ...
        assert api.agent_requests[1]["messages"][-1]["content"][0]["type"] == "tool_result"

Scripted replies answer the agent loop's requests (those that offer tools), in order; side
requests Claude Code makes (titles, topic checks, quota probes: no tools) get a short text
reply so they never consume the script. When the script runs out, the reply is `text("done")`.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.serve import serve_in_background


@dataclass(frozen=True)
class Reply:
    """One assistant turn: plain text, or a tool call (then stop_reason is tool_use)."""

    text: str = ""
    tool_name: str | None = None
    tool_input: dict = field(default_factory=dict)


def text(message: str) -> Reply:
    return Reply(text=message)


def bash(command: str, description: str = "run a command") -> Reply:
    return Reply(tool_name="Bash", tool_input={"command": command, "description": description})


def tool(name: str, **tool_input: object) -> Reply:
    return Reply(tool_name=name, tool_input=dict(tool_input))


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict | None
    credential: str = ""  # x-api-key, or the Bearer token; "" when the request carried none
    at: float = field(default_factory=time.time)  # when it arrived (the benchmarks' clock)


class FakeAnthropic:
    def __init__(
        self, replies: list[Reply] | None = None, host: str = "0.0.0.0", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.script = list(replies or [])
        self.requests: list[RecordedRequest] = []
        self.api_key = "sk-ant-fake-" + secrets.token_hex(8)
        self.tls = tls
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url_for(self, host: str) -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def start(self) -> FakeAnthropic:
        self._thread = serve_in_background(self._server)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the tests read ------------------------------------------------------------

    @property
    def credentials(self) -> list[str]:
        """The credential of every request, in order."""
        return [r.credential for r in self.requests]

    @property
    def message_requests(self) -> list[dict]:
        return [r.body or {} for r in self.requests if r.method == "POST" and r.path.split("?")[0] == "/v1/messages"]

    @property
    def agent_requests(self) -> list[dict]:
        """Requests of the agent loop (they offer tools) — the ones the script answers."""
        return [body for body in self.message_requests if body.get("tools")]

    def tool_results(self) -> list[dict]:
        """Every tool_result block Claude Code sent back, in order."""
        found = []
        for body in self.agent_requests:
            for message in body.get("messages", []):
                content = message.get("content")
                if isinstance(content, list):
                    found.extend(block for block in content if isinstance(block, dict) and block.get("type") == "tool_result")
        unique = {block.get("tool_use_id"): block for block in found}
        return list(unique.values())

    # --- answering ----------------------------------------------------------------------

    def next_reply(self, body: dict) -> Reply:
        if not body.get("tools"):
            return text("ok")
        with self._lock:
            return self.script.pop(0) if self.script else text("done")


def message_events(reply: Reply, model: str) -> list[tuple[str, dict]]:
    """The SSE events of one streamed assistant message, as (event, data) pairs."""
    message_id = "msg_" + secrets.token_hex(12)
    events: list[tuple[str, dict]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 25, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
                },
            },
        )
    ]
    index = 0
    if reply.text:
        events += [
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": reply.text}}),
            ("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]
        index += 1
    if reply.tool_name:
        tool_id = "toolu_" + secrets.token_hex(12)
        events += [
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": tool_id, "name": reply.tool_name, "input": {}}},
            ),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": json.dumps(reply.tool_input)}},
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]
    stop_reason = "tool_use" if reply.tool_name else "end_turn"
    events += [
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": {"output_tokens": 12}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


def message_json(reply: Reply, model: str) -> dict:
    """The same message, non-streamed."""
    content: list[dict] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    if reply.tool_name:
        content.append({"type": "tool_use", "id": "toolu_" + secrets.token_hex(12), "name": reply.tool_name, "input": reply.tool_input})
    return {
        "id": "msg_" + secrets.token_hex(12),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if reply.tool_name else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 12},
    }


def _handler_for(api: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output clean; requests are recorded
            pass

        def _record(self) -> dict | None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = {"_raw": raw.decode(errors="replace")}
            bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            credential = self.headers.get("x-api-key") or bearer
            api.requests.append(RecordedRequest(self.command, self.path, dict(self.headers.items()), body, credential))
            return body

        def _json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("request-id", "req_" + secrets.token_hex(8))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            key = self.headers.get("x-api-key") or (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            if key:
                return True
            self._json(401, {"type": "error", "error": {"type": "authentication_error", "message": "missing x-api-key"}})
            return False

        def do_HEAD(self) -> None:
            self._record()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self._record()
            path = self.path.split("?")[0]
            if path in ("/", ""):
                self._json(200, {"ok": True})
            elif path == "/v1/models":
                self._json(200, {"data": [], "has_more": False, "first_id": None, "last_id": None})
            else:
                self._not_found(path)

        def do_POST(self) -> None:
            body = self._record() or {}
            path = self.path.split("?")[0]
            if not self._authorised():
                return
            if path == "/v1/messages/count_tokens":
                self._json(200, {"input_tokens": 100})
            elif path == "/v1/messages":
                self._messages(body)
            else:
                self._not_found(path)

        def _not_found(self, path: str) -> None:
            self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": f"no route {path}"}})

        def _messages(self, body: dict) -> None:
            reply = api.next_reply(body)
            model = str(body.get("model") or "claude-sonnet-4-5")
            if not body.get("stream"):
                self._json(200, message_json(reply, model))
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.send_header("request-id", "req_" + secrets.token_hex(8))
            self.end_headers()
            for event, data in message_events(reply, model):
                self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
            self.close_connection = True

    return Handler
