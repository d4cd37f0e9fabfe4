"""`claude-docker notify test` and `claude-docker notify flush`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..errors import ClaudeDockerError, NotifyError
from .options import file_option


def _load(config_file: str | None, acting: bool = True):
    """The config; `acting` (test, flush: they send, and may run commands on this host) requires
    its files in the workspace to be approved."""
    from ..config.pipeline import load_config
    from ..features import trust

    loaded = load_config(config_file)
    cfg = loaded.config
    if not cfg.notifier.configured:
        raise ClaudeDockerError(
            "no notifier is configured",
            "add notifier.twilio, notifier.apprise, notifier.webhooks or notifier.commands to claude-docker.yaml",
        )
    if acting:
        trust.require(cfg, loaded.digests)
    return cfg


@click.group("notify")
def notify_group() -> None:
    """Send notifications: try the configured backends, or deliver what is waiting.

    Claude Code's hooks inside the container write events into the session outbox; the
    host sends them (Twilio SMS, Apprise, webhooks, commands). Events that could not be sent
    stay until a later `up` of the project or `notify flush` delivers them.
    """


@notify_group.command("test")
@file_option
@click.option("-m", "--message", default="This is a test message from claude-docker.", show_default=True,
              help="Text to send.")
def notify_test(config_file: str | None, message: str) -> None:
    """Send a test message through every configured backend and print each result.

    \b
    Examples:
      claude-docker notify test
      claude-docker notify test -f ci/claude-docker.yaml -m "hello from CI"
    """
    from ..notify.backends import backends_for
    from ..notify.delivery import message_payload
    from ..notify.events import TEST_EVENT, Event
    from ..notify.message import MessageContext, render_message

    cfg = _load(config_file)
    event = Event(name="test", path=Path("/dev/null"), kind=TEST_EVENT, created_at=time.time(), text=message)
    context = MessageContext(project=cfg.project_name, session="test", event=event)
    text = render_message(cfg.notifier.template, context)
    payload = message_payload(context, text)
    failures = 0
    for backend in backends_for(cfg.notifier):
        try:
            receipt = backend.send(text, payload)
        except NotifyError as error:
            failures += 1
            click.secho(f"FAIL {backend.label}: {error.message}", fg="red")
            if error.hint:
                click.echo(f"     hint: {error.hint}")
        else:
            click.secho(f"ok   {backend.label}: {receipt}", fg="green")
    if failures:
        raise ClaudeDockerError(f"{failures} notification backend(s) failed", "see the lines above")


@notify_group.command("flush")
@file_option
def notify_flush(config_file: str | None) -> None:
    """Deliver events earlier sessions of this project could not send.

    Sessions still running are left to their own notifier. Each event leaves the outbox
    only once every backend accepted it; what still fails stays for the next try.

    \b
    Examples:
      claude-docker notify flush
      claude-docker notify flush -f ~/src/app/claude-docker.yaml
    """
    from ..notify import flush_project

    cfg = _load(config_file)
    outcomes = flush_project(cfg, cfg.project_name, report=lambda line: click.echo(line, err=True))
    if not outcomes:
        click.echo("nothing to deliver")
        return
    still_failing = 0
    for session_id, outcome in outcomes.items():
        parts = [f"{len(outcome.delivered)} delivered"]
        if outcome.skipped:
            parts.append(f"{len(outcome.skipped)} skipped")
        if outcome.failed:
            parts.append(f"{len(outcome.failed)} still waiting")
        if outcome.unreadable:
            parts.append(f"{len(outcome.unreadable)} unreadable")
        if outcome.dropped:
            parts.append(f"{len(outcome.dropped)} dropped (notifier caps)")
        if outcome.busy:
            click.echo(f"session {session_id}: still running; its own notifier delivers it")
            continue
        click.echo(f"session {session_id}: " + ", ".join(parts))
        still_failing += len(outcome.failed)
    if still_failing:
        raise ClaudeDockerError(
            f"{still_failing} event(s) could not be delivered and stay in the outbox",
            "fix the backend (see the errors above) and run `claude-docker notify flush` again",
        )


@notify_group.command("status")
@file_option
@click.option("-n", "--lines", default=10, show_default=True, help="How many lines of the newest notify.log to show.")
def notify_status(config_file: str | None, lines: int) -> None:
    """Show events still waiting in this project's outboxes, and the newest delivery log.

    \b
    Examples:
      claude-docker notify status
      claude-docker notify status -n 50
    """
    from ..notify import project_session_dirs
    from ..notify.delivery import LOG_FILE, is_live
    from ..notify.events import pending_names
    from ..paths import project_state_dir

    cfg = _load(config_file, acting=False)
    session_dirs = project_session_dirs(project_state_dir(cfg.project_name))
    waiting = 0
    for session_dir in session_dirs:
        outbox = session_dir / "outbox"
        pending = len(pending_names(outbox))
        unusable = len(list(outbox.glob("*.bad")))
        if pending or unusable:
            state = "running" if is_live(session_dir) else "ended"
            click.echo(f"session {session_dir.name} ({state}): {pending} waiting, {unusable} unusable")
            waiting += pending
    if not waiting:
        click.echo("no events waiting")
    # A session that delivered everything keeps only its log (no outbox): it still counts here.
    logs = sorted(project_state_dir(cfg.project_name).glob(f"sessions/*/{LOG_FILE}"), key=lambda p: p.stat().st_mtime)
    if logs and lines > 0:
        click.echo(f"--- {logs[-1]}")
        for line in logs[-1].read_text(errors="replace").splitlines()[-lines:]:
            click.echo(line)


COMMANDS: list[click.Command] = [notify_group]
