"""A stand-in for Twilio's Messages endpoint on loopback, speaking Twilio's wire format.

It checks what the real API checks (method, path, HTTP Basic credentials, form fields) and
answers like Twilio: 201 with a Message resource, or an error object
`{"code", "message", "more_info", "status"}`. Tests can queue failures (e.g. 429, 503) and
read back every request it received.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.serve import serve_in_background


@dataclass
class ReceivedRequest:
    method: str
    path: str
    auth: tuple[str, str] | None
    content_type: str
    form: dict[str, str]
    accepted: bool = False


@dataclass
class FakeTwilio:
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "fake-auth-token-0123456789"
    api_keys: dict[str, str] = field(default_factory=dict)  # API Key SID → secret
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[ReceivedRequest] = field(default_factory=list)
    queued_errors: list[int] = field(default_factory=list)  # HTTP statuses for the next requests

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                fake._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                fake._answer(self, 405, _error(20004, "Method not allowed", 405))

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        serve_in_background(self._server)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def messages(self) -> list[dict[str, str]]:
        """Form fields of the requests that were accepted (201)."""
        return [r.form for r in self.requests if r.accepted]

    # --- Twilio's behaviour ------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode()
        content_type = handler.headers.get("Content-Type", "")
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        request = ReceivedRequest("POST", handler.path, _basic(handler.headers.get("Authorization")), content_type, form)
        with self._lock:
            self.requests.append(request)
            queued = self.queued_errors.pop(0) if self.queued_errors else None
        expected_path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        if handler.path != expected_path:
            return self._answer(handler, 404, _error(20404, "The requested resource was not found", 404))
        if not self._authorized(request.auth):
            return self._answer(handler, 401, _error(20003, "Authenticate", 401))
        if queued == 429:
            return self._answer(handler, 429, _error(20429, "Too Many Requests", 429))
        if queued is not None:
            return self._answer(handler, queued, _error(20500, "Internal Server Error", queued))
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return self._answer(handler, 400, _error(21601, "Unsupported content type", 400))
        if not form.get("To"):
            return self._answer(handler, 400, _error(21604, "A 'To' phone number is required.", 400))
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return self._answer(handler, 400, _error(21603, "A 'From' or 'MessagingServiceSid' parameter is required", 400))
        if not form.get("Body"):
            return self._answer(handler, 400, _error(21602, "Message body is required.", 400))
        if len(form["Body"]) > 1600:
            return self._answer(handler, 400, _error(21617, "The concatenated message body exceeds the 1600 character limit.", 400))
        if not form["To"].startswith("+") or not form["To"][1:].isdigit():
            return self._answer(handler, 400, _error(21211, f"The 'To' number {form['To']} is not a valid phone number.", 400))
        request.accepted = True
        sid = "SM" + secrets.token_hex(16)
        self._answer(
            handler,
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": form["To"],
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form["Body"],
                "status": "queued",
                "num_segments": "1",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
        )

    def _authorized(self, auth: tuple[str, str] | None) -> bool:
        if auth is None:
            return False
        user, password = auth
        if user == self.account_sid:
            return password == self.auth_token
        return self.api_keys.get(user) == password

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def _error(code: int, message: str, status: int) -> dict:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return user, password
