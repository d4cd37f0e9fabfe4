"""Webhook backend: the event as a JSON POST, with optional headers (which may carry tokens)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from ..config.model import WebhookConfig
from ..errors import NotifyError

TIMEOUT_SECONDS = 20


@dataclass
class Webhook:
    config: WebhookConfig

    @property
    def key(self) -> str:
        # The URL may hold a token: the delivery state only keeps a digest of it.
        return "webhook:" + hashlib.sha256(self.config.url.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        parts = urllib.parse.urlsplit(self.config.url)
        return f"webhook {parts.scheme}://{parts.hostname or '?'}{':' + str(parts.port) if parts.port else ''}"

    def send(self, text: str, payload: dict) -> str:
        headers = {"Content-Type": "application/json", "User-Agent": "claude-docker"}
        headers.update(self.config.headers)
        request = urllib.request.Request(
            self.config.url, data=json.dumps(payload).encode(), method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                return f"accepted (HTTP {response.status})"
        except urllib.error.HTTPError as error:
            detail = error.read()[:200].decode(errors="replace")
            raise NotifyError(f"{self.label} answered HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            raise NotifyError(
                f"{self.label} unreachable: {getattr(error, 'reason', error)}",
                "the event stays in the outbox; `claude-docker notify flush` sends it later",
            ) from None
