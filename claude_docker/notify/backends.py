"""Every delivery target the notifier config names, one object each.

A Twilio config with three numbers is three targets: delivery state is kept per target, so a
retry never texts a number that already got the message.
"""

from __future__ import annotations

from typing import Protocol

from ..config.model import NotifierConfig
from .apprise_backend import AppriseUrl
from .command import Command
from .twilio import TwilioSms
from .webhook import Webhook


class Backend(Protocol):
    @property
    def key(self) -> str:
        """Stable and secret-free: names the target in the delivery state."""

    @property
    def label(self) -> str:
        """Secret-free, for messages and logs."""

    def send(self, text: str, payload: dict) -> str:
        """Deliver or raise NotifyError; returns a short receipt."""


def backends_for(notifier: NotifierConfig) -> list[Backend]:
    targets: list[Backend] = []
    if notifier.twilio:
        targets.extend(TwilioSms(notifier.twilio, to) for to in notifier.twilio.to)
    targets.extend(AppriseUrl(url) for url in notifier.apprise)
    targets.extend(Webhook(hook) for hook in notifier.webhooks)
    targets.extend(Command(command) for command in notifier.commands)
    return targets
