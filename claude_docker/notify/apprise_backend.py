"""Apprise backend: any Apprise URL (ntfy, Slack, Discord, Pushover, email…), an optional extra."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..errors import NotifyError

INSTALL_HINT = "install the optional extra: pip install 'claude-docker[apprise]'"


@dataclass
class AppriseUrl:
    url: str  # holds the service's credentials: never shown, never stored

    @property
    def key(self) -> str:
        return "apprise:" + hashlib.sha256(self.url.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"apprise {self.url.split(':', 1)[0]}://…"

    def send(self, text: str, payload: dict) -> str:
        try:
            import apprise  # optional dependency
        except ImportError:
            raise NotifyError(f"{self.label}: the apprise package is not installed", INSTALL_HINT) from None
        client = apprise.Apprise()
        if not client.add(self.url):
            raise NotifyError(f"{self.label}: apprise does not understand this URL", "see https://github.com/caronc/apprise/wiki")
        title = f"claude-docker {payload.get('project', '')}: {payload.get('event', '')}"
        if not client.notify(body=text, title=title):
            raise NotifyError(f"{self.label}: the service did not accept the message")
        return "accepted"
