"""Notifier helpers shared by the unit, engine and end-to-end tests: project files with a notifier,
events written the way the in-container hooks write them, and what a session left behind."""

from __future__ import annotations

import os
from pathlib import Path

from claude_docker.config.model import NotifierConfig
from claude_docker.contract import LABEL_PROJECT
from claude_docker.errors import NotifyError
from claude_docker.notify.delivery import SessionDelivery
from claude_docker.notify.events import write_event
from claude_docker.paths import project_state_dir
from tests.fakes.projects import AGENT_UID
from tests.fakes.twilio import FakeTwilio
from tests.support.testbed import base_image_yaml


def notifier_yaml(url: str) -> str:
    """A notifier section sending stop and session_end to one webhook, at once."""
    return (
        "persistence:\n  git_config: false\n"
        "notifier:\n"
        "  on: [stop, session_end]\n"
        "  min_interval_seconds: 0\n"
        f"  webhooks:\n    - url: {url}\n"
    )


def project_containers(docker_client, project: str) -> list:
    """This project's containers, from the list call alone (sparse): one removed between the list
    and a per-container inspect is simply not there, rather than a NotFound."""
    return docker_client.containers.list(all=True, sparse=True, filters={"label": f"{LABEL_PROJECT}={project}"})


def session_logs(project: str) -> str:
    logs = sorted(project_state_dir(project).glob("sessions/*/notify.log"))
    return "\n".join(f"--- {p}\n{p.read_text()}" for p in logs) or "no notify.log"


def hook_event(session, kind: str, message: str) -> None:
    """An event in the session's outbox, as the in-container hook helper writes it."""
    from claude_docker.notify.events import write_event

    hook = {"stop": "Stop", "session_end": "SessionEnd"}[kind]
    write_event(session.outbox_dir, kind, {"hook_event_name": hook, "last_assistant_message": message})


def twilio_project(
    tmp_path: Path, twilio: FakeTwilio, on: str = "[stop]", extra: str = "", network: str = "network:\n  firewall: false\n"
) -> Path:
    """A project whose notifier texts the Twilio stand-in, its credentials taken from ${TW_SID} and
    ${TW_TOKEN} (the `twilio` fixture sets them), owned by the agent's uid."""
    project = tmp_path / "notify-project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(
        base_image_yaml()
        + network
        + "persistence:\n  git_config: false\n"
        + "notifier:\n"
        + f"  on: {on}\n"
        + "  min_interval_seconds: 0\n"
        + "  twilio:\n"
        + "    account_sid: ${TW_SID}\n"
        + "    auth_token: ${TW_TOKEN}\n"
        + '    from: "+15005550006"\n'
        + '    to: ["+15551234567"]\n'
        + f"    api_base: {twilio.api_base}\n"
        + extra
    )
    for item in [project, *project.rglob("*")]:
        os.lchown(item, AGENT_UID, AGENT_UID)
    return project / "claude-docker.yaml"


def stop_event(outbox: Path, text: str, at_ns: int | None = None) -> Path:
    hook = {"session_id": "abc", "cwd": "/workspace", "hook_event_name": "Stop", "last_assistant_message": text}
    return write_event(outbox, "stop", hook, now_ns=at_ns)


class Clock:
    """A clock the test sets by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def delivery(tmp_path: Path, notifier: NotifierConfig, clock: Clock | None = None, reports: list | None = None):
    session_dir = tmp_path / "session"
    (session_dir / "outbox").mkdir(parents=True, exist_ok=True)
    return SessionDelivery(
        notifier, "proj", "s1", session_dir, report=(reports if reports is not None else []).append, clock=clock or Clock()
    )


class FlakyBackend:
    """A backend that records what it sent, or fails every time."""

    def __init__(self, key: str, fail: bool = False) -> None:
        self.key, self.label, self.fail, self.sent = key, key, fail, []

    def send(self, text: str, payload: dict) -> str:
        if self.fail:
            raise NotifyError(f"{self.key} is down")
        self.sent.append(text)
        return "ok"
