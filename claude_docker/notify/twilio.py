"""Twilio SMS through the REST Messages API, with the standard library only.

POST {api_base}/2010-04-01/Accounts/{AccountSid}/Messages.json, form-encoded, HTTP Basic with
the Account SID + Auth Token or an API Key SID + secret. 429 and 5xx are retried with
exponential backoff (Twilio says they are safe to retry); any other 4xx is final and reported
with Twilio's own error code and message.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable

from ..config.model import TwilioConfig
from ..errors import NotifyError

TIMEOUT_SECONDS = 20
MAX_ATTEMPTS = 4
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


@dataclass
class TwilioSms:
    config: TwilioConfig
    to: str
    sleep: Callable[[float], None] = time.sleep
    first_backoff: float | None = None  # None: FIRST_BACKOFF_SECONDS

    @property
    def key(self) -> str:
        return f"twilio:{self.to}"

    @property
    def label(self) -> str:
        return f"twilio SMS to {self.to}"

    def url(self) -> str:
        account = urllib.parse.quote(self._account_sid(), safe="")
        return f"{self.config.api_base.rstrip('/')}/2010-04-01/Accounts/{account}/Messages.json"

    def send(self, text: str, payload: dict) -> str:
        form = {"To": self.to, "Body": text}
        if self.config.messaging_service_sid:
            form["MessagingServiceSid"] = self.config.messaging_service_sid
        else:
            form["From"] = self.config.from_number or ""
        request = urllib.request.Request(
            self.url(),
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
            headers={
                "Authorization": self._authorization(),
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "User-Agent": "claude-docker",
            },
        )
        delay = self.first_backoff if self.first_backoff is not None else FIRST_BACKOFF_SECONDS
        for attempt in range(1, MAX_ATTEMPTS + 1):
            status, body, retry_after = _post(request)
            if status in (200, 201):
                sid = _json(body).get("sid")
                return f"accepted (sid {sid})" if sid else "accepted"
            retryable = status is None or status == 429 or status >= 500
            if not retryable or attempt == MAX_ATTEMPTS:
                raise NotifyError(
                    f"{self.label} failed: {_describe(status, body)}",
                    _hint(status, _json(body).get("code")),
                )
            self.sleep(min(retry_after if retry_after is not None else delay, MAX_BACKOFF_SECONDS))
            delay *= 2
        raise AssertionError("unreachable")

    def _account_sid(self) -> str:
        return self.config.account_sid or ""

    def _authorization(self) -> str:
        if self.config.api_key_sid:
            user, password = self.config.api_key_sid, self.config.api_key_secret or ""
        else:
            user, password = self._account_sid(), self.config.auth_token or ""
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _post(request: urllib.request.Request) -> tuple[int | None, bytes, float | None]:
    """(status, body, Retry-After seconds); status None for a network error."""
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, response.read(), None
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, body, _retry_after(error.headers.get("Retry-After"))
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return None, str(reason).encode(), None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _json(body: bytes) -> dict:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _describe(status: int | None, body: bytes) -> str:
    if status is None:
        return f"cannot reach Twilio: {body.decode(errors='replace')}"
    error = _json(body)
    if "code" in error or "message" in error:
        text = f"HTTP {status}, Twilio error {error.get('code')}: {error.get('message')}"
        if error.get("more_info"):
            text += f" ({error['more_info']})"
        return text
    return f"HTTP {status}: {body[:200].decode(errors='replace')}"


def _hint(status: int | None, code: object) -> str:
    if status == 401 or code == 20003:
        return "check notifier.twilio account_sid/auth_token (or api_key_sid/api_key_secret) in your env file"
    if status is None or status == 429 or (status and status >= 500):
        return "the event stays in the outbox; `claude-docker notify flush` sends it later"
    return "check notifier.twilio from/messaging_service_sid and the `to` numbers (E.164, e.g. +15551234567)"
